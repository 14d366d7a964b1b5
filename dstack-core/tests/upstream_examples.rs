//! Every upstream example configuration is classified as the original classifies it: files the
//! original parses must parse, files it rejects must be rejected with a clear message.
//! Reads `../shared/conformance/upstream-examples/` and skips (loudly) when it is absent.

use std::path::PathBuf;

use dstack_core::config;

fn examples_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/upstream-examples");
    if dir.join("MANIFEST.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; the upstream examples were not checked",
            dir.display()
        );
        None
    }
}

#[test]
fn upstream_examples_are_classified_as_the_manifest_says() {
    let Some(dir) = examples_dir() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest is readable");
    let mut header: Vec<&str> = Vec::new();
    let (mut accepted, mut rejected, mut wrong) = (0, 0, Vec::new());
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if header.is_empty() {
            header = cols;
            continue;
        }
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .map(|i| cols.get(i).copied().unwrap_or(""))
        };
        let (Some(path), Some(expected)) = (col("path"), col("expected_parse")) else {
            panic!("manifest lacks path/expected_parse columns");
        };
        let text = std::fs::read_to_string(dir.join(path)).expect("example is readable");
        match (expected, config::parse_str(path, &text)) {
            ("yes", Ok(c)) => {
                accepted += 1;
                assert_eq!(Some(c.type_name()), col("type"), "{path}: type");
            }
            ("no", Err(e)) => {
                rejected += 1;
                let message = e.to_string();
                assert!(
                    message.contains(path) && message.contains("Extra inputs are not permitted"),
                    "{message}"
                );
            }
            ("yes", Err(e)) => wrong.push(format!(
                "{path}: rejected but the original accepts it:\n{e}"
            )),
            (_, Ok(_)) => wrong.push(format!("{path}: accepted but the original rejects it")),
            (other, _) => wrong.push(format!("{path}: unknown expected_parse {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misclassified:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!((accepted, rejected), (182, 5), "manifest counts changed");
}
