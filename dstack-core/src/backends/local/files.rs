//! A job's file system on the local fleet, and placing uploads in it.
//!
//! A job sees three writable areas, as in the original's container: the working directory
//! `/workflow`, its home directory (`home_dir`, `/root` by default) and `/tmp`. On the host they
//! are directories of the job's own (`<job dir>/{workdir,home,tmp}`); the sandbox binds them at
//! the job's paths. Upload targets (`files:`, `repos:`) must lie in these areas: anything else,
//! including paths that climb out with `..`, is refused before the job is submitted. Unpacked
//! archives lose setuid/setgid bits and any symbolic link that points outside them.

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::jobspec::LEGACY_REPO_DIR;

/// The job's writable areas on the host.
#[derive(Debug, Clone)]
pub(crate) struct JobFs {
    pub(crate) workdir: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) tmp: PathBuf,
    /// Where the job sees its home (`home_dir`).
    pub(crate) home_dir: String,
}

impl JobFs {
    pub(crate) fn new(job_dir: &Path, home_dir: Option<&str>) -> JobFs {
        JobFs {
            workdir: job_dir.join("workdir"),
            home: job_dir.join("home"),
            tmp: job_dir.join("tmp"),
            home_dir: home_dir
                .filter(|h| h.starts_with('/'))
                .unwrap_or("/root")
                .to_string(),
        }
    }

    /// The job's areas: (the job's path, the host directory).
    pub(crate) fn areas(&self) -> [(String, &Path); 3] {
        [
            (LEGACY_REPO_DIR.to_string(), self.workdir.as_path()),
            (self.home_dir.clone(), self.home.as_path()),
            ("/tmp".to_string(), self.tmp.as_path()),
        ]
    }

    pub(crate) fn create(&self) -> std::io::Result<()> {
        for (_, dir) in self.areas() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }

    /// Where a path of the job (`~/x`, relative to `/workflow`, or absolute) is on the host;
    /// `Err` when it is outside the job's areas.
    pub(crate) fn host_path(&self, path: &str) -> Result<PathBuf, String> {
        let view = job_view(path, &self.home_dir)?;
        for (prefix, dir) in self.areas() {
            if view == prefix {
                return Ok(dir.to_path_buf());
            }
            if let Some(rest) = view.strip_prefix(&format!("{prefix}/")) {
                return Ok(dir.join(rest));
            }
        }
        Err(outside(path, &self.home_dir))
    }
}

fn outside(path: &str, home_dir: &str) -> String {
    format!(
        "`{path}` is outside the job's file system on the local fleet: use a path under the working directory ({LEGACY_REPO_DIR}), the home directory ({home_dir}) or /tmp"
    )
}

/// A path as the job sees it, normalised: `~` is `home_dir`, a relative path is under
/// `/workflow`; `..` may not climb above `/`.
pub(crate) fn job_view(path: &str, home_dir: &str) -> Result<String, String> {
    let full = if path == "~" {
        home_dir.to_string()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{home_dir}/{rest}")
    } else if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{LEGACY_REPO_DIR}/{path}")
    };
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(&full).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!("`{path}` climbs above the file system's root"));
                }
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::Prefix(_) => return Err(format!("`{path}` is not a POSIX path")),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Whether a target path is one the job may receive files at.
pub(crate) fn check_target(path: &str, home_dir: &str) -> Result<(), String> {
    let view = job_view(path, home_dir)?;
    let inside = [LEGACY_REPO_DIR, home_dir, "/tmp"]
        .iter()
        .any(|area| view == *area || view.starts_with(&format!("{area}/")));
    if inside {
        Ok(())
    } else {
        Err(outside(path, home_dir))
    }
}

fn tar(archive: &Path, into: &Path) -> Result<(), String> {
    let status = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("--no-same-owner")
        .arg("--no-same-permissions")
        .arg("-C")
        .arg(into)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("tar failed to unpack {}", archive.display()))
    }
}

/// Removes setuid/setgid bits and symbolic links that point outside `root` (absolute, or
/// climbing out with `..`), everywhere under `root`.
pub(crate) fn sanitize(root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                let depth = path
                    .parent()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map_or(0, |p| p.components().count());
                if !link_stays_inside(&target, depth) {
                    std::fs::remove_file(&path)
                        .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                }
                continue;
            }
            let mode = meta.permissions().mode();
            if mode & 0o6000 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !0o6000))
                    .map_err(|e| format!("cannot change {}: {e}", path.display()))?;
            }
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(())
}

/// Whether a relative link target, from a link `depth` directories below the root, stays
/// inside the root.
fn link_stays_inside(target: &Path, depth: usize) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut level = depth as isize;
    for c in target.components() {
        match c {
            Component::ParentDir => level -= 1,
            Component::Normal(_) => level += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if level < 0 {
            return false;
        }
    }
    true
}

/// Gives everything under `root` to `uid:gid` (the unprivileged user sandboxed jobs run as,
/// when the server runs as root).
pub(crate) fn chown_tree(root: &Path, uid: u32, gid: u32) -> Result<(), String> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .map_err(|e| format!("cannot give {} to the job: {e}", path.display()))?;
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)
                .map_err(|e| e.to_string())?
                .flatten()
            {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Unpacks a repo's code tar (entries relative to the repo root) into `target`.
pub(crate) fn unpack_code(code: &Path, target: &Path) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| e.to_string())?;
    tar(code, target)?;
    sanitize(target)
}

/// Unpacks an uploaded archive to `dest`: a single file becomes `dest`; a directory's contents
/// go into `dest`.
pub(crate) fn unpack_archive(archive: &Path, dest: &Path, scratch: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    tar(archive, scratch)?;
    sanitize(scratch)?;
    let entries: Vec<PathBuf> = std::fs::read_dir(scratch)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let [root] = entries.as_slice() else {
        return Err("the archive must hold exactly one file or directory".into());
    };
    let meta = std::fs::symlink_metadata(root).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("the archive's top entry is a symbolic link".into());
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if meta.is_dir() {
        std::fs::create_dir_all(dest)
            .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(dest)
            .status()
            .map_err(|e| format!("cannot run cp: {e}"))?;
        if !status.success() {
            return Err(format!("cannot copy files into {}", dest.display()));
        }
    } else {
        std::fs::rename(root, dest).map_err(|e| format!("cannot place {}: {e}", dest.display()))?;
    }
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_in_the_job() {
        for ok in [
            "src",
            "./a/../b",
            "/workflow/x",
            "~",
            "~/.cache",
            "/root/x",
            "/tmp/data",
            ".",
        ] {
            assert_eq!(check_target(ok, "/root"), Ok(()), "{ok}");
        }
        for bad in [
            "../x",
            "../../etc",
            "/etc/passwd",
            "/",
            "~/../../etc",
            "/workflow/../etc",
            "/tmpx",
        ] {
            assert!(check_target(bad, "/root").is_err(), "{bad}");
        }
        let fs = JobFs::new(Path::new("/j"), None);
        assert_eq!(fs.host_path("a/b"), Ok(PathBuf::from("/j/workdir/a/b")));
        assert_eq!(fs.host_path("~/.x"), Ok(PathBuf::from("/j/home/.x")));
        assert_eq!(fs.host_path("/tmp"), Ok(PathBuf::from("/j/tmp")));
        assert!(fs.host_path("/etc").is_err());
    }

    #[test]
    fn links_that_leave_are_detected() {
        assert!(link_stays_inside(Path::new("a/b"), 0));
        assert!(link_stays_inside(Path::new("../x"), 1));
        assert!(!link_stays_inside(Path::new("../x"), 0));
        assert!(!link_stays_inside(Path::new("/etc/passwd"), 3));
        assert!(!link_stays_inside(Path::new("a/../../.."), 1));
    }

    #[test]
    fn sanitize_strips_setuid_and_outward_links() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("dstack-sanitize-{}", uuid::Uuid::new_v4()));
        let sub = root.join("d");
        std::fs::create_dir_all(&sub).ok();
        let file = sub.join("suid");
        std::fs::write(&file, b"x").ok();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4755)).ok();
        std::os::unix::fs::symlink("/etc/passwd", sub.join("abs")).ok();
        std::os::unix::fs::symlink("../../outside", sub.join("up")).ok();
        std::os::unix::fs::symlink("suid", sub.join("near")).ok();
        assert_eq!(sanitize(&root), Ok(()));
        let mode = std::fs::metadata(&file)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        assert_eq!(mode & 0o7777, 0o755);
        assert!(std::fs::symlink_metadata(sub.join("abs")).is_err());
        assert!(std::fs::symlink_metadata(sub.join("up")).is_err());
        assert!(std::fs::symlink_metadata(sub.join("near")).is_ok());
        std::fs::remove_dir_all(&root).ok();
    }
}
