//! `repos` items.

use serde::Serialize;

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::{Node, Value};

/// What to do when the repo directory already exists in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoExistsAction {
    /// Fail the job.
    Error,
    /// Leave the directory as it is.
    Skip,
}

/// A `repos` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoSpec {
    /// A local directory to upload.
    pub local_path: Option<String>,
    /// A remote Git URL to clone.
    pub url: Option<String>,
    /// Branch to check out.
    pub branch: Option<String>,
    /// Commit to check out.
    pub hash: Option<String>,
    /// Where the repo goes in the container (`.` = the working directory).
    pub path: String,
    /// What to do if `path` exists.
    pub if_exists: RepoExistsAction,
}

fn check_repo_path(p: &str) -> Result<(), String> {
    if p.starts_with('~') && p != "~" && !p.starts_with("~/") {
        return Err("`~username` syntax is not supported".into());
    }
    Ok(())
}

/// Parses the string shorthand of a repo: `.`, `..:/repo`, `https://host/r.git:/repo`,
/// `git@host:r.git:/repo`.
pub fn parse_repo(s: &str) -> Result<RepoSpec, String> {
    let mut parts: Vec<String> = s.split(':').map(str::to_string).collect();
    let mut is_url = false;
    if parts.len() > 1 && (parts[0].contains('@') || parts[1].starts_with("//")) {
        let head = parts.remove(0);
        parts[0] = format!("{head}:{}", parts[0]);
        is_url = true;
    } else if parts.len() > 1
        && parts[0].len() == 1
        && parts[0].as_bytes()[0].is_ascii_alphabetic()
        && parts[1].starts_with(['\\', '/'])
    {
        let drive = parts.remove(0);
        parts[0] = format!("{drive}:{}", parts[0]);
    }
    let (source, path) = match &parts[..] {
        [one] => (one.clone(), ".".to_string()),
        [one, path] => (one.clone(), path.clone()),
        _ => return Err(format!("Invalid repo: {s}")),
    };
    check_repo_path(&path)?;
    let (local_path, url) = if is_url {
        (None, Some(source))
    } else {
        (Some(source), None)
    };
    Ok(RepoSpec {
        local_path,
        url,
        branch: None,
        hash: None,
        path,
        if_exists: RepoExistsAction::Error,
    })
}

/// A `repos` item.
pub fn repo(cx: &mut Cx, n: &Node) -> D<RepoSpec> {
    match &n.value {
        Value::Str(s) => parse_repo(s).map_err(|m| cx.error(n, m)),
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { local_path, url, branch, hash, path, if_exists });
            let local_path = decode::opt(cx, "local_path", f.local_path, decode::string);
            let url = decode::opt(cx, "url", f.url, decode::string);
            let branch = decode::opt(cx, "branch", f.branch, decode::string);
            let hash = decode::opt(cx, "hash", f.hash, decode::string);
            let path = decode::def(
                cx,
                "path",
                f.path,
                || ".".to_string(),
                |cx, n| {
                    let p = decode::string(cx, n)?;
                    check_repo_path(&p).map_err(|m| cx.error(n, m))?;
                    Ok(p)
                },
            );
            let if_exists = decode::def(
                cx,
                "if_exists",
                f.if_exists,
                || RepoExistsAction::Error,
                |cx, n| {
                    decode::one_of(
                        cx,
                        n,
                        &[
                            ("error", RepoExistsAction::Error),
                            ("skip", RepoExistsAction::Skip),
                        ],
                    )
                },
            );
            ok?;
            let (local_path, url) = (local_path?, url?);
            match (&local_path, &url) {
                (Some(_), Some(_)) => {
                    return Err(cx.error(n, "`local_path` and `url` are mutually exclusive"));
                }
                (None, None) => {
                    return Err(cx.error(n, "Either `local_path` or `url` must be specified"));
                }
                _ => {}
            }
            Ok(RepoSpec {
                local_path,
                url,
                branch: branch?,
                hash: hash?,
                path: path?,
                if_exists: if_exists?,
            })
        }
        _ => Err(cx.error(
            n,
            format!("expected a path, a URL or a mapping, got {}", n.kind_name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos() {
        let r = parse_repo("git@example.com:repo.git:/repo").expect("parses");
        assert_eq!(r.url.as_deref(), Some("git@example.com:repo.git"));
        assert_eq!(r.path, "/repo");
        let r = parse_repo("C:\\repo:/repo").expect("parses");
        assert_eq!(r.local_path.as_deref(), Some("C:\\repo"));
    }
}
