//! `${{ namespace.name }}` references: the interpolator and the `groups[i].nodes[j].IP_ADDRESS`
//! references of multi-node runs.
//!
//! Both follow the original's code exactly, quirks included:
//! - the interpolator (`utils/interpolator.py`) looks for the first `$`: `$$` becomes `$`, but
//!   any other `$` makes it jump to the next `${{` (so `$x $$` stays as it is and
//!   `$x $${{ a.b }}` is a reference); `${{` ... first `}}` is a reference whose stripped name
//!   must be `<ns>.<name>`; references in skipped namespaces are validated and kept verbatim;
//! - the groups helpers (`utils/nodes_interpolator.py`) find references with regular
//!   expressions that skip a `${{` right after a `$`, and treat every name whose namespace is
//!   `groups` (`groups`, `groups.x`, `groups[0]...`) as a groups reference.

/// A reference could not be read, or a variable is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InterpolateError(pub String);

type Result<T> = std::result::Result<T, InterpolateError>;

const OPENING: &str = "${{";
const CLOSING: &str = "}}";

fn illegal(name: &str) -> InterpolateError {
    InterpolateError(format!("Illegal reference name: {name}"))
}

/// Whitespace as Python's `str.strip()` and regex `\s` see it.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Whether `name` is `<ns>.<name>`: one dot, both parts starting with an ASCII letter or `_`,
/// then ASCII letters, digits and `_` (`VariablesInterpolator.validate_name`).
pub fn is_valid_reference_name(name: &str) -> bool {
    let Some((ns, var)) = name.split_once('.') else {
        return false;
    };
    let part_ok = |p: &str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    part_ok(ns) && part_ok(var)
}

/// The namespace of a reference name: `groups[0].nodes[0].IP_ADDRESS` → `groups`.
pub fn namespace_root(name: &str) -> &str {
    let first = name.split('.').next().unwrap_or(name);
    first.split('[').next().unwrap_or(first)
}

/// A piece of a scanned string.
enum Piece<'a> {
    /// Literal text (with `$$` already collapsed).
    Text(&'a str),
    /// A reference: the stripped name and the raw `${{ ... }}` text.
    Ref(&'a str, &'a str),
}

/// Walks a string as `VariablesInterpolator.interpolate` does, handing each piece of literal
/// text and each reference to `on` in order; the first error (from `on`, or an unclosed
/// `${{`) stops the walk.
fn scan<'a>(s: &'a str, mut on: impl FnMut(Piece<'a>) -> Result<()>) -> Result<()> {
    let mut start = 0;
    let bytes = s.as_bytes();
    while start < s.len() {
        let dollar = match s[start..].find('$') {
            Some(rel) if start + rel + 1 < s.len() => start + rel,
            _ => return on(Piece::Text(&s[start..])),
        };
        if bytes[dollar + 1] == b'$' {
            on(Piece::Text(&s[start..=dollar]))?;
            start = dollar + 2;
            continue;
        }
        // Not an escape: the next `${{` from `start` on (possibly past other `$`s) opens a
        // reference.
        let Some(opening) = s[start..].find(OPENING).map(|rel| start + rel) else {
            return on(Piece::Text(&s[start..]));
        };
        on(Piece::Text(&s[start..opening]))?;
        let Some(closing) = s[opening..].find(CLOSING).map(|rel| opening + rel) else {
            return Err(InterpolateError(format!(
                "No pattern closing: {}",
                &s[opening..]
            )));
        };
        let name = py_strip(&s[opening + OPENING.len()..closing]);
        on(Piece::Ref(name, &s[opening..closing + CLOSING.len()]))?;
        start = closing + CLOSING.len();
    }
    Ok(())
}

/// The result of interpolating a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The output text (missing variables become empty).
    pub output: String,
    /// Names of references that had no value, in order.
    pub missing: Vec<String>,
}

/// Interpolates `s`. `lookup(ns, name)` resolves a reference; references whose namespace is in
/// `skip` are validated and left verbatim (`groups` with the groups IP grammar, any other
/// namespace with the `<ns>.<name>` grammar).
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
    skip: &[&str],
) -> Result<Interpolated> {
    let mut output = String::with_capacity(s.len());
    let mut missing = Vec::new();
    scan(s, |piece| {
        match piece {
            Piece::Text(t) => output.push_str(t),
            Piece::Ref(name, raw) => {
                let root = namespace_root(name);
                if skip.contains(&root) {
                    let valid = if root == "groups" {
                        parse_groups_ref(name).is_some()
                    } else {
                        is_valid_reference_name(name)
                    };
                    if !valid {
                        return Err(illegal(name));
                    }
                    output.push_str(raw);
                    return Ok(());
                }
                let Some((ns, var)) = name
                    .split_once('.')
                    .filter(|_| is_valid_reference_name(name))
                else {
                    return Err(illegal(name));
                };
                match lookup(ns, var) {
                    Some(value) => output.push_str(&value),
                    None => missing.push(name.to_string()),
                }
            }
        }
        Ok(())
    })?;
    Ok(Interpolated { output, missing })
}

/// Interpolates and fails when a variable is missing.
pub fn interpolate_or_error(
    s: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
    skip: &[&str],
) -> Result<String> {
    let r = interpolate(s, lookup, skip)?;
    if r.missing.is_empty() {
        Ok(r.output)
    } else {
        let names: Vec<String> = r.missing.iter().map(|m| format!("'{m}'")).collect();
        Err(InterpolateError(format!(
            "Failed to interpolate due to missing vars: [{}]",
            names.join(", ")
        )))
    }
}

/// Which members of a group a reference addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMember {
    /// Nodes of a task's node group.
    Nodes,
    /// Replicas of a service's replica group.
    Replicas,
}

impl GroupMember {
    /// `nodes` / `replicas`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupMember::Nodes => "nodes",
            GroupMember::Replicas => "replicas",
        }
    }
}

/// A `groups[i].<member>[j].IP_ADDRESS` reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupsRef {
    /// Group index.
    pub group: usize,
    /// Nodes or replicas.
    pub member: GroupMember,
    /// Node or replica index.
    pub index: usize,
}

impl GroupsRef {
    fn name(&self) -> String {
        format!(
            "groups[{}].{}[{}].IP_ADDRESS",
            self.group,
            self.member.as_str(),
            self.index
        )
    }
}

/// `[digits]` at the start of `s`: the number (saturating; any larger index is out of range
/// anyway) and the rest.
fn take_index(s: &str) -> Option<(usize, &str)> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = digits.bytes().fold(0usize, |acc, b| {
        acc.saturating_mul(10).saturating_add(usize::from(b - b'0'))
    });
    Some((value, &rest[end + 1..]))
}

/// Reads `groups[i].(nodes|replicas)[j].IP_ADDRESS` at the start of `s`; returns the reference
/// and the rest.
fn take_groups_ref(s: &str) -> Option<(GroupsRef, &str)> {
    let rest = s.strip_prefix("groups")?;
    let (group, rest) = take_index(rest)?;
    let rest = rest.strip_prefix('.')?;
    let (member, rest) = if let Some(r) = rest.strip_prefix("nodes") {
        (GroupMember::Nodes, r)
    } else {
        (GroupMember::Replicas, rest.strip_prefix("replicas")?)
    };
    let (index, rest) = take_index(rest)?;
    let rest = rest.strip_prefix(".IP_ADDRESS")?;
    Some((
        GroupsRef {
            group,
            member,
            index,
        },
        rest,
    ))
}

/// Parses the bare name `groups[0].nodes[1].IP_ADDRESS` (surrounding whitespace allowed), as
/// `is_valid_groups_ip_ref` accepts it.
pub fn parse_groups_ref(name: &str) -> Option<GroupsRef> {
    match take_groups_ref(py_strip(name)) {
        Some((r, "")) => Some(r),
        _ => None,
    }
}

/// Where a `${{` may start a reference for the groups helpers: not right after a `$`.
fn ref_openings(s: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = s.as_bytes();
    (0..s.len()).filter(move |&i| {
        bytes[i] == b'$' && (i == 0 || bytes[i - 1] != b'$') && s[i + 1..].starts_with("{{")
    })
}

/// Every `${{ name }}` the original's `_ANY_REF` finds: `(start, end, stripped name)`.
fn any_refs(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut next_free = 0;
    for i in ref_openings(s) {
        if i < next_free {
            continue;
        }
        let body_start = i + OPENING.len();
        let Some(close) = s[body_start..].find('}').map(|rel| body_start + rel) else {
            continue;
        };
        if close > body_start && s[close + 1..].starts_with('}') {
            out.push((i, close + 2, py_strip(&s[body_start..close])));
            next_free = close + 2;
        }
    }
    out
}

/// Every well-formed groups reference in `s` (`${{ groups[i].<member>[j].IP_ADDRESS }}`, not
/// right after a `$`), with its span.
fn groups_ref_spans(s: &str) -> Vec<(usize, usize, GroupsRef)> {
    let mut out = Vec::new();
    let mut next_free = 0;
    for i in ref_openings(s) {
        if i < next_free {
            continue;
        }
        let body = s[i + OPENING.len()..].trim_start_matches(is_py_space);
        let Some((r, rest)) = take_groups_ref(body) else {
            continue;
        };
        let rest = rest.trim_start_matches(is_py_space);
        if let Some(after) = rest.strip_prefix(CLOSING) {
            let end = s.len() - after.len();
            out.push((i, end, r));
            next_free = end;
        }
    }
    out
}

/// Every well-formed groups reference in `s` (escaped `$${{` ones excluded).
pub fn find_groups_refs(s: &str) -> Vec<GroupsRef> {
    groups_ref_spans(s).into_iter().map(|(_, _, r)| r).collect()
}

/// Whether `s` has a reference in the `groups` namespace, well-formed or not.
pub fn contains_groups_ref(s: &str) -> bool {
    any_refs(s)
        .iter()
        .any(|(_, _, name)| namespace_root(name) == "groups")
}

/// Rejects malformed groups references (`groups[0].node[0].IP_ADDRESS`, `groups.x`).
pub fn validate_groups_refs(s: &str) -> Result<()> {
    for (_, _, name) in any_refs(s) {
        if namespace_root(name) == "groups" && parse_groups_ref(name).is_none() {
            return Err(illegal(name));
        }
    }
    Ok(())
}

/// Rejects references to the wrong member (tasks use `nodes`, services `replicas`).
pub fn validate_groups_ref_member(s: &str, expected: GroupMember) -> Result<()> {
    match find_groups_refs(s)
        .into_iter()
        .find(|r| r.member != expected)
    {
        Some(r) => Err(illegal(&r.name())),
        None => Ok(()),
    }
}

/// Checks the indexes of `member` references against the sizes of the groups (node counts
/// for tasks; the minimal replica counts for services).
pub fn validate_groups_ref_bounds(s: &str, group_sizes: &[i64], member: GroupMember) -> Result<()> {
    for r in find_groups_refs(s)
        .into_iter()
        .filter(|r| r.member == member)
    {
        let size = group_sizes.get(r.group).copied();
        let in_range = size.is_some_and(|size| i64::try_from(r.index).is_ok_and(|i| i < size));
        if in_range {
            continue;
        }
        let why = if member == GroupMember::Replicas && size == Some(0) {
            "this group scales to zero, so no replica is guaranteed at start"
        } else {
            "out of range"
        };
        return Err(InterpolateError(format!(
            "Invalid reference {}: {why}",
            r.name()
        )));
    }
    Ok(())
}

/// Substitutes groups references with IPs: `view[i][j]` is the IP of member `j` of group `i`
/// (`""` while unknown). The references are validated first (grammar, member, bounds against
/// the view); nothing else in `s` changes (`$$` stays).
pub fn interpolate_groups_ips(
    s: &str,
    view: &[Vec<String>],
    member: GroupMember,
) -> Result<String> {
    validate_groups_refs(s)?;
    validate_groups_ref_member(s, member)?;
    let sizes: Vec<i64> = view
        .iter()
        .map(|g| i64::try_from(g.len()).unwrap_or(i64::MAX))
        .collect();
    validate_groups_ref_bounds(s, &sizes, member)?;
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (start, end, r) in groups_ref_spans(s) {
        let ip = view
            .get(r.group)
            .and_then(|g| g.get(r.index))
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| InterpolateError(format!("IP not available for {}", r.name())))?;
        out.push_str(&s[last..start]);
        out.push_str(ip);
        last = end;
    }
    out.push_str(&s[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> Result<Interpolated> {
        interpolate(
            s,
            &|ns, name| (ns == "run" && name == "args").then(|| "qwerty".to_string()),
            &["secrets"],
        )
    }

    #[test]
    fn escapes_and_references() {
        assert_eq!(run("echo $$").map(|r| r.output), Ok("echo $".into()));
        assert_eq!(
            run("echo $${{ENV}}").map(|r| r.output),
            Ok("echo ${{ENV}}".into())
        );
        assert_eq!(
            run("x ${{ run.args }}${{ run.args }}").map(|r| r.output),
            Ok("x qwertyqwerty".into())
        );
        assert_eq!(run("a $ b").map(|r| r.output), Ok("a $ b".into()));
        assert_eq!(
            run("${{ secrets.t }}").map(|r| r.output),
            Ok("${{ secrets.t }}".into())
        );
        let r = run("${{ env.name }}").expect("scans");
        assert_eq!(r.missing, vec!["env.name".to_string()]);
        assert!(run("${{ secrets.password }").is_err());
        assert!(run("${{ secrets.007 }}").is_err());
    }

    #[test]
    fn groups_refs() {
        let r = parse_groups_ref("groups[1].replicas[2].IP_ADDRESS").expect("parses");
        assert_eq!((r.group, r.member, r.index), (1, GroupMember::Replicas, 2));
        assert!(parse_groups_ref("groups[0].node[0].IP_ADDRESS").is_none());
        assert!(find_groups_refs("$${{ groups[0].nodes[0].IP_ADDRESS }}").is_empty());
    }
}
