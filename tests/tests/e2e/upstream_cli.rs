//! The unmodified upstream CLI (`pip install dstack==0.22.5`) drives our server through the
//! shared smoke script (`../shared/tools/upstream-cli-smoke.sh`): project add, ps, offer,
//! gateway and fleet lists, apply, run get, logs, stop, delete.
//! Needs `DSTACK_UPSTREAM_VENV` (a venv with that CLI; `scripts/test.sh` makes one) and
//! `../shared`; skips loudly without them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Kills the server when the test ends, also when it fails midway.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn upstream_cli_smoke_script_passes() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = repo.join("../shared/tools/upstream-cli-smoke.sh");
    let Some(venv) = std::env::var_os("DSTACK_UPSTREAM_VENV").map(PathBuf::from) else {
        eprintln!("SKIPPED: DSTACK_UPSTREAM_VENV is not set; the upstream CLI was not run");
        return;
    };
    if !script.is_file() || !venv.join("bin/dstack").is_file() {
        eprintln!(
            "SKIPPED: {} or {} is missing",
            script.display(),
            venv.join("bin/dstack").display()
        );
        return;
    }
    // Jobs outlive the server; the HOME guard stops whatever is left under it.
    let home = crate::util::TempHome::new("upstream-cli");
    let mut server = Killed(
        Command::new(crate::util::dstack_bin())
            .args(["server", "--host", "127.0.0.1", "--port", "0"])
            .env("HOME", &home)
            .env_remove("DSTACK_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    );
    let mut lines = BufReader::new(server.0.stdout.take().expect("stdout")).lines();
    let (mut token, mut url) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(t) = line.strip_prefix("The admin token is ") {
            token = t.trim_matches('"').to_string();
        }
        if let Some(u) = line.strip_prefix("The server is running at ") {
            url = u.trim_end_matches('/').to_string();
            break;
        }
    }
    let out = Command::new("bash")
        .arg(&script)
        .env("DSTACK_URL", &url)
        .env("DSTACK_TOKEN", &token)
        .env("DSTACK_VENV", &venv)
        .env("DSTACK_SMOKE_WAIT_S", "60")
        .output()
        .expect("the smoke script runs");
    drop(server);
    let text = String::from_utf8_lossy(&out.stdout);
    std::fs::remove_dir_all(&home).ok();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.lines().any(|l| l == "15 passed, 0 failed"), "{text}");
}
