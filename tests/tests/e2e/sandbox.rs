//! Jobs of the local fleet are sandboxed (bubblewrap): an adversary with a project of their own
//! runs jobs that try to read the server's database and config, another job's files, to signal
//! another job's processes, and to place files outside the job; every attempt fails.
//! Skipped loudly where `bwrap` is not installed (`scripts/test.sh` installs it).

use std::time::Duration;

use serde_json::json;

use crate::util::{Dstack, process_alive, small, task, wait_until};

fn sandboxed() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()));
    if !found {
        eprintln!("SKIPPED: `bwrap` (bubblewrap) is not installed; jobs are not sandboxed here");
    }
    found
}

/// The decoded output of a finished run.
fn output(d: &Dstack, project: &str, token: &str, name: &str) -> String {
    let run = d.wait_finished(project, token, name);
    d.logs_text(project, token, &run, 1000).0
}

#[test]
fn a_job_cannot_read_the_servers_state_or_another_jobs_files() {
    if !sandboxed() {
        return;
    }
    let d = Dstack::start("sandbox-read");
    let server = d.home.join(".dstack/server");
    // Another user's job, still running, with a file in its working directory.
    d.submit(
        "main",
        &d.token,
        &task("victim", &["echo victim-secret > secret.txt", "sleep 300"]),
    );
    d.wait_running("main", &d.token, "victim");
    let eve = d.create_user("eve");
    d.create_project(&eve, "evil");
    let db = server.join("data/sqlite.db");
    let config = server.join("config.yml");
    let jobs = server.join("local/jobs");
    let probe = format!(
        "for f in {db} {config} {cli}; do if cat $f >/dev/null 2>&1; then echo READ $f; else echo DENIED $f; fi; done; \
         if ls {jobs} >/dev/null 2>&1; then echo LISTED jobs; else echo DENIED jobs; fi; \
         ls /workflow /root /tmp | grep -q secret.txt && echo FOUND secret; \
         echo whoami $(id -u); echo map $(cat /proc/self/uid_map); \
         touch /usr/x 2>/dev/null && echo WROTE usr; echo done",
        db = db.display(),
        config = config.display(),
        cli = d.home.join(".dstack/config.yml").display(),
        jobs = jobs.display(),
    );
    d.submit("evil", &eve, &task("probe", &[&probe]));
    let out = output(&d, "evil", &eve, "probe");
    assert!(out.contains("done"), "{out}");
    for leak in ["READ ", "LISTED", "FOUND ", "WROTE"] {
        assert!(!out.contains(leak), "the sandbox leaked ({leak}): {out}");
    }
    assert!(!out.contains(&d.token), "the admin token leaked: {out}");
    // Root in a user namespace of its own, as in a container; on the host, never root.
    assert!(out.contains("whoami 0"), "{out}");
    let host_uid =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self"));
    let outside = if host_uid == 0 { 65534 } else { host_uid };
    assert!(out.contains(&format!("map 0 {outside} 1")), "{out}");
    d.stop("main", &d.token, &["victim"], true);
    d.wait_finished("main", &d.token, "victim");
}

#[test]
fn a_job_cannot_signal_another_jobs_processes() {
    if !sandboxed() {
        return;
    }
    let d = Dstack::start("sandbox-signal");
    d.submit("main", &d.token, &task("target", &["sleep 300"]));
    d.wait_running("main", &d.token, "target");
    // The host pid of the target's `sleep`.
    let mut pid = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            pid = std::fs::read_dir("/proc").ok().and_then(|entries| {
                entries.flatten().find_map(|e| {
                    let n: u32 = e.file_name().to_str()?.parse().ok()?;
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    let env = std::fs::read(e.path().join("environ")).ok()?;
                    let is_sleep = cmd.starts_with(b"sleep\x00300");
                    let ours = String::from_utf8_lossy(&env).contains("DSTACK_RUN_NAME=target");
                    (is_sleep && ours).then_some(n)
                })
            });
            pid.is_some()
        }),
        "the target's sleep was not found"
    );
    let pid = pid.unwrap_or_default();
    let eve = d.create_user("eve");
    d.create_project(&eve, "evil");
    let attack = format!("kill -9 {pid} 2>&1; echo rc=$?; pkill -9 sleep; echo done");
    d.submit("evil", &eve, &task("killer", &[&attack]));
    let out = output(&d, "evil", &eve, "killer");
    assert!(out.contains("done"), "{out}");
    assert!(process_alive(pid), "another job killed the target: {out}");
    let run = d.get_run("main", &d.token, "target");
    assert_eq!(run.json["status"], "running", "{run}");
    d.stop("main", &d.token, &["target"], true);
    d.wait_finished("main", &d.token, "target");
}

#[test]
fn paths_outside_the_job_are_refused_at_plan_time() {
    let d = Dstack::start("sandbox-paths");
    for working_dir in ["/etc", "../..", "/workflow/../../root"] {
        let mut config = task("escape", &["true"]);
        config["working_dir"] = json!(working_dir);
        let plan = d.get_plan("main", &d.token, &config);
        assert_eq!(plan.status, 400, "{working_dir}: {plan}");
        assert!(
            plan.error_message()
                .contains("outside the job's file system")
                || plan.error_message().contains("climbs above"),
            "{working_dir}: {plan}"
        );
    }
    let mut fine =
        json!({"type": "task", "name": "fine", "commands": ["pwd"], "resources": small()});
    fine["working_dir"] = json!("/workflow/sub");
    assert_eq!(d.get_plan("main", &d.token, &fine).status, 200);
}

/// Where jobs cannot be sandboxed (here: `--no-sandbox`), only global admins may run them,
/// unless the server is started with `--allow-unsandboxed-jobs`.
#[test]
fn without_a_sandbox_only_admins_run_jobs_unless_allowed() {
    let d = Dstack::start_env("no-sandbox", &[("DSTACK_SERVER_NO_SANDBOX", "true")]);
    let eve = d.create_user("eve");
    d.create_project(&eve, "evil");
    for r in [
        d.get_plan("evil", &eve, &task("xx", &["true"])),
        d.apply("evil", &eve, &task("xx", &["true"])),
    ] {
        assert_eq!(r.status, 400, "{r}");
        assert!(r.error_message().contains("cannot sandbox jobs"), "{r}");
    }
    d.submit("main", &d.token, &task("admin-run", &["echo ok"]));
    let run = d.wait_finished("main", &d.token, "admin-run");
    assert_eq!(run["status"], "done", "{run}");

    let allowed = Dstack::start_env(
        "no-sandbox-allowed",
        &[
            ("DSTACK_SERVER_NO_SANDBOX", "true"),
            ("DSTACK_SERVER_ALLOW_UNSANDBOXED_JOBS", "true"),
        ],
    );
    let eve = allowed.create_user("eve");
    allowed.create_project(&eve, "evil");
    allowed.submit("evil", &eve, &task("member-run", &["echo ok"]));
    let run = allowed.wait_finished("evil", &eve, "member-run");
    assert_eq!(run["status"], "done", "{run}");
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if meta.is_file()
            && std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_jobs_files_never_hold_its_secrets() {
    let d = Dstack::start("sandbox-secret-files");
    let value = format!("v4lue-{}", std::process::id());
    let r = d.post(
        "/api/project/main/secrets/create_or_update",
        &d.token,
        &json!({"name": "API_TOKEN", "value": value}),
    );
    assert_eq!(r.status, 200, "{r}");
    d.submit(
        "main",
        &d.token,
        &json!({
            "type": "task", "name": "uses-secret", "resources": crate::util::small(),
            "env": {"TOKEN": "Bearer ${{ secrets.API_TOKEN }}"},
            // The command names only the value's hash: the check below must not find itself.
            "commands": ["echo \"seen $(printf %s \"$TOKEN\" | sha256sum)\"", "sleep 300"],
        }),
    );
    let run = d.wait_running("main", &d.token, "uses-secret");
    assert!(
        wait_until(Duration::from_secs(20), || d
            .logs_text("main", &d.token, &run, 1000)
            .0
            .contains(&format!(
                "seen {}",
                crate::util::sha256_hex(format!("Bearer {value}").as_bytes())
            ))),
        "the job never saw its secret"
    );
    let local = d.home.join(".dstack/server/local");
    let leaks = files_containing(&local, value.as_bytes());
    assert!(
        leaks.is_empty(),
        "the secret is at rest in {leaks:?}: {:?}",
        leaks.first().map(std::fs::read_to_string)
    );
    d.stop("main", &d.token, &["uses-secret"], true);
    d.wait_finished("main", &d.token, "uses-secret");
}
