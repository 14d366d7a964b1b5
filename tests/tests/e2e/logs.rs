//! `logs/poll` paging: every line exactly once and in order, after the job and while it writes.

use std::time::{Duration, Instant};

use crate::util::{Dstack, finished, task};

/// Prints `line 1` .. `line 5000`, one write per line with a short pause after each, so
/// that the job's output arrives as many log events (a few seconds in all).
const WRITER: &str = r#"python3 -u -c "import time; [(print(f'line {i}'), time.sleep(0.0005)) for i in range(1, 5001)]""#;

fn expected(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

/// Where `got` first departs from `want`, for a readable failure.
fn difference(got: &str, want: &str) -> String {
    let got_lines: Vec<&str> = got.lines().collect();
    let want_lines: Vec<&str> = want.lines().collect();
    let first = got_lines
        .iter()
        .zip(&want_lines)
        .position(|(g, w)| g != w)
        .unwrap_or(got_lines.len().min(want_lines.len()));
    format!(
        "{} lines read, {} expected; first difference at line {}: got {:?}, want {:?}",
        got_lines.len(),
        want_lines.len(),
        first + 1,
        got_lines.get(first),
        want_lines.get(first)
    )
}

/// 5,000 numbered lines read 100 at a time, following `next_token` until it is null: every
/// line exactly once, in order.
#[test]
fn logs_pages_hold_every_line_exactly_once() {
    let d = Dstack::start("logs-paging");
    d.submit("main", &d.token, &task("lines", &[WRITER]));
    let run = d.wait_finished("main", &d.token, "lines");
    assert_eq!(run["status"], "done", "{run}");
    let (text, pages) = d.logs_text("main", &d.token, &run, 100);
    let want = expected(5000);
    assert!(text == want, "{}", difference(&text, &want));
    eprintln!("5000 lines in {pages} pages");
    assert!(
        pages >= 10,
        "5000 lines came in {pages} pages of at most 100 events; paging was not exercised"
    );
}

/// Paging while the job still writes: every read from the start (following `next_token` until
/// null) is a prefix of the final output, with nothing skipped or repeated; after the job
/// ends, the whole output is there exactly once.
#[test]
fn logs_paged_while_the_job_writes_are_a_consistent_prefix() {
    let d = Dstack::start("logs-live");
    d.submit("main", &d.token, &task("slow-lines", &[WRITER]));
    let want = expected(5000);
    let start = Instant::now();
    let mut partial_reads = 0;
    loop {
        let run = d.get_run("main", &d.token, "slow-lines").json;
        let done = finished(&run["status"]);
        if run["jobs"][0]["job_submissions"].as_array().is_some() {
            let (text, _) = d.logs_text("main", &d.token, &run, 100);
            assert!(
                want.starts_with(&text),
                "a read during the run is not a prefix of the output: {}",
                difference(&text, &want)
            );
            if !text.is_empty() && text.len() < want.len() {
                partial_reads += 1;
            }
        }
        if done {
            assert_eq!(run["status"], "done", "{run}");
            let (text, _) = d.logs_text("main", &d.token, &run, 100);
            assert!(text == want, "after the run: {}", difference(&text, &want));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the run did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{partial_reads} reads while the job was writing");
    assert!(
        partial_reads > 0,
        "no read happened while the job was writing; the test did not test anything"
    );
}
