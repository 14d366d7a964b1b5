//! Runs a `dstack-config-vectors/1` file against dstack-core and prints one line per failing
//! case, then `N passed, N failed`. Exits 1 if any case failed.
//!
//! Run with `cargo run --release -q -p dstack-core --example conformance -- PATH`.

use std::process::ExitCode;

mod runner;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: conformance PATH (a dstack-config-vectors/1 file)");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match runner::run(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    for line in &report.failures {
        println!("{line}");
    }
    println!("{} passed, {} failed", report.passed, report.failures.len());
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
