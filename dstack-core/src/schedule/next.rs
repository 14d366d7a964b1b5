//! Evaluation: the first fire time of an expression at or after a given moment.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

use super::CronExpr;

pub(super) const MAX_YEAR: i32 = 9999;

impl CronExpr {
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

pub(super) fn ceil_to_minute(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let floor = now.with_second(0)?.with_nanosecond(0)?;
    if floor == now {
        Some(floor)
    } else {
        floor.checked_add_signed(TimeDelta::minutes(1))
    }
}

pub(super) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub(super) fn has_bit(mask: u64, bit: u32) -> bool {
    bit < 64 && mask & (1 << bit) != 0
}

/// The lowest set bit of `mask` at or above `from`.
pub(super) fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let remaining = mask.checked_shr(from)?.checked_shl(from)?;
    (remaining != 0).then(|| remaining.trailing_zeros())
}

/// Bits `low..=high` set (`high < 64`).
pub(super) fn bits_between(low: u32, high: u32) -> u64 {
    if low > high {
        return 0;
    }
    let upto_high = u64::MAX >> (63 - high.min(63));
    upto_high & (u64::MAX << low.min(63))
}
