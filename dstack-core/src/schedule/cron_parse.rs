//! Compiling one cron field: APScheduler's item grammar (`*`, `*/S`, `N-M/S`, names, `last`),
//! its validation messages, and the bit masks the evaluator reads.

use super::CronError;
use super::pynum::*;

pub(super) const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
pub(super) const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldKind {
    Minute,
    Hour,
    Day,
    Month,
    DayOfWeek,
}

impl FieldKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
            Self::DayOfWeek => "day_of_week",
        }
    }

    /// APScheduler's `MIN_VALUES[name]`.
    pub(super) fn min(self) -> u32 {
        match self {
            Self::Day | Self::Month => 1,
            Self::Minute | Self::Hour | Self::DayOfWeek => 0,
        }
    }

    /// APScheduler's `MAX_VALUES[name]`.
    pub(super) fn max(self) -> u32 {
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
pub(super) struct Field {
    pub(super) mask: u64,
    pub(super) last_day: bool,
    pub(super) rendered: String,
}

impl Field {
    /// `BaseField.compile_expressions`: items split on `,`, each compiled in turn.
    pub(super) fn compile(kind: FieldKind, text: &str) -> Result<Self, CronError> {
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
pub(super) enum Expr {
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
    pub(super) fn compile(kind: FieldKind, item: &str) -> Result<Self, CronError> {
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
    pub(super) fn render(&self) -> String {
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
    pub(super) fn mask(&self, kind: FieldKind) -> u64 {
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
pub(super) fn compile_all(
    kind: FieldKind,
    item: &str,
    step: Option<&str>,
) -> Result<Expr, CronError> {
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
pub(super) fn compile_range(
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
pub(super) fn name_range(
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

pub(super) fn check_increment(step: Option<&Num>) -> Result<(), CronError> {
    if step.is_some_and(Num::is_zero) {
        return Err(CronError::new("Increment must be higher than 0"));
    }
    Ok(())
}

pub(super) fn min_above_max() -> CronError {
    CronError::new("The minimum value in a range must not be higher than the maximum")
}

pub(super) fn step_too_high(step: &Num, value_range: &str) -> String {
    format!(
        "the step value ({step}) is higher than the total range of the expression ({value_range})"
    )
}

/// `ValueError(f"Error validating expression {expr!r}: {e}")`. Only `*`, `/`, `-` and
/// digits reach here, so Python's `repr` is the text in single quotes.
pub(super) fn validation_error(item: &str, message: String) -> CronError {
    CronError::new(format!("Error validating expression '{item}': {message}"))
}

/// `\*(?:/(?P<step>\d+))?$`: `Some(step)` on a match.
pub(super) fn match_all(item: &str) -> Option<Option<&str>> {
    let rest = item.strip_prefix('*')?;
    if rest.is_empty() {
        return Some(None);
    }
    let step = rest.strip_prefix('/')?;
    (!step.is_empty() && step.chars().all(is_py_digit)).then_some(Some(step))
}

type RangeMatch<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// `(?P<first>\d+)(?:-(?P<last>\d+))?(?:/(?P<step>\d+))?$`.
pub(super) fn match_range(item: &str) -> Option<RangeMatch<'_>> {
    pub(super) fn digits_after(text: &str, prefix: char) -> Option<(Option<&str>, &str)> {
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
pub(super) fn match_names(item: &str) -> Option<(&str, Option<&str>)> {
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
pub(super) fn match_last(item: &str) -> bool {
    let mut chars = item.chars();
    matches!(chars.next(), Some('l' | 'L'))
        && matches!(chars.next(), Some('a' | 'A'))
        && matches!(chars.next(), Some('s' | 'S' | '\u{17f}'))
        && matches!(chars.next(), Some('t' | 'T'))
}
