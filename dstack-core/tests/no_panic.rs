//! Bad input never panics: every prefix of real configurations, and deterministic byte-level
//! mutations of them, either parse or produce issues (and the issues render).

use std::path::PathBuf;

use dstack_core::config::parse_str;

fn corpus() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut texts = Vec::new();
    for dir in [
        root.join("examples"),
        root.join("dstack-cli/tests/fixtures"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                texts.push(t);
            }
        }
    }
    texts.push("type: task\nname: café-☕\ncommands: [\"echo ünïcödé ${{ run.args }}\"]\nresources: {gpu: \"A100:é\"}\n".into());
    assert!(texts.len() >= 7);
    texts
}

fn exercise(text: &str) {
    if let Err(e) = parse_str("fuzz.yml", text) {
        let _ = e.to_string();
        for d in e.diagnostics() {
            let _ = d.to_string();
        }
    }
}

#[test]
fn prefixes_do_not_panic() {
    for text in corpus() {
        for (i, _) in text.char_indices() {
            exercise(&text[..i]);
        }
    }
}

#[test]
fn mutations_do_not_panic() {
    const REPLACEMENTS: &[&str] = &[
        ":", "-", " ", "\n", "[", "{", "\"", "'", "..", "&a", "*a", "!!int", "0", "é", "${{", "}}",
        "\t", "?",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for text in corpus() {
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for _ in 0..400 {
            let at = boundaries[(next() as usize) % boundaries.len()];
            let end = boundaries
                .iter()
                .copied()
                .find(|&b| b > at)
                .unwrap_or(text.len());
            let with = REPLACEMENTS[(next() as usize) % REPLACEMENTS.len()];
            let mutated = format!("{}{}{}", &text[..at], with, &text[end..]);
            exercise(&mutated);
        }
    }
}
