//! The local fleet's backend with the real runner (`dstack job-runner`): a job is started at
//! most once per id, a restarted server finds it again, and a server that cannot observe its
//! jobs (out of file descriptors) never takes that for their end.

use std::path::Path;
use std::time::Duration;

use dstack_core::backends::local::LocalBackend;
use dstack_core::backends::{Backend, Launch};
use dstack_core::config::Configuration;
use dstack_core::jobspec::{self, RunInput};
use dstack_core::lifecycle::{Observed, Signal};
use serde_json::json;

use crate::util::{
    Dstack, TempHome, dstack_bin, process_alive, processes_of_run, task, wait_until,
};

fn launch(home: &Path, job_id: &str) -> Launch {
    let mut config = Configuration::from_json(&json!({
        "type": "task",
        "commands": ["sleep 30"],
        "resources": {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."},
    }))
    .expect("configuration");
    dstack_core::spec::validate_run_spec(Some("once"), &mut config, None).expect("valid");
    let input = RunInput {
        run_name: "once",
        config: &config,
        profile: None,
        repo_data: None,
        repo_code_hash: None,
        file_archives: Vec::new(),
        default_python: "3.11",
    };
    let spec = jobspec::job_specs(&input).expect("job specs").remove(0);
    let command = jobspec::command_of(&input, &spec).expect("command");
    Launch {
        job_id: job_id.to_string(),
        spec,
        command,
        env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
        files: Vec::new(),
        code: None,
        log_file: home.join("once.jsonl"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runner processes of a job (`dstack job-runner --attached <dir>`).
fn runners_of(job_id: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline);
        if text.contains("job-runner") && text.contains("--attached") && text.contains(job_id) {
            n += 1;
        }
    }
    n
}

#[test]
fn a_job_is_started_once_per_id_and_found_after_a_restart() {
    let home = TempHome::new("backend-once");
    let rt = runtime();
    let job_id = uuid_v4();
    let backend = LocalBackend::new(&home.path, Some(dstack_bin()), true);
    let first = rt
        .block_on(backend.start(launch(&home.path, &job_id)))
        .expect("started");
    assert!(
        wait_until(Duration::from_secs(10), || rt
            .block_on(backend.observe(&first))
            .is_ok_and(|o| o == Observed::Running)),
        "the job never ran"
    );
    // Starting the same job again (a retried start) starts nothing new.
    let second = rt
        .block_on(backend.start(launch(&home.path, &job_id)))
        .expect("second start answers");
    assert_eq!(first, second);
    assert_eq!(runners_of(&job_id), 1, "exactly one runner for the job");
    // A restarted server (a fresh backend) finds the job and its allocation.
    let restarted = LocalBackend::new(&home.path, Some(dstack_bin()), true);
    let found = rt.block_on(restarted.find(&job_id)).expect("find answers");
    assert_eq!(found.as_ref(), Some(&first));
    assert!(
        rt.block_on(restarted.find(&uuid_v4()))
            .is_ok_and(|f| f.is_none())
    );
    // And can stop it.
    rt.block_on(restarted.signal(&first, Signal::Kill))
        .expect("signalled");
    assert!(
        wait_until(Duration::from_secs(10), || matches!(
            rt.block_on(restarted.observe(&first)),
            Ok(Observed::Exited(_))
        )),
        "the job did not end"
    );
    assert_eq!(runners_of(&job_id), 0);
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The soft limit on open files of a process (`/proc/<pid>/limits`).
fn soft_nofile(pid: u32) -> Option<String> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3).map(str::to_string)
}

fn prlimit(pid: u32, nofile: &str) -> bool {
    std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={nofile}"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Out of file descriptors, the server cannot look at its jobs: it must not mark them failed
/// (the jobs keep running), and everything is as before once descriptors are back.
#[test]
fn running_out_of_file_descriptors_is_not_taken_for_the_jobs_end() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: `prlimit` (util-linux) is not installed");
        return;
    }
    let d = Dstack::start("emfile");
    let token = d.token.clone();
    let run = d.submit("main", &token, &task("fd-starved", &["sleep 300"]));
    let run_id = run["id"].as_str().unwrap_or_default().to_string();
    let run = d.wait_running("main", &token, "fd-starved");
    assert_eq!(run["status"], "running", "{run}");
    let mut job_pids = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            job_pids = processes_of_run(&run_id);
            !job_pids.is_empty()
        }),
        "the job's processes were not found"
    );
    let pid = d.pid();
    let soft = soft_nofile(pid).expect("the server's limits");
    // Below what it has open: every new descriptor fails (EMFILE), the open ones keep working.
    let n = open_fds(pid).saturating_sub(10).max(1);
    // Only the soft limit: raising a hard limit back needs a privilege tests may not have.
    assert!(
        prlimit(pid, &format!("{n}:")),
        "cannot lower the server's descriptor limit"
    );
    // Wait until an orchestrator pass failed to observe the job.
    let starved = wait_until(Duration::from_secs(20), || {
        d.printed("cannot observe a job")
    });
    assert!(
        prlimit(pid, &format!("{soft}:")),
        "cannot restore the limit"
    );
    assert!(
        starved,
        "the server never ran out of descriptors:\n{}",
        d.output_tail(20)
    );
    let run = d.get_run("main", &token, "fd-starved");
    assert_eq!(run.json["status"], "running", "{run}");
    assert!(
        job_pids.iter().all(|p| process_alive(*p)),
        "the job was killed"
    );
    // Nothing was orphaned: the job is still the server's, and it can stop it.
    d.stop("main", &token, &["fd-starved"], false);
    let run = d.wait_finished("main", &token, "fd-starved");
    assert_eq!(run["status"], "terminated", "{run}");
    assert!(
        wait_until(Duration::from_secs(20), || processes_of_run(&run_id)
            .is_empty()),
        "processes of the job are left: {:?}",
        processes_of_run(&run_id)
    );
}
