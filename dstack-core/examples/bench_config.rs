//! Measures configuration parsing on the upstream examples (`expected_parse` = yes): our full
//! read + parse + validate, against the floor of reading each file and loading it as a
//! `serde_yaml::Value`. Prints `LABEL: N docs, X us/doc` lines (best of several rounds).
//!
//! Run with `cargo run --release -q -p dstack-core --example bench_config -- EXAMPLES_DIR`;
//! `bench/config.sh` runs it beside the Python original and prints the ratios.

use std::path::{Path, PathBuf};
use std::time::Instant;

const ROUNDS: usize = 15;

fn files(dir: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap_or_else(|e| {
        eprintln!("error: cannot read {}/MANIFEST.tsv: {e}", dir.display());
        std::process::exit(2);
    });
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name| header.iter().position(|h| *h == name).unwrap_or(usize::MAX);
    let (path_col, parse_col) = (col("path"), col("expected_parse"));
    lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|cols| cols.get(parse_col) == Some(&"yes"))
        .filter_map(|cols| cols.get(path_col).map(|p| dir.join(p)))
        .collect()
}

/// Best per-document time over `ROUNDS` rounds of running `f` on every file, in microseconds.
fn measure(files: &[PathBuf], mut f: impl FnMut(&Path) -> bool) -> f64 {
    let mut best = f64::INFINITY;
    for round in 0..=ROUNDS {
        let start = Instant::now();
        for path in files {
            if !f(path) {
                eprintln!("error: {} failed", path.display());
                std::process::exit(1);
            }
        }
        let per_doc = start.elapsed().as_secs_f64() * 1e6 / files.len() as f64;
        if round > 0 {
            best = best.min(per_doc);
        }
    }
    best
}

fn main() {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: bench_config EXAMPLES_DIR");
        std::process::exit(2);
    };
    let files = files(&dir);
    let n = files.len();
    let floor = measure(&files, |p| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
            .is_some()
    });
    let ours = measure(&files, |p| {
        std::fs::read_to_string(p)
            .ok()
            .is_some_and(|t| dstack_core::config::parse_str(&p.display().to_string(), &t).is_ok())
    });
    let load_only = measure(&files, |p| {
        std::fs::read_to_string(p)
            .ok()
            .is_some_and(|t| dstack_core::config::yaml::load(&t).is_ok())
    });
    println!("floor-serde-yaml-value: {n} docs, {floor:.1} us/doc (read + serde_yaml::Value)");
    println!("rust-dstack-core: {n} docs, {ours:.1} us/doc (read + parse + validate)");
    println!("rust-load-only: {n} docs, {load_only:.1} us/doc (read + our YAML 1.1 node tree)");
}
