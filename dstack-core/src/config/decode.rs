//! The machinery that turns [`Node`]s into typed values while collecting every problem.
//!
//! Decoders return [`D<T>`]: `Err(Invalid)` means "an issue was recorded in the context", never
//! "stop". A struct decoder decodes every field, so one run reports every wrong property, and
//! runs its cross-field rules only when the fields they read are valid (as the original does).
//! Scalar coercions follow the original's models (pydantic's lax mode with numbers coerced to
//! strings).

use super::node::{Mark, Node, Value};
use super::{Issue, PathSeg};

/// Marker: the decoder recorded an issue for this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// The result of decoding one value.
pub type D<T> = Result<T, Invalid>;

/// Decoding context: the current property path and the issues found so far.
#[derive(Debug, Default)]
pub struct Cx {
    issues: Vec<Issue>,
    path: Vec<PathSeg>,
}

impl Cx {
    /// A fresh context.
    pub fn new() -> Cx {
        Cx::default()
    }

    /// The issues recorded so far.
    pub fn into_issues(self) -> Vec<Issue> {
        self.issues
    }

    /// Whether any issue was recorded.
    pub fn has_issues(&self) -> bool {
        !self.issues.is_empty()
    }

    /// Records an issue at `node` and the current path.
    pub fn error(&mut self, node: &Node, message: impl Into<String>) -> Invalid {
        self.error_at(node.mark, message, None)
    }

    /// Records an issue with a hint.
    pub fn error_help(&mut self, node: &Node, message: impl Into<String>, help: String) -> Invalid {
        self.error_at(node.mark, message, Some(help))
    }

    /// Records an issue at a mark.
    pub fn error_at(
        &mut self,
        mark: Mark,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Invalid {
        self.issues.push(Issue {
            path: self.path.clone(),
            message: message.into(),
            mark,
            help,
        });
        Invalid
    }

    /// Runs `f` on a scratch context at the same path and returns its outcome with the issues
    /// it found, recording nothing here: for unions, where only the failure of every member is
    /// an error (then [`Cx::record`] the members' issues). An `Ok` with issues is a value that
    /// decoded apart from reported problems (such as unknown properties).
    pub fn attempt<T>(&mut self, f: impl FnOnce(&mut Cx) -> D<T>) -> (D<T>, Vec<Issue>) {
        let mut scratch = Cx {
            issues: Vec::new(),
            path: self.path.clone(),
        };
        let out = f(&mut scratch);
        (out, scratch.issues)
    }

    /// Records issues found by [`Cx::attempt`].
    pub fn record(&mut self, issues: Vec<Issue>) -> Invalid {
        self.issues.extend(issues);
        Invalid
    }

    /// Runs `f` with `key` appended to the path.
    pub fn at<T>(&mut self, key: &str, f: impl FnOnce(&mut Cx) -> T) -> T {
        self.path.push(PathSeg::Key(key.to_string()));
        let out = f(self);
        self.path.pop();
        out
    }

    /// Runs `f` with `[index]` appended to the path.
    pub fn at_index<T>(&mut self, index: usize, f: impl FnOnce(&mut Cx) -> T) -> T {
        self.path.push(PathSeg::Index(index));
        let out = f(self);
        self.path.pop();
        out
    }
}

/// Collects a struct's fields from a mapping in one pass, reporting unknown and duplicate keys.
///
/// `accept(key, value)` returns whether `key` is a known property. `allowed` keys (such as the
/// `type` discriminator) are accepted and ignored. Unknown keys are reported without failing
/// the struct (its cross-field rules still run); a non-mapping or a duplicate key fails it.
pub fn collect_fields<'n>(
    cx: &mut Cx,
    node: &'n Node,
    known: &[&str],
    allowed: &[&str],
    mut accept: impl FnMut(&str, &'n Node) -> bool,
) -> D<()> {
    let Some(entries) = node.as_map() else {
        return Err(cx.error(
            node,
            format!(
                "Input should be a valid dictionary, got {}",
                node.kind_name()
            ),
        ));
    };
    let mut ok = true;
    for (i, (key, value)) in entries.iter().enumerate() {
        let Some(name) = key.as_str() else {
            let text = key.to_string();
            cx.at(&text, |cx| {
                cx.error(
                    key,
                    format!("Extra inputs are not permitted: unknown property `{text}`"),
                )
            });
            ok = false;
            continue;
        };
        if entries[..i].iter().any(|(k, _)| k.as_str() == Some(name)) {
            cx.at(name, |cx| {
                cx.error(key, format!("duplicate property `{name}`"))
            });
            ok = false;
            continue;
        }
        if allowed.contains(&name) {
            continue;
        }
        if !accept(name, value) {
            // Reported, but the struct's own rules still run: the original validates once
            // with unknown properties ignored and reports those problems when there are any
            // (`parse_apply_configuration`), so an unknown key never hides them.
            let help = did_you_mean(name, known).map(|m| format!("did you mean `{m}`?"));
            cx.at(name, |cx| {
                cx.error_at(
                    key.mark,
                    format!("Extra inputs are not permitted: unknown property `{name}`"),
                    help,
                )
            });
        }
    }
    if ok { Ok(()) } else { Err(Invalid) }
}

/// Declares a struct of optional field references and fills it from a mapping.
///
/// `fields!(cx, node, [allowed...], { a, b, c })` evaluates to `(D<()>, Fields)` where
/// `Fields.a: Option<&Node>`.
macro_rules! fields {
    ($cx:expr, $node:expr, [$($allowed:literal),*], { $($name:ident),* $(,)? }) => {{
        #[derive(Default)]
        struct Fields<'n> { $($name: Option<&'n $crate::config::node::Node>,)* _p: std::marker::PhantomData<&'n ()> }
        #[allow(unused_mut)]
        let mut f = Fields::default();
        const KNOWN: &[&str] = &[$(stringify!($name)),*];
        let ok = $crate::config::decode::collect_fields($cx, $node, KNOWN, &[$($allowed),*], |key, _value| {
            #[allow(unused_variables)]
            let value = _value;
            // `r#type` is how a field named `type` is spelled in the list.
            let key = if key == "type" { "r#type" } else { key };
            match key {
                $(stringify!($name) => { f.$name = Some(value); true })*
                _ => false,
            }
        });
        (ok, f)
    }};
}
pub(crate) use fields;

/// The closest known name, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| k.trim_start_matches("r#"))
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Decodes a field that may be absent or `null` (both mean unset).
pub fn opt<T>(
    cx: &mut Cx,
    key: &str,
    node: Option<&Node>,
    f: impl FnOnce(&mut Cx, &Node) -> D<T>,
) -> D<Option<T>> {
    match node {
        None => Ok(None),
        Some(n) if n.is_null() => Ok(None),
        Some(n) => cx.at(key, |cx| f(cx, n)).map(Some),
    }
}

/// Decodes a field with a default: absent means the default, `null` is an error.
pub fn def<T>(
    cx: &mut Cx,
    key: &str,
    node: Option<&Node>,
    default: impl FnOnce() -> T,
    f: impl FnOnce(&mut Cx, &Node) -> D<T>,
) -> D<T> {
    match node {
        None => Ok(default()),
        Some(n) => cx.at(key, |cx| {
            if n.is_null() {
                Err(cx.error(
                    n,
                    "Input should not be null: remove the property to use its default",
                ))
            } else {
                f(cx, n)
            }
        }),
    }
}

/// Decodes a required field.
pub fn req<T>(
    cx: &mut Cx,
    parent: &Node,
    key: &str,
    node: Option<&Node>,
    f: impl FnOnce(&mut Cx, &Node) -> D<T>,
) -> D<T> {
    match node {
        None => cx.at(key, |cx| {
            Err(cx.error(parent, format!("Field required: `{key}` is missing")))
        }),
        Some(n) => cx.at(key, |cx| f(cx, n)),
    }
}

/// A string; numbers are coerced to their text as the original does.
pub fn string(cx: &mut Cx, n: &Node) -> D<String> {
    match &n.value {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(_) | Value::Float(_) => Ok(n.scalar_text().unwrap_or_default()),
        _ => Err(cx.error(
            n,
            format!("Input should be a valid string, got {}", n.kind_name()),
        )),
    }
}

/// A non-empty string.
pub fn nonempty_string(cx: &mut Cx, n: &Node) -> D<String> {
    let s = string(cx, n)?;
    if s.is_empty() {
        return Err(cx.error(n, "String should have at least 1 character"));
    }
    Ok(s)
}

/// A boolean, with the spellings pydantic accepts in lax mode.
pub fn boolean(cx: &mut Cx, n: &Node) -> D<bool> {
    if let Some(b) = lax_bool(n) {
        return Ok(b);
    }
    let message = match &n.value {
        Value::Str(s) => {
            format!("Input should be a valid boolean, unable to interpret input `{s}`")
        }
        _ => format!("Input should be a valid boolean, got {}", n.kind_name()),
    };
    Err(cx.error(n, message))
}

/// The boolean pydantic's lax mode reads from a value (`true`, `1`, `"yes"`, `"off"`, ...), if
/// any; for `bool` members of left-to-right unions, which are tried before the others.
pub fn lax_bool(n: &Node) -> Option<bool> {
    match &n.value {
        Value::Bool(b) => Some(*b),
        Value::Int(0) => Some(false),
        Value::Int(1) => Some(true),
        Value::Float(f) if *f == 0.0 => Some(false),
        Value::Float(f) if *f == 1.0 => Some(true),
        Value::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" | "t" | "1" => Some(true),
            "false" | "no" | "off" | "n" | "f" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

pub use crate::resources::parse_py_int as py_int;

/// An integer: integral numbers and numeric strings are accepted.
pub fn integer(cx: &mut Cx, n: &Node) -> D<i64> {
    match &n.value {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        Value::Float(_) => Err(cx.error(
            n,
            "Input should be a valid integer, got a number with a fractional part",
        )),
        Value::Str(s) => py_int(s).ok_or_else(|| {
            cx.error(
                n,
                format!(
                    "Input should be a valid integer, unable to parse string `{s}` as an integer"
                ),
            )
        }),
        _ => Err(cx.error(
            n,
            format!("Input should be a valid integer, got {}", n.kind_name()),
        )),
    }
}

/// An integer within bounds (inclusive).
pub fn integer_in(cx: &mut Cx, n: &Node, min: Option<i64>, max: Option<i64>) -> D<i64> {
    let v = integer(cx, n)?;
    if let Some(min) = min.filter(|m| v < *m) {
        return Err(cx.error(n, format!("Input should be greater than or equal to {min}")));
    }
    if let Some(max) = max.filter(|m| v > *m) {
        return Err(cx.error(n, format!("Input should be less than or equal to {max}")));
    }
    Ok(v)
}

/// A float: integers and numeric strings are accepted.
pub fn float(cx: &mut Cx, n: &Node) -> D<f64> {
    match &n.value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::Str(s) => s.trim().parse::<f64>().map_err(|_| {
            cx.error(
                n,
                format!("Input should be a valid number, unable to parse string `{s}` as a number"),
            )
        }),
        _ => Err(cx.error(
            n,
            format!("Input should be a valid number, got {}", n.kind_name()),
        )),
    }
}

/// A list whose items are decoded with `f`; every item is decoded even when some fail.
pub fn list<T>(cx: &mut Cx, n: &Node, mut f: impl FnMut(&mut Cx, &Node) -> D<T>) -> D<Vec<T>> {
    let Some(items) = n.as_seq() else {
        return Err(cx.error(
            n,
            format!("Input should be a valid list, got {}", n.kind_name()),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match cx.at_index(i, |cx| f(cx, item)) {
            Ok(v) => out.push(v),
            Err(_) => ok = false,
        }
    }
    if ok { Ok(out) } else { Err(Invalid) }
}

/// A list of strings.
pub fn string_list(cx: &mut Cx, n: &Node) -> D<Vec<String>> {
    list(cx, n, string)
}

/// One of a fixed set of string values.
pub fn one_of<T: Copy>(cx: &mut Cx, n: &Node, choices: &[(&str, T)]) -> D<T> {
    let text = match &n.value {
        Value::Str(s) => s.as_str(),
        _ => "",
    };
    if let Some((_, v)) = choices.iter().find(|(name, _)| *name == text) {
        return Ok(*v);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let help = did_you_mean(text, &names).map(|m| format!("did you mean `{m}`?"));
    let message = format!("Input should be {}, got `{}`", expected_list(&names), n);
    Err(cx.error_at(n.mark, message, help))
}

/// `'a', 'b' or 'c'`
pub fn expected_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Combines the outcomes of independently decoded fields.
pub fn all_ok(results: &[bool]) -> D<()> {
    if results.iter().all(|ok| *ok) {
        Ok(())
    } else {
        Err(Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_syntax() {
        assert_eq!(py_int(" 90 "), Some(90));
        assert_eq!(py_int("+7"), Some(7));
        assert_eq!(py_int("-5"), Some(-5));
        assert_eq!(py_int("1_000"), Some(1000));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int("_1"), None);
        assert_eq!(py_int("1.5"), None);
        assert_eq!(py_int(""), None);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("comands", &["commands", "ports"]),
            Some("commands")
        );
        assert_eq!(did_you_mean("resorces", &["resources"]), Some("resources"));
        assert_eq!(did_you_mean("zzz", &["commands"]), None);
    }

    #[test]
    fn expected_lists_read_naturally() {
        assert_eq!(expected_list(&["a"]), "'a'");
        assert_eq!(expected_list(&["a", "b", "c"]), "'a', 'b' or 'c'");
    }
}
