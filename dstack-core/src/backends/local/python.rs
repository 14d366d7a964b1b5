//! The Python interpreters of the host that jobs can ask for (`python: "3.12"`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `python3.X` interpreters on `PATH`, in `PATH` order; and the version `python3` is: the
/// `python3.X` it resolves to, else the first `python3.X` found (`python3` may be a shim).
pub(super) fn find_pythons(
    path: Option<std::ffi::OsString>,
) -> (BTreeMap<String, Vec<PathBuf>>, Option<String>) {
    let mut found: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut in_order: Vec<(String, PathBuf)> = Vec::new();
    let mut python3: Option<PathBuf> = None;
    for dir in path.iter().flat_map(std::env::split_paths) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<(String, PathBuf)> = entries
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        names.sort();
        for (name, path) in names {
            if name == "python3" && python3.is_none() {
                python3 = Some(path);
                continue;
            }
            let Some(version) = name.strip_prefix("python") else {
                continue;
            };
            let mut parts = version.split('.');
            let valid = parts.next() == Some("3")
                && parts
                    .next()
                    .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
                && parts.next().is_none();
            if valid {
                found
                    .entry(version.to_string())
                    .or_default()
                    .push(path.clone());
                in_order.push((version.to_string(), path));
            }
        }
    }
    let resolved = python3.and_then(|p| std::fs::canonicalize(p).ok());
    let default = in_order
        .iter()
        .find(|(_, p)| std::fs::canonicalize(p).ok() == resolved && resolved.is_some())
        .or_else(|| in_order.first())
        .map(|(v, _)| v.clone());
    (found, default)
}
