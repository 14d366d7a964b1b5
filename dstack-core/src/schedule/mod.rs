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

mod cron_parse;
mod next;
mod pynum;

use std::fmt;

use cron_parse::{Field, FieldKind};
use pynum::is_py_whitespace;

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
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, SecondsFormat, Utc};

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
