//! `${{ namespace.name }}` references: the interpolator and the `groups[i].nodes[j].IP_ADDRESS`
//! references of multi-node runs.
//!
//! `$$` always collapses to `$` where the interpolator runs; `${{` ... `}}` is a reference whose
//! name must be `<ns>.<name>`. Namespaces that are resolved later (secrets on the server, groups
//! at run time) are validated and left verbatim.

/// A reference could not be read, or a variable is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InterpolateError(pub String);

type Result<T> = std::result::Result<T, InterpolateError>;

const OPENING: &str = "${{";
const CLOSING: &str = "}}";

/// Whether `name` is `<ns>.<name>`: one dot, both parts starting with a letter or `_`, then
/// letters, digits and `_`.
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

/// A piece of a scanned string.
enum Piece<'a> {
    /// Literal text (with `$$` already collapsed).
    Text(&'a str),
    /// A reference: the stripped name and the raw `${{ ... }}` text.
    Ref(&'a str, &'a str),
}

/// Splits a string into literal text and references.
fn scan(s: &str) -> Result<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = s.as_bytes();
    while start < s.len() {
        let Some(rel) = s[start..].find('$') else {
            out.push(Piece::Text(&s[start..]));
            break;
        };
        let dollar = start + rel;
        if dollar + 1 >= s.len() {
            out.push(Piece::Text(&s[start..]));
            break;
        }
        if bytes[dollar + 1] == b'$' {
            out.push(Piece::Text(&s[start..=dollar]));
            start = dollar + 2;
            continue;
        }
        if !s[dollar..].starts_with(OPENING) {
            out.push(Piece::Text(&s[start..=dollar]));
            start = dollar + 1;
            continue;
        }
        out.push(Piece::Text(&s[start..dollar]));
        let Some(close_rel) = s[dollar..].find(CLOSING) else {
            return Err(InterpolateError(format!(
                "No pattern closing: {}",
                &s[dollar..]
            )));
        };
        let closing = dollar + close_rel;
        let name = s[dollar + OPENING.len()..closing].trim();
        out.push(Piece::Ref(name, &s[dollar..closing + CLOSING.len()]));
        start = closing + CLOSING.len();
    }
    Ok(out)
}

/// The result of interpolating a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The output text (missing variables become empty).
    pub output: String,
    /// Names of references that had no value, in order.
    pub missing: Vec<String>,
}

/// Interpolates `s`. `lookup(ns, name)` resolves a reference; namespaces in `skip` are left
/// verbatim after validation (`groups` is validated with the groups grammar).
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
    skip: &[&str],
) -> Result<Interpolated> {
    let mut output = String::with_capacity(s.len());
    let mut missing = Vec::new();
    for piece in scan(s)? {
        match piece {
            Piece::Text(t) => output.push_str(t),
            Piece::Ref(name, raw) => {
                let is_groups = name.starts_with("groups[") || name.starts_with("groups.");
                if skip.contains(&"groups") && is_groups {
                    if parse_groups_ref(name).is_none() {
                        return Err(InterpolateError(format!("Illegal reference name: {name}")));
                    }
                    output.push_str(raw);
                    continue;
                }
                if !is_valid_reference_name(name) {
                    return Err(InterpolateError(format!("Illegal reference name: {name}")));
                }
                let (ns, var) = name.split_once('.').unwrap_or((name, ""));
                if skip.contains(&ns) {
                    output.push_str(raw);
                } else if let Some(value) = lookup(ns, var) {
                    output.push_str(&value);
                } else {
                    missing.push(name.to_string());
                }
            }
        }
    }
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

fn take_index(s: &str) -> Option<(usize, &str)> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &rest[end + 1..]))
}

/// Parses the bare name `groups[0].nodes[1].IP_ADDRESS`.
pub fn parse_groups_ref(name: &str) -> Option<GroupsRef> {
    let rest = name.strip_prefix("groups")?;
    let (group, rest) = take_index(rest)?;
    let rest = rest.strip_prefix('.')?;
    let (member, rest) = if let Some(r) = rest.strip_prefix("nodes") {
        (GroupMember::Nodes, r)
    } else {
        (GroupMember::Replicas, rest.strip_prefix("replicas")?)
    };
    let (index, rest) = take_index(rest)?;
    (rest == ".IP_ADDRESS").then_some(GroupsRef {
        group,
        member,
        index,
    })
}

/// Every well-formed groups reference in `s` (escaped `$${{` ones excluded).
pub fn find_groups_refs(s: &str) -> Vec<GroupsRef> {
    let Ok(pieces) = scan(s) else {
        return Vec::new();
    };
    pieces
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(name, _) => parse_groups_ref(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// Whether `s` contains a groups reference.
pub fn contains_groups_ref(s: &str) -> bool {
    !find_groups_refs(s).is_empty()
}

/// Rejects malformed groups references (`groups[0].node[0].IP_ADDRESS`).
pub fn validate_groups_refs(s: &str) -> Result<()> {
    for piece in scan(s)? {
        if let Piece::Ref(name, _) = piece {
            let is_groups = name.starts_with("groups[") || name.starts_with("groups.");
            if is_groups && parse_groups_ref(name).is_none() {
                return Err(InterpolateError(format!("Illegal reference name: {name}")));
            }
        }
    }
    Ok(())
}

/// Rejects references to the wrong member (tasks use `nodes`, services `replicas`).
pub fn validate_groups_ref_member(s: &str, expected: GroupMember) -> Result<()> {
    validate_groups_refs(s)?;
    for r in find_groups_refs(s) {
        if r.member != expected {
            return Err(InterpolateError(format!(
                "Illegal reference name: groups[{}].{}[{}].IP_ADDRESS: use `{}` here",
                r.group,
                r.member.as_str(),
                r.index,
                expected.as_str()
            )));
        }
    }
    Ok(())
}

/// Checks the indexes of `member` references against the sizes of the groups (node counts
/// for tasks; the minimal replica counts for services).
pub fn validate_groups_ref_bounds(s: &str, group_sizes: &[i64], member: GroupMember) -> Result<()> {
    for r in find_groups_refs(s)
        .into_iter()
        .filter(|r| r.member == member)
    {
        let name = format!(
            "groups[{}].{}[{}].IP_ADDRESS",
            r.group,
            member.as_str(),
            r.index
        );
        let Some(&size) = group_sizes.get(r.group) else {
            return Err(InterpolateError(format!(
                "{name}: group index {} is out of range (the run has {} group(s))",
                r.group,
                group_sizes.len()
            )));
        };
        if member == GroupMember::Replicas && size == 0 {
            return Err(InterpolateError(format!(
                "{name}: group {} scales to zero, so no replica is guaranteed at start",
                r.group
            )));
        }
        if r.index as i64 >= size {
            return Err(InterpolateError(format!(
                "{name}: {} index {} is out of range (group {} has {size})",
                member.as_str(),
                r.index,
                r.group
            )));
        }
    }
    Ok(())
}

/// Substitutes groups references with IPs: `view[i][j]` is the IP of member `j` of group `i`
/// (`""` while unknown).
pub fn interpolate_groups_ips(
    s: &str,
    view: &[Vec<String>],
    member: GroupMember,
) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    for piece in scan(s)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(name, raw) => match parse_groups_ref(name) {
                Some(r) if r.member == member => {
                    let ip = view
                        .get(r.group)
                        .and_then(|g| g.get(r.index))
                        .ok_or_else(|| InterpolateError(format!("{name}: index out of range")))?;
                    if ip.is_empty() {
                        return Err(InterpolateError(format!("{name}: IP not available yet")));
                    }
                    out.push_str(ip);
                }
                _ => out.push_str(raw),
            },
        }
    }
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
