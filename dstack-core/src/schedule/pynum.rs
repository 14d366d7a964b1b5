//! Python's view of text that the cron parser needs: whitespace, identifier characters,
//! Unicode decimal digits, and arbitrary-size non-negative integers (`Num`).

use std::cmp::Ordering;
use std::fmt;

pub(super) fn split_while(text: &str, predicate: fn(char) -> bool) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(_, c)| !predicate(c))
        .map_or(text.len(), |(index, _)| index);
    text.split_at(end)
}

/// Python's `str.isspace()`, which `str.split()` splits on: Unicode `White_Space`
/// plus the information separators U+001C..U+001F.
pub(super) fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A character `[a-z]` matches under `re.IGNORECASE`: ASCII letters plus the four
/// that Python's regex engine case-folds onto them (İ, ı, ſ and the Kelvin sign).
pub(super) fn is_py_name_char(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '\u{130}' | '\u{131}' | '\u{17f}' | '\u{212a}')
}

/// What Python's `\d` matches (Unicode category Nd), with its value for `int()`.
pub(super) fn is_py_digit(c: char) -> bool {
    py_digit_value(c).is_some()
}

/// The zero of every block of ten Unicode decimal digits (Unicode 14.0, Python 3.11).
pub(super) const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

pub(super) fn py_digit_value(c: char) -> Option<u32> {
    let code = u32::from(c);
    let index = DIGIT_ZEROS.partition_point(|&zero| zero <= code);
    let zero = DIGIT_ZEROS.get(index.checked_sub(1)?)?;
    let value = code - zero;
    (value < 10).then_some(value)
}

/// A non-negative integer of any size, as Python's `int()` reads a `\d+` match;
/// kept as canonical ASCII decimal (no leading zeros) so that errors print like Python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Num(String);

impl Num {
    pub(super) fn parse(digits: &str) -> Self {
        let ascii: String = digits
            .chars()
            .filter_map(py_digit_value)
            .filter_map(|value| char::from_digit(value, 10))
            .collect();
        let trimmed = ascii.trim_start_matches('0');
        Self(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
    }

    pub(super) fn is_zero(&self) -> bool {
        self.0 == "0"
    }

    /// The value, saturated; only called on values already validated to be small.
    pub(super) fn to_u32(&self) -> u32 {
        self.0.parse().unwrap_or(u32::MAX)
    }

    /// `self - other`.
    pub(super) fn signed_minus(&self, other: &Num) -> Signed {
        match self.cmp(other) {
            Ordering::Less => Signed::Negative(other.minus(self)),
            _ => Signed::NonNegative(self.minus(other)),
        }
    }

    /// `self - other` for `self >= other`, by schoolbook subtraction.
    pub(super) fn minus(&self, other: &Num) -> Num {
        let mut digits: Vec<u8> = self.0.bytes().map(|b| b - b'0').collect();
        let mut subtrahend = other.0.bytes().rev().map(|b| b - b'0');
        let mut borrow = 0;
        for digit in digits.iter_mut().rev() {
            let sub = subtrahend.next().unwrap_or(0) + borrow;
            if *digit >= sub {
                *digit -= sub;
                borrow = 0;
            } else {
                *digit = *digit + 10 - sub;
                borrow = 1;
            }
        }
        let text: String = digits.iter().map(|&d| char::from(b'0' + d)).collect();
        Num::parse(&text)
    }
}

impl From<u32> for Num {
    fn from(value: u32) -> Self {
        Self(value.to_string())
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A signed big integer, only needed to print APScheduler's "total range".
pub(super) enum Signed {
    NonNegative(Num),
    Negative(Num),
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonNegative(value) => write!(f, "{value}"),
            Self::Negative(value) => write!(f, "-{value}"),
        }
    }
}
