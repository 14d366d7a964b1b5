//! dstack `schedule.cron` expressions, parsed and evaluated with APScheduler 3 semantics.
//!
//! The Python server turns `schedule.cron` into
//! `CronTrigger.from_crontab(expr, timezone=UTC)` (APScheduler 3.x). This module owns
//! that grammar and reproduces its behaviour, including its quirks:
//!
//! - exactly five whitespace-separated fields: `minute hour day month day_of_week`;
//! - `day_of_week` counts from `0` = Monday to `6` = Sunday (not POSIX), `7` is invalid;
//! - a time fires only when *all* fields match (day of month AND day of week);
//! - each comma-separated item is matched like Python's `re.match`: `*`, `*/S`, `N`,
//!   `N-M`, `N/S`, `N-M/S`, month or weekday names (`jan-mar`, `mon-fri`, case-insensitive,
//!   trailing text after the names ignored) and `last` for the last day of the month
//!   (trailing text ignored as well);
//! - error messages are APScheduler's texts, verbatim.
//!
//! Behaviour was checked against APScheduler 3.11.0 by differential testing. Everything
//! is pure: the caller passes the current time.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

/// An invalid `schedule.cron` expression; the message is APScheduler's own text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    message: String,
}

impl CronError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The error text, as APScheduler words it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A parsed `schedule.cron` expression (five fields, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    fields: [String; 5],
    minutes: u64,
    hours: u64,
    days: u64,
    last_day: bool,
    months: u64,
    weekdays: u64,
}

impl CronExpr {
    /// Parses `expr` exactly as `CronTrigger.from_crontab` does.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        let parts: Vec<&str> = expr
            .split(is_py_whitespace)
            .filter(|part| !part.is_empty())
            .collect();
        let &[minute, hour, day, month, day_of_week] = parts.as_slice() else {
            return Err(CronError::new(format!(
                "Wrong number of fields; got {}, expected 5",
                parts.len()
            )));
        };
        // APScheduler compiles its fields in the order year, month, day, week,
        // day_of_week, hour, minute, second; the first failing one is reported.
        let month = Field::compile(FieldKind::Month, month)?;
        let day = Field::compile(FieldKind::Day, day)?;
        let day_of_week = Field::compile(FieldKind::DayOfWeek, day_of_week)?;
        let hour = Field::compile(FieldKind::Hour, hour)?;
        let minute = Field::compile(FieldKind::Minute, minute)?;
        Ok(CronExpr {
            source: expr.trim_matches(is_py_whitespace).to_owned(),
            minutes: minute.mask,
            hours: hour.mask,
            days: day.mask,
            last_day: day.last_day,
            months: month.mask,
            weekdays: day_of_week.mask,
            fields: [
                minute.rendered,
                hour.rendered,
                day.rendered,
                month.rendered,
                day_of_week.rendered,
            ],
        })
    }

    /// The five fields re-rendered the way APScheduler's `str(field)` shows them:
    /// `[minute, hour, day, month, day_of_week]`.
    pub fn fields(&self) -> [String; 5] {
        self.fields.clone()
    }

    /// First fire time at or after `now` (seconds are always 0), in UTC.
    ///
    /// `now` is rounded up to a whole minute. Like APScheduler, the search covers
    /// years 1970 to 9999 (an earlier `now` behaves as 1970-01-01T00:00Z); `None`
    /// means the expression never fires again in that span (e.g. `0 0 31 2 *`).
    /// The search skips whole months and days, so it stays cheap even then.
    pub fn next_at_or_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = ceil_to_minute(now.max(DateTime::<Utc>::UNIX_EPOCH))?;
        let start_date = start.date_naive();
        for year in start.year()..=MAX_YEAR {
            let first_month = if year == start.year() {
                start.month()
            } else {
                1
            };
            for month in first_month..=12 {
                if !has_bit(self.months, month) {
                    continue;
                }
                let length = days_in_month(year, month);
                let mut candidates = self.days & bits_between(1, length);
                if self.last_day {
                    candidates |= 1 << length;
                }
                if (year, month) == (start.year(), start.month()) {
                    candidates &= !bits_between(0, start.day() - 1);
                }
                while candidates != 0 {
                    let day = candidates.trailing_zeros();
                    candidates &= candidates - 1;
                    let date = NaiveDate::from_ymd_opt(year, month, day)?;
                    if !has_bit(self.weekdays, date.weekday().num_days_from_monday()) {
                        continue;
                    }
                    let (hour, minute) = if date == start_date {
                        (start.hour(), start.minute())
                    } else {
                        (0, 0)
                    };
                    if let Some((hour, minute)) = self.first_time_from(hour, minute) {
                        return date.and_hms_opt(hour, minute, 0).map(|t| t.and_utc());
                    }
                }
            }
        }
        None
    }

    /// The earliest `(hour, minute)` at or after `hour:minute` on a matching day.
    fn first_time_from(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let this_hour = has_bit(self.hours, hour)
            .then(|| next_bit(self.minutes, minute))
            .flatten()
            .map(|minute| (hour, minute));
        this_hour.or_else(|| Some((next_bit(self.hours, hour + 1)?, next_bit(self.minutes, 0)?)))
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// APScheduler's `MAX_VALUES["year"]`.
const MAX_YEAR: i32 = 9999;

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Minute,
    Hour,
    Day,
    Month,
    DayOfWeek,
}

impl FieldKind {
    fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
            Self::DayOfWeek => "day_of_week",
        }
    }

    /// APScheduler's `MIN_VALUES[name]`.
    fn min(self) -> u32 {
        match self {
            Self::Day | Self::Month => 1,
            Self::Minute | Self::Hour | Self::DayOfWeek => 0,
        }
    }

    /// APScheduler's `MAX_VALUES[name]`.
    fn max(self) -> u32 {
        match self {
            Self::Minute => 59,
            Self::Hour => 23,
            Self::Day => 31,
            Self::Month => 12,
            Self::DayOfWeek => 6,
        }
    }
}

/// One compiled field: the set of matching values as a bit mask.
struct Field {
    mask: u64,
    last_day: bool,
    rendered: String,
}

impl Field {
    /// `BaseField.compile_expressions`: items split on `,`, each compiled in turn.
    fn compile(kind: FieldKind, text: &str) -> Result<Self, CronError> {
        let mut field = Field {
            mask: 0,
            last_day: false,
            rendered: String::new(),
        };
        for (index, item) in text.split(',').enumerate() {
            let expr = Expr::compile(kind, item)?;
            if index > 0 {
                field.rendered.push(',');
            }
            field.rendered.push_str(&expr.render());
            match expr {
                Expr::LastDay => field.last_day = true,
                _ => field.mask |= expr.mask(kind),
            }
        }
        Ok(field)
    }
}

/// One comma-separated item of a field, after validation (all values within range).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    /// `*` or `*/step`.
    All { step: Option<u32> },
    /// `first`, `first-last`, `first/step`, `first-last/step`.
    Range {
        first: u32,
        last: Option<u32>,
        step: Option<u32>,
    },
    /// `mon` or `mon-fri` (0 = Monday).
    Weekdays { first: u32, last: u32 },
    /// `jan` or `jan-mar` (1 = January).
    Months { first: u32, last: u32 },
    /// `last` (day field only).
    LastDay,
}

impl Expr {
    /// `BaseField.compile_expression`: the field's compilers, tried in order.
    fn compile(kind: FieldKind, item: &str) -> Result<Self, CronError> {
        if let Some(step) = match_all(item) {
            return compile_all(kind, item, step);
        }
        if let Some((first, last, step)) = match_range(item) {
            return compile_range(kind, item, first, last, step);
        }
        match kind {
            FieldKind::Month => {
                if let Some((first, last)) = match_names(item) {
                    let (first, last) = name_range(&MONTHS, "month", first, last)?;
                    return Ok(Self::Months {
                        first: first + 1,
                        last: last + 1,
                    });
                }
            }
            FieldKind::DayOfWeek => {
                if let Some((first, last)) = match_names(item) {
                    let (first, last) = name_range(&WEEKDAYS, "weekday", first, last)?;
                    return Ok(Self::Weekdays { first, last });
                }
            }
            // `WeekdayPositionExpression` needs a space, which a field never holds.
            FieldKind::Day if match_last(item) => return Ok(Self::LastDay),
            _ => {}
        }
        Err(CronError::new(format!(
            "Unrecognized expression \"{item}\" for field \"{}\"",
            kind.name()
        )))
    }

    /// `str(expression)` in APScheduler.
    fn render(&self) -> String {
        fn range(first: String, last: Option<String>) -> String {
            match last {
                Some(last) if last != first => format!("{first}-{last}"),
                _ => first,
            }
        }
        fn label(names: &[&str], index: u32) -> String {
            let name = usize::try_from(index)
                .ok()
                .and_then(|index| names.get(index))
                .copied()
                .unwrap_or("?");
            name.to_owned()
        }
        match *self {
            Self::All { step: None } => "*".to_owned(),
            Self::All { step: Some(step) } => format!("*/{step}"),
            Self::Range { first, last, step } => {
                let range = range(first.to_string(), last.map(|last| last.to_string()));
                match step {
                    Some(step) => format!("{range}/{step}"),
                    None => range,
                }
            }
            Self::Weekdays { first, last } => {
                range(label(&WEEKDAYS, first), Some(label(&WEEKDAYS, last)))
            }
            Self::Months { first, last } => range(
                label(&MONTHS, first.saturating_sub(1)),
                Some(label(&MONTHS, last.saturating_sub(1))),
            ),
            Self::LastDay => "last".to_owned(),
        }
    }

    /// The values this expression matches, as bits of a mask.
    fn mask(&self, kind: FieldKind) -> u64 {
        let (first, last, step) = match *self {
            Self::All { step } => (kind.min(), kind.max(), step),
            Self::Range { first, last, step } => (first, last.unwrap_or(kind.max()), step),
            Self::Weekdays { first, last } | Self::Months { first, last } => (first, last, None),
            Self::LastDay => return 0,
        };
        let step = usize::try_from(step.unwrap_or(1)).unwrap_or(usize::MAX);
        (first..=last.min(kind.max()))
            .step_by(step.max(1))
            .fold(0, |mask, value| mask | 1 << value)
    }
}

/// `AllExpression(step)` followed by its `validate_range`.
fn compile_all(kind: FieldKind, item: &str, step: Option<&str>) -> Result<Expr, CronError> {
    let step = step.map(Num::parse);
    check_increment(step.as_ref())?;
    let span = kind.max() - kind.min();
    if let Some(step) = step.as_ref().filter(|step| **step > Num::from(span)) {
        return Err(validation_error(
            item,
            step_too_high(step, &span.to_string()),
        ));
    }
    Ok(Expr::All {
        step: step.map(|step| step.to_u32()),
    })
}

/// `RangeExpression(first, last, step)` followed by its `validate_range`.
fn compile_range(
    kind: FieldKind,
    item: &str,
    first: &str,
    last: Option<&str>,
    step: Option<&str>,
) -> Result<Expr, CronError> {
    let step = step.map(Num::parse);
    check_increment(step.as_ref())?;
    let first = Num::parse(first);
    let last = match (last, &step) {
        (Some(last), _) => Some(Num::parse(last)),
        (None, None) => Some(first.clone()),
        (None, Some(_)) => None,
    };
    if last.as_ref().is_some_and(|last| first > *last) {
        return Err(min_above_max());
    }

    let (min, max) = (kind.min(), kind.max());
    if let Some(step) = step.as_ref().filter(|step| **step > Num::from(max - min)) {
        let span = (max - min).to_string();
        return Err(validation_error(item, step_too_high(step, &span)));
    }
    if first < Num::from(min) {
        return Err(validation_error(
            item,
            format!("the first value ({first}) is lower than the minimum value ({min})"),
        ));
    }
    if let Some(last) = last.as_ref().filter(|last| **last > Num::from(max)) {
        return Err(validation_error(
            item,
            format!("the last value ({last}) is higher than the maximum value ({max})"),
        ));
    }
    // `(self.last or MAX_VALUES[name]) - self.first`: a last value of 0 counts as absent.
    let upper = match &last {
        Some(last) if !last.is_zero() => last.to_u32(),
        _ => max,
    };
    if let Some(step) = &step {
        let value_range = Num::from(upper).signed_minus(&first);
        let too_high = match &value_range {
            Signed::Negative(_) => true,
            Signed::NonNegative(range) => step > range,
        };
        if too_high {
            return Err(validation_error(
                item,
                step_too_high(step, &value_range.to_string()),
            ));
        }
    }
    Ok(Expr::Range {
        first: first.to_u32(),
        last: last.map(|last| last.to_u32()),
        step: step.map(|step| step.to_u32()),
    })
}

/// `MonthRangeExpression` / `WeekdayRangeExpression`: names to 0-based indices.
fn name_range(
    names: &[&str],
    what: &str,
    first: &str,
    last: Option<&str>,
) -> Result<(u32, u32), CronError> {
    let lookup = |text: &str| {
        names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .and_then(|index| u32::try_from(index).ok())
            .ok_or_else(|| CronError::new(format!("Invalid {what} name \"{text}\"")))
    };
    let first = lookup(first)?;
    let last = match last {
        Some(last) => lookup(last)?,
        None => first,
    };
    if first > last {
        return Err(min_above_max());
    }
    Ok((first, last))
}

fn check_increment(step: Option<&Num>) -> Result<(), CronError> {
    if step.is_some_and(Num::is_zero) {
        return Err(CronError::new("Increment must be higher than 0"));
    }
    Ok(())
}

fn min_above_max() -> CronError {
    CronError::new("The minimum value in a range must not be higher than the maximum")
}

fn step_too_high(step: &Num, value_range: &str) -> String {
    format!(
        "the step value ({step}) is higher than the total range of the expression ({value_range})"
    )
}

/// `ValueError(f"Error validating expression {expr!r}: {e}")`. Only `*`, `/`, `-` and
/// digits reach here, so Python's `repr` is the text in single quotes.
fn validation_error(item: &str, message: String) -> CronError {
    CronError::new(format!("Error validating expression '{item}': {message}"))
}

/// `\*(?:/(?P<step>\d+))?$`: `Some(step)` on a match.
fn match_all(item: &str) -> Option<Option<&str>> {
    let rest = item.strip_prefix('*')?;
    if rest.is_empty() {
        return Some(None);
    }
    let step = rest.strip_prefix('/')?;
    (!step.is_empty() && step.chars().all(is_py_digit)).then_some(Some(step))
}

type RangeMatch<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// `(?P<first>\d+)(?:-(?P<last>\d+))?(?:/(?P<step>\d+))?$`.
fn match_range(item: &str) -> Option<RangeMatch<'_>> {
    fn digits_after(text: &str, prefix: char) -> Option<(Option<&str>, &str)> {
        match text.strip_prefix(prefix) {
            Some(rest) => {
                let (digits, rest) = split_while(rest, is_py_digit);
                (!digits.is_empty()).then_some((Some(digits), rest))
            }
            None => Some((None, text)),
        }
    }
    let (first, rest) = split_while(item, is_py_digit);
    if first.is_empty() {
        return None;
    }
    let (last, rest) = digits_after(rest, '-')?;
    let (step, rest) = digits_after(rest, '/')?;
    rest.is_empty().then_some((first, last, step))
}

/// `(?P<first>[a-z]+)(?:-(?P<last>[a-z]+))?` with `re.IGNORECASE`, not end-anchored.
fn match_names(item: &str) -> Option<(&str, Option<&str>)> {
    let (first, rest) = split_while(item, is_py_name_char);
    if first.is_empty() {
        return None;
    }
    let last = rest
        .strip_prefix('-')
        .map(|rest| split_while(rest, is_py_name_char).0)
        .filter(|last| !last.is_empty());
    Some((first, last))
}

/// `last` with `re.IGNORECASE`, not end-anchored (`ſ`, U+017F, folds to `s`).
fn match_last(item: &str) -> bool {
    let mut chars = item.chars();
    matches!(chars.next(), Some('l' | 'L'))
        && matches!(chars.next(), Some('a' | 'A'))
        && matches!(chars.next(), Some('s' | 'S' | '\u{17f}'))
        && matches!(chars.next(), Some('t' | 'T'))
}

fn split_while(text: &str, predicate: fn(char) -> bool) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(_, c)| !predicate(c))
        .map_or(text.len(), |(index, _)| index);
    text.split_at(end)
}

/// Python's `str.isspace()`, which `str.split()` splits on: Unicode `White_Space`
/// plus the information separators U+001C..U+001F.
fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A character `[a-z]` matches under `re.IGNORECASE`: ASCII letters plus the four
/// that Python's regex engine case-folds onto them (İ, ı, ſ and the Kelvin sign).
fn is_py_name_char(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '\u{130}' | '\u{131}' | '\u{17f}' | '\u{212a}')
}

/// What Python's `\d` matches (Unicode category Nd), with its value for `int()`.
fn is_py_digit(c: char) -> bool {
    py_digit_value(c).is_some()
}

/// The zero of every block of ten Unicode decimal digits (Unicode 14.0, Python 3.11).
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

fn py_digit_value(c: char) -> Option<u32> {
    let code = u32::from(c);
    let index = DIGIT_ZEROS.partition_point(|&zero| zero <= code);
    let zero = DIGIT_ZEROS.get(index.checked_sub(1)?)?;
    let value = code - zero;
    (value < 10).then_some(value)
}

/// A non-negative integer of any size, as Python's `int()` reads a `\d+` match;
/// kept as canonical ASCII decimal (no leading zeros) so that errors print like Python.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Num(String);

impl Num {
    fn parse(digits: &str) -> Self {
        let ascii: String = digits
            .chars()
            .filter_map(py_digit_value)
            .filter_map(|value| char::from_digit(value, 10))
            .collect();
        let trimmed = ascii.trim_start_matches('0');
        Self(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
    }

    fn is_zero(&self) -> bool {
        self.0 == "0"
    }

    /// The value, saturated; only called on values already validated to be small.
    fn to_u32(&self) -> u32 {
        self.0.parse().unwrap_or(u32::MAX)
    }

    /// `self - other`.
    fn signed_minus(&self, other: &Num) -> Signed {
        match self.cmp(other) {
            Ordering::Less => Signed::Negative(other.minus(self)),
            _ => Signed::NonNegative(self.minus(other)),
        }
    }

    /// `self - other` for `self >= other`, by schoolbook subtraction.
    fn minus(&self, other: &Num) -> Num {
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
enum Signed {
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

fn ceil_to_minute(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let floor = now.with_second(0)?.with_nanosecond(0)?;
    if floor == now {
        Some(floor)
    } else {
        floor.checked_add_signed(TimeDelta::minutes(1))
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn has_bit(mask: u64, bit: u32) -> bool {
    bit < 64 && mask & (1 << bit) != 0
}

/// The lowest set bit of `mask` at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let remaining = mask.checked_shr(from)?.checked_shl(from)?;
    (remaining != 0).then(|| remaining.trailing_zeros())
}

/// Bits `low..=high` set (`high < 64`).
fn bits_between(low: u32, high: u32) -> u64 {
    if low > high {
        return 0;
    }
    let upto_high = u64::MAX >> (63 - high.min(63));
    upto_high & (u64::MAX << low.min(63))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;

    const NOW: &str = "2025-01-01T01:00:01Z";

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn check(expr: &str, fields: &str, next: &str) {
        let cron = CronExpr::parse(expr).unwrap();
        assert_eq!(cron.fields().join(","), fields, "fields of {expr:?}");
        let got = cron.next_at_or_after(at(NOW)).unwrap();
        assert_eq!(
            got.to_rfc3339_opts(SecondsFormat::Secs, true),
            next,
            "next of {expr:?}"
        );
    }

    fn error(expr: &str) -> String {
        CronExpr::parse(expr).unwrap_err().message().to_owned()
    }

    fn check_error(expr: &str, expected: &str) {
        let message = error(expr);
        assert!(
            message.contains(expected),
            "{expr:?}: {message:?} lacks {expected:?}"
        );
    }

    #[test]
    fn reference_vectors() {
        check("0 8 * * mon-fri", "0,8,*,*,mon-fri", "2025-01-01T08:00:00Z");
        check("15 23 * * *", "15,23,*,*,*", "2025-01-01T23:15:00Z");
        check("0 0 * * 0", "0,0,*,*,0", "2025-01-06T00:00:00Z");
        check("0 0 * * 6", "0,0,*,*,6", "2025-01-05T00:00:00Z");
        check("0 0 * * MON", "0,0,*,*,mon", "2025-01-06T00:00:00Z");
        check("0 0 * * 1,3,5", "0,0,*,*,1,3,5", "2025-01-02T00:00:00Z");
        check("0 0 last * *", "0,0,last,*,*", "2025-01-31T00:00:00Z");
        check("0 0 1 * mon", "0,0,1,*,mon", "2025-09-01T00:00:00Z");
        check(
            "0 0 * * mon-fri/2",
            "0,0,*,*,mon-fri",
            "2025-01-02T00:00:00Z",
        );
        check("1/5 * * * *", "1/5,*,*,*,*", "2025-01-01T01:01:00Z");
        check(" 0  0 1 * * ", "0,0,1,*,*", "2025-02-01T00:00:00Z");
    }

    #[test]
    fn reference_errors() {
        check_error(
            "0 0 * * 7",
            "the last value (7) is higher than the maximum value (6)",
        );
        assert_eq!(error("@daily"), "Wrong number of fields; got 1, expected 5");
        check_error("60 0 * * *", "higher than the maximum value (59)");
        check_error("0 0 0 * *", "lower than the minimum value (1)");
        check_error("0 0 32 * *", "higher than the maximum value (31)");
        check_error("0 0 * 0 *", "lower than the minimum value (1)");
        check_error("*/0 * * * *", "Increment must be higher than 0");
        let min_max = "The minimum value in a range must not be higher than the maximum";
        check_error("5-1 * * * *", min_max);
        check_error("0 0 * * sun-mon", min_max);
        check_error("0 0 * * monday", "Invalid weekday name");
        check_error("? * * * *", "Unrecognized expression");
        check_error("0 , 30 * * * *", "Wrong number of fields");
    }

    #[test]
    fn exact_upstream_messages() {
        assert_eq!(
            error("0 0 * * 7"),
            "Error validating expression '7': the last value (7) is higher than the maximum value (6)"
        );
        assert_eq!(
            error("? * * * *"),
            "Unrecognized expression \"?\" for field \"minute\""
        );
        assert_eq!(error("0 0 * * monday"), "Invalid weekday name \"monday\"");
        assert_eq!(error("0 0 * Janu *"), "Invalid month name \"Janu\"");
        assert_eq!(error("0 0 * jan-foo *"), "Invalid month name \"foo\"");
        assert_eq!(
            error("0 0 1, * *"),
            "Unrecognized expression \"\" for field \"day\""
        );
        assert_eq!(
            error("*/60 * * * *"),
            "Error validating expression '*/60': the step value (60) is higher than the total range of the expression (59)"
        );
        assert_eq!(
            error("50/10 * * * *"),
            "Error validating expression '50/10': the step value (10) is higher than the total range of the expression (9)"
        );
        assert_eq!(
            error("5-5/1 * * * *"),
            "Error validating expression '5-5/1': the step value (1) is higher than the total range of the expression (0)"
        );
        assert_eq!(
            error("123456789012345678901234/5 * * * *"),
            "Error validating expression '123456789012345678901234/5': the step value (5) is higher than the total range of the expression (-123456789012345678901175)"
        );
        assert_eq!(
            error("0 0 * * 00099999999999999999999"),
            "Error validating expression '00099999999999999999999': the last value (99999999999999999999) is higher than the maximum value (6)"
        );
        assert_eq!(
            error("99999999999999999999-99999999999999999998 * * * *"),
            "The minimum value in a range must not be higher than the maximum"
        );
        // Fields are compiled month, day, day_of_week, hour, minute.
        assert_eq!(
            error("60 24 0 13 7"),
            "Error validating expression '13': the last value (13) is higher than the maximum value (12)"
        );
        assert_eq!(
            error("60 24 * * 7"),
            "Error validating expression '7': the last value (7) is higher than the maximum value (6)"
        );
    }

    #[test]
    fn own_vectors() {
        check("0 0 1 jan-mar *", "0,0,1,jan-mar,*", "2025-02-01T00:00:00Z");
        check(
            "0 0 1 Jun,Jan-Feb *",
            "0,0,1,jun,jan-feb,*",
            "2025-02-01T00:00:00Z",
        );
        check("*/15 * * * *", "*/15,*,*,*,*", "2025-01-01T01:15:00Z");
        check("0-30/10 * * * *", "0-30/10,*,*,*,*", "2025-01-01T01:10:00Z");
        check("0 0 29 2 *", "0,0,29,2,*", "2028-02-29T00:00:00Z");
        check("0 0 */10 * *", "0,0,*/10,*,*", "2025-01-11T00:00:00Z");
        check("007 1 * * *", "7,1,*,*,*", "2025-01-01T01:07:00Z");
        check("0 0 * * fri-2", "0,0,*,*,fri", "2025-01-03T00:00:00Z");
        check("0 0 LASTly * *", "0,0,last,*,*", "2025-01-31T00:00:00Z");
        check("0 0 * * mon-mon", "0,0,*,*,mon", "2025-01-06T00:00:00Z");
        check("0 0 * * 5-5", "0,0,*,*,5", "2025-01-04T00:00:00Z");
        check("0-0/30 * * * *", "0/30,*,*,*,*", "2025-01-01T02:00:00Z");
        check("0 0 29 2 mon", "0,0,29,2,mon", "2044-02-29T00:00:00Z");
        check("0 0 31 * *", "0,0,31,*,*", "2025-01-31T00:00:00Z");
        // Arabic-Indic digits are `\d` to Python.
        check(
            "\u{661}\u{665} 23 * * *",
            "15,23,*,*,*",
            "2025-01-01T23:15:00Z",
        );
    }

    #[test]
    fn boundaries_of_now() {
        let cron = CronExpr::parse("0 0 * * *").unwrap();
        let midnight = at("2025-03-01T00:00:00Z");
        assert_eq!(cron.next_at_or_after(midnight), Some(midnight));
        assert_eq!(
            cron.next_at_or_after(at("2025-03-01T00:00:00.001Z")),
            Some(at("2025-03-02T00:00:00Z"))
        );
        assert_eq!(
            cron.next_at_or_after(at("1960-05-05T05:05:05Z")),
            Some(at("1970-01-01T00:00:00Z"))
        );
        assert_eq!(
            cron.next_at_or_after(at("9999-12-31T00:00:01Z")),
            None,
            "APScheduler stops at year 9999"
        );
        let never = CronExpr::parse("0 0 31 2 *").unwrap();
        assert_eq!(never.next_at_or_after(at(NOW)), None);
        assert_eq!(never.next_at_or_after(DateTime::<Utc>::MAX_UTC), None);
        assert_eq!(never.next_at_or_after(DateTime::<Utc>::MIN_UTC), None);
    }

    #[test]
    fn display_and_whitespace() {
        let cron = CronExpr::parse("\t0 8\u{a0}* *\u{1f}mon-fri\n").unwrap();
        assert_eq!(cron.to_string(), "0 8\u{a0}* *\u{1f}mon-fri");
        assert_eq!(cron.fields()[4], "mon-fri");
    }

    #[test]
    fn garbage_never_panics() {
        const ALPHABET: &[char] = &[
            '0', '1', '2', '5', '7', '9', '*', '/', '-', ',', ' ', ' ', ' ', 'm', 'o', 'n', 'l',
            'a', 's', 't', 'J', 'x', '?', '@', '\t', '\u{661}', '\u{17f}', '\u{212a}', 'é', '\n',
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let now = at(NOW);
        for _ in 0..2000 {
            let len = next() % 40;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if let Ok(cron) = CronExpr::parse(&text) {
                let _ = cron.fields();
                let _ = cron.next_at_or_after(now);
            }
        }
        for text in [
            "",
            " ",
            "*",
            "* * * * * *",
            "last last last last last",
            "- - - - -",
        ] {
            let _ = CronExpr::parse(text);
        }
    }
}
