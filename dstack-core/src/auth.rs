//! Who may do what: the bearer token of a request, global and project roles, and the original's
//! rules for changing a project's members (`services/projects.py`), plus one rule of ours: a
//! project always keeps an admin. Pure: the server passes in the caller and the members.

use crate::lifecycle::UnknownValue;

/// A user's role on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalRole {
    /// May do anything.
    Admin,
    /// May use the projects they are a member of.
    User,
}

/// A member's role in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProjectRole {
    /// Manages the project, its members and admins.
    Admin,
    /// Manages members (not admins) and secrets.
    Manager,
    /// Runs things.
    User,
}

impl GlobalRole {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            GlobalRole::Admin => "admin",
            GlobalRole::User => "user",
        }
    }

    /// Reads a wire value.
    pub fn parse(value: &str) -> Result<GlobalRole, UnknownValue> {
        match value {
            "admin" => Ok(GlobalRole::Admin),
            "user" => Ok(GlobalRole::User),
            other => Err(UnknownValue {
                kind: "global role",
                value: other.into(),
            }),
        }
    }
}

impl ProjectRole {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Admin => "admin",
            ProjectRole::Manager => "manager",
            ProjectRole::User => "user",
        }
    }

    /// Reads a wire value.
    pub fn parse(value: &str) -> Result<ProjectRole, UnknownValue> {
        match value {
            "admin" => Ok(ProjectRole::Admin),
            "manager" => Ok(ProjectRole::Manager),
            "user" => Ok(ProjectRole::User),
            other => Err(UnknownValue {
                kind: "project role",
                value: other.into(),
            }),
        }
    }

    /// Whether the role manages members and secrets.
    pub fn manages(self) -> bool {
        matches!(self, ProjectRole::Admin | ProjectRole::Manager)
    }
}

/// The token of an `Authorization: Bearer <token>` header value; the scheme is
/// case-insensitive, as HTTP says. The API and the proxy both use this.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The message of a 403 that says only "no".
pub const ACCESS_DENIED: &str = "Access denied";

/// The body of a 403 (`{"detail": {"msg": ..., "code": null}}`), the API's and the proxy's.
pub fn forbidden_body(msg: &str) -> serde_json::Value {
    serde_json::json!({"detail": {"msg": msg, "code": null}})
}

/// A membership change that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The caller may not make it (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// It is invalid (HTTP 400).
    #[error("{0}")]
    Invalid(String),
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller<'a> {
    /// Their name.
    pub username: &'a str,
    /// Their role on the server.
    pub global: GlobalRole,
    /// Their role in the project, if a member.
    pub project: Option<ProjectRole>,
}

impl Caller<'_> {
    fn admin(&self) -> bool {
        self.global == GlobalRole::Admin
    }

    fn manager_only(&self) -> bool {
        !self.admin() && self.project == Some(ProjectRole::Manager)
    }

    fn may_manage(&self) -> bool {
        self.admin() || self.project.is_some_and(ProjectRole::manages)
    }
}

fn no_duplicates(names: impl Iterator<Item = String>) -> Result<(), MembershipError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(MembershipError::Invalid(
                "Cannot add same user multiple times".into(),
            ));
        }
    }
    Ok(())
}

/// Whether `caller` may replace the members (`current`) with `new` (`set_members`).
pub fn check_set_members(
    caller: Caller<'_>,
    current: &[(&str, ProjectRole)],
    new: &[(&str, ProjectRole)],
) -> Result<(), MembershipError> {
    no_duplicates(new.iter().map(|(n, _)| n.to_string()))?;
    if !caller.may_manage() {
        return Err(MembershipError::Forbidden(ACCESS_DENIED.into()));
    }
    if caller.manager_only() {
        let admins = |list: &[(&str, ProjectRole)]| {
            let mut names: Vec<String> = list
                .iter()
                .filter(|(_, r)| *r == ProjectRole::Admin)
                .map(|(n, _)| n.to_string())
                .collect();
            names.sort();
            names
        };
        if admins(new) != admins(current) {
            return Err(MembershipError::Forbidden(
                "Access denied: changing project admins".into(),
            ));
        }
    }
    if !new.iter().any(|(_, r)| *r == ProjectRole::Admin) {
        return Err(MembershipError::Invalid(
            "Cannot remove all project admins".into(),
        ));
    }
    Ok(())
}

/// Whether `caller` may add (or change the roles of) `new` members (`add_members`). A
/// non-member may join a public project as a `user`.
pub fn check_add_members(
    caller: Caller<'_>,
    public: bool,
    new: &[(&str, ProjectRole)],
) -> Result<(), MembershipError> {
    no_duplicates(new.iter().map(|(n, _)| n.to_string()))?;
    let self_join =
        new.len() == 1 && public && new[0].0 == caller.username && caller.project.is_none();
    if self_join {
        if new[0].1 != ProjectRole::User {
            return Err(MembershipError::Forbidden(
                "Access denied: can only join public projects as user role".into(),
            ));
        }
        return Ok(());
    }
    if !caller.may_manage() {
        return Err(MembershipError::Forbidden(
            "Access denied: insufficient permissions to add members".into(),
        ));
    }
    if caller.manager_only() && new.iter().any(|(_, r)| *r == ProjectRole::Admin) {
        return Err(MembershipError::Forbidden(
            "Access denied: only global admins can add project admins".into(),
        ));
    }
    Ok(())
}

/// Whether `caller` may change the role of existing admins among `new` (`add_members` can
/// demote): only global admins may, and a project keeps at least one admin.
pub fn check_role_changes(
    caller: Caller<'_>,
    current: &[(&str, ProjectRole)],
    new: &[(&str, ProjectRole)],
) -> Result<(), MembershipError> {
    let demoted: Vec<&str> = new
        .iter()
        .filter(|(n, r)| {
            *r != ProjectRole::Admin
                && current
                    .iter()
                    .any(|(c, cr)| c == n && *cr == ProjectRole::Admin)
        })
        .map(|(n, _)| *n)
        .collect();
    if demoted.is_empty() {
        return Ok(());
    }
    if !caller.admin() {
        return Err(MembershipError::Forbidden(
            "Access denied: changing project admins".into(),
        ));
    }
    let admins_left = current
        .iter()
        .filter(|(n, r)| *r == ProjectRole::Admin && !demoted.contains(n))
        .count()
        + new.iter().filter(|(_, r)| *r == ProjectRole::Admin).count();
    if admins_left == 0 {
        return Err(MembershipError::Invalid(
            "Cannot remove all project admins".into(),
        ));
    }
    Ok(())
}

/// Whether `caller` may remove `names` from the members (`current`) (`remove_members`).
/// Members may leave; only global admins remove admins; the last admin stays.
pub fn check_remove_members(
    caller: Caller<'_>,
    current: &[(&str, ProjectRole)],
    names: &[&str],
) -> Result<(), MembershipError> {
    let self_leave = names.len() == 1 && names[0] == caller.username && caller.project.is_some();
    if !self_leave && !caller.may_manage() {
        return Err(MembershipError::Forbidden(
            "Access denied: insufficient permissions to remove members".into(),
        ));
    }
    let total_admins = current
        .iter()
        .filter(|(_, r)| *r == ProjectRole::Admin)
        .count();
    let mut admin_removals = 0;
    for name in names {
        let Some((_, role)) = current.iter().find(|(n, _)| n == name) else {
            return Err(MembershipError::Invalid(format!(
                "User is not a member of this project: {name}"
            )));
        };
        if *role == ProjectRole::Admin {
            if self_leave {
                if total_admins <= 1 {
                    return Err(MembershipError::Invalid(
                        "Cannot leave project: you are the last admin".into(),
                    ));
                }
            } else if !caller.admin() {
                return Err(MembershipError::Forbidden(format!(
                    "Access denied: only global admins can remove project admins (user: {name})"
                )));
            }
            admin_removals += 1;
        }
    }
    if !self_leave && admin_removals >= total_admins && total_admins > 0 {
        return Err(MembershipError::Invalid(
            "Cannot remove all project admins".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProjectRole::{Admin, Manager, User};

    fn caller(name: &str, global: GlobalRole, project: Option<ProjectRole>) -> Caller<'_> {
        Caller {
            username: name,
            global,
            project,
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn managers_cannot_touch_admins() {
        let m = caller("mona", GlobalRole::User, Some(Manager));
        let current = [("owner", Admin), ("mona", Manager), ("uma", User)];
        // Promote themself.
        assert!(matches!(
            check_add_members(m, false, &[("mona", Admin)]),
            Err(MembershipError::Forbidden(_))
        ));
        assert!(matches!(
            check_set_members(m, &current, &[("owner", Admin), ("mona", Admin)]),
            Err(MembershipError::Forbidden(_))
        ));
        // Remove the owner (an admin).
        assert!(matches!(
            check_remove_members(m, &current, &["owner"]),
            Err(MembershipError::Forbidden(_))
        ));
        assert!(matches!(
            check_set_members(m, &current, &[("mona", Manager)]),
            Err(MembershipError::Forbidden(_))
        ));
        // Demote an admin through add_members.
        assert!(matches!(
            check_role_changes(m, &current, &[("owner", User)]),
            Err(MembershipError::Forbidden(_))
        ));
        // Users are fine.
        assert_eq!(check_add_members(m, false, &[("new", User)]), Ok(()));
        assert_eq!(check_remove_members(m, &current, &["uma"]), Ok(()));
        assert_eq!(
            check_set_members(m, &current, &[("owner", Admin), ("mona", Manager)]),
            Ok(())
        );
    }

    #[test]
    fn a_project_keeps_an_admin() {
        let a = caller("root", GlobalRole::Admin, None);
        let current = [("owner", Admin), ("uma", User)];
        assert!(matches!(
            check_set_members(a, &current, &[]),
            Err(MembershipError::Invalid(_))
        ));
        assert!(matches!(
            check_remove_members(a, &current, &["owner"]),
            Err(MembershipError::Invalid(_))
        ));
        assert!(matches!(
            check_role_changes(a, &current, &[("owner", User)]),
            Err(MembershipError::Invalid(_))
        ));
        assert_eq!(
            check_role_changes(a, &current, &[("owner", User), ("uma", Admin)]),
            Ok(())
        );
        let o = caller("owner", GlobalRole::User, Some(Admin));
        assert!(matches!(
            check_remove_members(o, &current, &["owner"]),
            Err(MembershipError::Invalid(_))
        ));
    }

    #[test]
    fn duplicates_and_outsiders() {
        let a = caller("root", GlobalRole::Admin, None);
        assert!(matches!(
            check_add_members(a, false, &[("x", User), ("x", Admin)]),
            Err(MembershipError::Invalid(_))
        ));
        let outsider = caller("eve", GlobalRole::User, None);
        assert!(matches!(
            check_add_members(outsider, false, &[("eve", User)]),
            Err(MembershipError::Forbidden(_))
        ));
        assert_eq!(check_add_members(outsider, true, &[("eve", User)]), Ok(()));
        assert!(check_add_members(outsider, true, &[("eve", Admin)]).is_err());
        let user = caller("uma", GlobalRole::User, Some(User));
        assert_eq!(
            check_remove_members(user, &[("owner", Admin), ("uma", User)], &["uma"]),
            Ok(())
        );
        assert!(
            check_remove_members(user, &[("owner", Admin), ("uma", User)], &["owner"]).is_err()
        );
    }
}
