//! Durations: plain (`90`, `5m`), offable (`max_duration`, `stop_duration`), idle
//! (`idle_duration`, `auto_cleanup_duration`) and the dev environment's `inactivity_duration`.

use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D};
use crate::config::node::{Node, Value};

/// Parses a duration in seconds: a number, Python-`int()` text, or `<n>[smhdw]`.
pub fn parse_duration(s: &str) -> Option<i64> {
    if let Some(v) = decode::py_int(s) {
        return Some(v);
    }
    let digits_end = s.bytes().position(|b| !b.is_ascii_digit())?;
    if digits_end == 0 {
        return None;
    }
    let (number, rest) = s.split_at(digits_end);
    let unit = rest.trim_start_matches(' ');
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.parse::<i64>().ok()?.checked_mul(scale)
}

/// A plain duration (seconds).
pub fn duration(cx: &mut Cx, n: &Node) -> D<i64> {
    match &n.value {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Float(f) => Ok(f.trunc() as i64),
        Value::Str(s) => parse_duration(s).ok_or_else(|| {
            cx.error_help(
                n,
                format!("Cannot parse the duration {s}"),
                "write seconds (`90`) or a number with one unit: `30s`, `5m`, `1h`, `2d`, `1w`"
                    .into(),
            )
        }),
        _ => Err(cx.error(n, format!("Cannot parse the duration {n}"))),
    }
}

/// A duration that may be switched off (`max_duration`, `stop_duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffableDuration {
    /// `off` / `false`: no limit.
    Off,
    /// A limit in seconds.
    Seconds(i64),
}

impl Serialize for OffableDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OffableDuration::Off => s.serialize_str("off"),
            OffableDuration::Seconds(v) => s.serialize_i64(*v),
        }
    }
}

/// `Some(true)` for `off`/`false`, `Some(false)` for `true` and `null` (both mean "unset, use
/// the default"), `None` for anything that must be read as a duration.
fn is_off(n: &Node) -> Option<bool> {
    match &n.value {
        Value::Null => Some(false),
        Value::Bool(b) => Some(!b),
        Value::Str(s) if s == "off" => Some(true),
        _ => None,
    }
}

/// `max_duration` / `stop_duration`: `off`/`false` → off, `true`/`null` → unset (`None`),
/// negatives rejected.
pub fn offable_duration(cx: &mut Cx, n: &Node) -> D<Option<OffableDuration>> {
    match is_off(n) {
        Some(true) => Ok(Some(OffableDuration::Off)),
        Some(false) => Ok(None),
        None => {
            let v = duration(cx, n)?;
            if v < 0 {
                return Err(cx.error(n, "Duration cannot be negative"));
            }
            Ok(Some(OffableDuration::Seconds(v)))
        }
    }
}

/// `idle_duration` / `auto_cleanup_duration`: `off`/`false` → -1, `true`/`null` → unset
/// (`None`); negatives are kept as given (they all mean off).
pub fn idle_duration(cx: &mut Cx, n: &Node) -> D<Option<i64>> {
    match is_off(n) {
        Some(true) => Ok(Some(-1)),
        Some(false) => Ok(None),
        None => duration(cx, n).map(Some),
    }
}

/// `inactivity_duration`: `off`, `false`, `true` and `null` all mean unset; negatives rejected.
pub fn inactivity_duration(cx: &mut Cx, n: &Node) -> D<Option<i64>> {
    match is_off(n) {
        Some(_) => Ok(None),
        None => {
            let v = duration(cx, n)?;
            if v < 0 {
                return Err(cx.error(n, "Duration cannot be negative"));
            }
            Ok(Some(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration(" 90 "), Some(90));
        assert_eq!(parse_duration("2 h"), Some(7200));
        assert_eq!(parse_duration("1d"), Some(86400));
        assert_eq!(parse_duration("1H"), None);
        assert_eq!(parse_duration(" 2h"), None);
        assert_eq!(parse_duration("2h "), None);
        assert_eq!(parse_duration("1h30m"), None);
        assert_eq!(parse_duration("1.5h"), None);
        assert_eq!(parse_duration(""), None);
    }
}
