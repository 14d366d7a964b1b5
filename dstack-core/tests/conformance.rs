//! Runs the shared configuration vectors (`../shared/conformance/config-vectors.yaml`) with the
//! same runner as `cargo run -p dstack-core --example conformance`; every case must pass.
//! Skips (loudly) when the shared folder is absent.

#[path = "../examples/conformance/runner.rs"]
mod runner;

use std::path::PathBuf;

#[test]
fn shared_vectors_pass() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/config-vectors.yaml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIPPED: {} is absent; the shared vectors were not run",
            path.display()
        );
        return;
    };
    let report = runner::run(&text).expect("the vector file loads");
    assert!(
        report.failures.is_empty(),
        "{} failed:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
    assert!(report.passed >= 651, "only {} cases ran", report.passed);
}
