//! The pure modules stay pure: no async runtime, no file system, network, processes or
//! environment, no clock. Callers pass in what they know (`now`, the environment, the backend's
//! observations). ARCHITECTURE.md lists the same modules.

use std::path::{Path, PathBuf};

/// The pure modules of `dstack-core/src`, as files or directories.
const PURE: &[&str] = &[
    "config",
    "resources",
    "schedule",
    "lifecycle",
    "offers.rs",
    "spec.rs",
    "jobspec",
    "auth.rs",
];

/// What a pure module may not name.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::time::Instant",
    "std::time::SystemTime",
    "SystemTime::now",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "chrono::Local",
    "sea_orm",
    "reqwest",
    "pingora",
    "axum",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// Pure types that live under forbidden paths.
const ALLOWED: &[&str] = &[
    "std::net::IpAddr",
    "std::net::Ipv4Addr",
    "std::net::Ipv6Addr",
];

/// The lines of a file's code, roughly: comment lines are dropped, and the unit tests at the
/// bottom of a module (from `#[cfg(test)]` on) are left out, which is enough for `use` and
/// call sites.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .map(|(i, l)| {
            let mut line = l.trim_start().to_string();
            for a in ALLOWED {
                line = line.replace(a, "");
            }
            (i + 1, line)
        })
        .filter(|(_, l)| !l.starts_with("//"))
}

#[test]
fn pure_modules_do_no_io_and_read_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for m in PURE {
        let path = src.join(m);
        assert!(
            path.exists(),
            "{} is listed as pure but does not exist",
            path.display()
        );
        rust_files(&path, &mut files);
    }
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut offences = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (n, line) in code_lines(&text) {
            for word in FORBIDDEN {
                if line.contains(word) {
                    offences.push(format!("{}:{n}: `{word}` in `{line}`", f.display()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "pure modules doing I/O:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_check_catches_an_offence() {
    let sample = "use std::fs;\n// std::net in a comment is fine\nlet t = Utc::now();\nuse std::net::IpAddr;\n#[cfg(test)]\nuse std::fs;\n";
    let found: Vec<usize> = code_lines(sample)
        .filter(|(_, l)| FORBIDDEN.iter().any(|w| l.contains(w)))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(found, vec![1, 3]);
}
