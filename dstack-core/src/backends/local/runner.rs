//! The job runner of the local fleet, and the files it shares with the backend.
//!
//! Each job submission has a directory (`<server dir>/local/jobs/<job id>/`):
//!
//! * `launch.json`: what to run ([`RunnerLaunch`]), written by the backend; the job's
//!   environment (which holds its secrets) is not in it: the runner gets it in its own
//!   environment ([`ENV_VAR`], readable only by the server's user), so no file holds it;
//! * `job.lock`: the runner holds an exclusive `flock` on it for as long as it lives. The backend
//!   takes the lock before it spawns the runner and hands the locked file to it as its standard
//!   input, so the lock is held from the runner's first instruction: the lock being free means
//!   the runner is gone (whatever happened to its pid), and a second start of the same job finds
//!   it taken;
//! * `job.pgid`: the process group of the job, written once it is started;
//! * `stop`: a signal the backend asked for (`TERM` or `KILL`), which the runner also applies
//!   if it started the job after the backend looked for `job.pgid`;
//! * `status.json`: how the job ended, written atomically before the runner exits.
//!
//! The runner (`dstack job-runner DIR`) detaches itself (a second process that init adopts), so
//! no process of the server's has to reap it and it outlives the server. It runs the job in a
//! new session whose controlling terminal is a pseudo-terminal, as the original's runner does,
//! so `bash -i` and programs that draw progress work; the terminal's output goes to the log as
//! timestamped base64 JSON lines.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::lifecycle::ExitStatus;

/// What the runner runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunnerLaunch {
    /// Command line.
    pub argv: Vec<String>,
    /// The whole environment of the job: not written to `launch.json` but handed to the
    /// runner in [`ENV_VAR`].
    #[serde(skip)]
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub working_dir: PathBuf,
    /// Log file (JSON lines).
    pub log_file: PathBuf,
    /// The job's own network, when `argv` is a sandbox that gets one.
    #[serde(default)]
    pub network: Option<super::network::JobNetwork>,
    /// The cgroups (with the job's CPU and memory limits) the runner joins before it starts
    /// the job, so that all the job starts is held to them.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
}

/// The runner's environment variable that holds the job's environment (JSON).
pub const ENV_VAR: &str = "DSTACK_RUNNER_JOB_ENV";

/// `launch.json`
pub fn launch_file(dir: &Path) -> PathBuf {
    dir.join("launch.json")
}
/// `job.lock`
pub fn lock_file(dir: &Path) -> PathBuf {
    dir.join("job.lock")
}
/// `job.pgid`
pub fn pgid_file(dir: &Path) -> PathBuf {
    dir.join("job.pgid")
}
/// `stop`
pub fn stop_file(dir: &Path) -> PathBuf {
    dir.join("stop")
}
/// `status.json`
pub fn status_file(dir: &Path) -> PathBuf {
    dir.join("status.json")
}

/// Writes a file atomically (a temporary file, then a rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// The exit status a runner recorded, if any.
pub fn read_status(dir: &Path) -> std::io::Result<Option<ExitStatus>> {
    match std::fs::read(status_file(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The job's process group, once started.
pub fn read_pgid(dir: &Path) -> std::io::Result<Option<i32>> {
    match std::fs::read_to_string(pgid_file(dir)) {
        Ok(text) => Ok(text.trim().parse().ok().filter(|p: &i32| *p > 1)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The session of a process, from `/proc/<pid>/stat`.
fn session_of(stat: &str) -> Option<i32> {
    // The fields after the parenthesised command name: state, ppid, pgrp, session, ...
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Sends `name` (`TERM`/`KILL`) to every process of the job's session: the job runs with job
/// control on its terminal (`bash -i`), so its commands have process groups of their own.
pub fn kill_group(sid: i32, name: &str) -> std::io::Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let signal = if name == "KILL" {
        Signal::KILL
    } else {
        Signal::TERM
    };
    if sid <= 1 {
        return Err(std::io::Error::other("invalid session"));
    }
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if session_of(&stat) == Some(sid)
            && let Some(pid) = Pid::from_raw(pid)
        {
            match kill_process(pid, signal) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// `dstack job-runner DIR`: detaches a runner for the job in `dir` and returns at once.
/// `dstack job-runner --attached DIR` (what the detached process runs) runs the job.
/// Returns the process exit code.
pub fn main(dir: &Path, attached: bool) -> i32 {
    use std::os::unix::process::CommandExt;
    if attached {
        return run_job(dir);
    }
    let Ok(exe) = std::env::current_exe() else {
        return 2;
    };
    // The detached runner inherits stdin: the locked `job.lock`.
    let spawned = Command::new(exe)
        .arg("job-runner")
        .arg("--attached")
        .arg(dir)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    i32::from(spawned.is_err())
}

fn open_pty() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let path = PathBuf::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.as_bytes()),
    );
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let winsize = rustix::termios::Winsize {
        ws_row: 50,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(&slave, winsize);
    // Output as the job writes it: no `\n` → `\r\n` translation in the log.
    if let Ok(mut t) = rustix::termios::tcgetattr(&slave) {
        t.output_modes.remove(rustix::termios::OutputModes::ONLCR);
        let _ = rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t);
    }
    Ok((std::fs::File::from(master), slave))
}

/// Runs the job described in `dir`: output to the log, exit status to `status.json`.
fn run_job(dir: &Path) -> i32 {
    let mut launch: RunnerLaunch = match std::fs::read(launch_file(dir))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
    {
        Some(l) => l,
        None => return 2,
    };
    launch.env = match std::env::var(ENV_VAR).map(|v| serde_json::from_str(&v)) {
        Ok(Ok(env)) => env,
        _ => return 2,
    };
    if let Some(parent) = launch.log_file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log_file)
    {
        Ok(f) => Arc::new(Mutex::new(f)),
        Err(_) => return 2,
    };
    let record = |status: ExitStatus| {
        let _ = write_atomic(
            &status_file(dir),
            serde_json::to_string(&status)
                .unwrap_or_default()
                .as_bytes(),
        );
    };
    let fail_to_start = |e: std::io::Error| {
        write_event(
            &log,
            "stderr",
            format!("dstack: cannot start the job: {e}\n").as_bytes(),
        );
        record(ExitStatus {
            code: Some(127),
            signal: None,
        });
        0
    };
    if let Err(e) = super::cgroup::join(&launch.cgroups) {
        return fail_to_start(std::io::Error::other(format!(
            "cannot join the job's cgroups: {e}"
        )));
    }
    let Some((program, args)) = launch.argv.split_first() else {
        return fail_to_start(std::io::Error::other("empty command"));
    };
    let (master, slave) = match open_pty() {
        Ok(p) => p,
        Err(e) => return fail_to_start(e),
    };
    let stdio = || slave.try_clone().map(Stdio::from);
    let (Ok(stdin), Ok(stdout), Ok(stderr)) = (stdio(), stdio(), stdio()) else {
        return fail_to_start(std::io::Error::other("cannot share the terminal"));
    };
    // `setsid --ctty` starts the job in a new session (its own process group) with the
    // terminal as its controlling terminal.
    let configure = |c: &mut Command| {
        c.env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.working_dir)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
    };
    let spawned = match &launch.network {
        Some(net) => super::network::spawn(
            &["setsid", "--ctty"],
            &launch.argv,
            net,
            &super::network::pasta_pid_file(dir),
            configure,
        )
        .map_err(std::io::Error::other),
        None => {
            let mut c = Command::new("setsid");
            c.arg("--ctty").arg(program).args(args);
            configure(&mut c);
            c.spawn()
        }
    };
    drop(slave);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return fail_to_start(e),
    };
    let pgid = child.id() as i32;
    let _ = write_atomic(&pgid_file(dir), pgid.to_string().as_bytes());
    if let Ok(signal) = std::fs::read_to_string(stop_file(dir)) {
        let _ = kill_group(pgid, signal.trim());
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let pump_log = log.clone();
    std::thread::spawn(move || {
        let mut master = master;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => write_event(&pump_log, "stdout", &buf[..n]),
            }
        }
        let _ = done_tx.send(());
    });
    let status = child.wait();
    // The job is over when its first process is, as a container is: whatever it left running
    // in its session (daemons, or processes a stop raced with) goes too.
    let _ = kill_group(pgid, "KILL");
    super::network::stop_pasta(dir);
    // Output still buffered in the terminal is drained; a process that keeps the terminal
    // open after the job exited does not hold the status back.
    let _ = done_rx.recv_timeout(std::time::Duration::from_secs(2));
    let status = match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            ExitStatus {
                code: s.code(),
                signal: s.signal(),
            }
        }
        Err(_) => ExitStatus {
            code: None,
            signal: None,
        },
    };
    record(status);
    0
}

fn write_event(log: &Mutex<std::fs::File>, source: &str, bytes: &[u8]) {
    let event = serde_json::json!({
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        "log_source": source,
        "message": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    let mut line = event.to_string();
    line.push('\n');
    if let Ok(mut f) = log.lock() {
        // One write per line, so readers never see half a line from this writer.
        let _ = f.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_session_from_a_stat_line() {
        let stat = "1234 (sleep (x)) S 1200 1234 1200 34817 1234 4194304 96 0 0 0";
        assert_eq!(super::session_of(stat), Some(1200));
        assert_eq!(super::session_of("garbage"), None);
    }
}
