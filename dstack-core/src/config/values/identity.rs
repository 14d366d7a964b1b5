//! Users, tags, entity references (`gateway`, `fleets`) and registry credentials.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::{Node, Value};

/// A Unix user and group, by id or name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UnixUser {
    /// Numeric user id.
    pub uid: Option<i64>,
    /// Numeric group id.
    pub gid: Option<i64>,
    /// User name.
    pub username: Option<String>,
    /// Group name.
    pub groupname: Option<String>,
}

impl UnixUser {
    /// Parses `user[:group]`, each part an id or a name.
    pub fn parse(s: &str) -> Result<UnixUser, String> {
        let fail = |why: String| Err(format!("invalid user format: {why}"));
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 2 {
            return fail("too many parts".into());
        }
        let mut user = UnixUser::default();
        match parts[0] {
            "" => return fail("empty user name or id".into()),
            u => match decode::py_int(u) {
                Some(uid) if uid < 0 => return fail(format!("negative uid {uid}")),
                Some(uid) => user.uid = Some(uid),
                None => user.username = Some(u.to_string()),
            },
        }
        if let Some(group) = parts.get(1) {
            match *group {
                "" => return fail("empty group name or id".into()),
                g => match decode::py_int(g) {
                    Some(gid) if gid < 0 => return fail(format!("negative gid {gid}")),
                    Some(gid) => user.gid = Some(gid),
                    None => user.groupname = Some(g.to_string()),
                },
            }
        }
        Ok(user)
    }
}

/// `user`: validated as `user[:group]`, kept as written.
pub fn user(cx: &mut Cx, n: &Node) -> D<String> {
    let s = decode::string(cx, n)?;
    UnixUser::parse(&s).map_err(|m| cx.error(n, m))?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// tags

/// Whether a tag key is valid: `^[_\-a-zA-Z0-9]{1,60}$`.
pub fn is_valid_tag_key(k: &str) -> bool {
    (1..=60).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a tag value is valid: `^[a-zA-Z0-9 .:/=_\-+@]{0,256}$`.
pub fn is_valid_tag_value(v: &str) -> bool {
    v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" .:/=_-+@".contains(&b))
}

/// Resource tags, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(pub Vec<(String, String)>);

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `tags`: a mapping of valid keys to valid values.
pub fn tags(cx: &mut Cx, n: &Node) -> D<Tags> {
    let Some(entries) = n.as_map() else {
        return Err(cx.error(
            n,
            format!("Input should be a valid dictionary, got {}", n.kind_name()),
        ));
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let key = k.scalar_text().unwrap_or_default();
        let r = cx.at(&key, |cx| {
            let value = decode::string(cx, v)?;
            if !is_valid_tag_key(&key) {
                return Err(cx.error(
                    k,
                    format!("Invalid tag key {key}. The key must match regex '^[_\\-a-zA-Z0-9]{{1,60}}$'"),
                ));
            }
            if !is_valid_tag_value(&value) {
                return Err(cx.error(
                    v,
                    format!("Invalid tag value {value}. The value must match regex '^[a-zA-Z0-9 .:/=_\\-+@]{{0,256}}$'"),
                ));
            }
            Ok(value)
        });
        match r {
            Ok(value) => out.push((key, value)),
            Err(_) => ok = false,
        }
    }
    if ok {
        Ok(Tags(out))
    } else {
        Err(decode::Invalid)
    }
}

// ---------------------------------------------------------------------------------------------
// Entity references

/// A reference to a fleet or gateway, optionally in another project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityReference {
    /// The project; `None` = the run's project.
    pub project: Option<String>,
    /// The name.
    pub name: String,
}

impl EntityReference {
    /// Parses `<name>` or `<project>/<name>`.
    pub fn parse(s: &str) -> Result<EntityReference, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            "Invalid entity reference. Only `<name>` or `<project>/<name>` formats are allowed"
                .to_string()
        };
        match parts[..] {
            [name] if !name.is_empty() => Ok(EntityReference {
                project: None,
                name: name.into(),
            }),
            [project, name] if !project.is_empty() && !name.is_empty() => Ok(EntityReference {
                project: Some(project.into()),
                name: name.into(),
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for EntityReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.project {
            Some(p) => write!(f, "{p}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A string or `{project, name}` reference.
pub fn entity_reference(cx: &mut Cx, n: &Node) -> D<EntityReference> {
    match &n.value {
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { project, name });
            let project = decode::opt(cx, "project", f.project, decode::string);
            let name = decode::req(cx, n, "name", f.name, decode::string);
            ok?;
            Ok(EntityReference {
                project: project?,
                name: name?,
            })
        }
        _ => {
            let s = decode::string(cx, n)?;
            EntityReference::parse(&s).map_err(|m| cx.error(n, m))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// registry_auth

/// Credentials for a private image registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RegistryAuth {
    /// User name (may use `${{ env.X }}` / `${{ secrets.X }}`).
    pub username: String,
    /// Password or token (may use `${{ env.X }}` / `${{ secrets.X }}`).
    pub password: String,
}

/// `registry_auth`.
pub fn registry_auth(cx: &mut Cx, n: &Node) -> D<RegistryAuth> {
    let (ok, f) = fields!(cx, n, [], { username, password });
    let username = decode::req(cx, n, "username", f.username, decode::string);
    let password = decode::req(cx, n, "password", f.password, decode::string);
    ok?;
    Ok(RegistryAuth {
        username: username?,
        password: password?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(
            UnixUser::parse("1000:wheel").map(|u| (u.uid, u.groupname)),
            Ok((Some(1000), Some("wheel".into())))
        );
        assert_eq!(
            UnixUser::parse("-1:g"),
            Err("invalid user format: negative uid -1".into())
        );
    }
}
