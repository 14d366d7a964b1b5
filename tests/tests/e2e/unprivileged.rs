//! The server as an ordinary user: the test (as root) creates an unprivileged account and runs
//! the server as it. Jobs are still sandboxed (a user namespace of their own) with a network of
//! their own: a member's job cannot read the server's state or reach the host's loopback, and
//! two projects' services on one port each answer for themselves. Skipped loudly unless the
//! test runs as root with `bwrap`, `pasta`, `useradd` and `setfacl` (`scripts/test.sh` installs
//! them).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::util::{Dstack, Server, TempHome, http_client, small, task, wait_until};

/// The account the server runs as.
const ACCOUNT: &str = "dstack-e2e";

fn tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(name).is_file())
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// The account's uid and gid, creating it (a system account without a login) if needed.
fn account() -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = run("id", &[flag, ACCOUNT]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .flatten()
    };
    if id("-u").is_none() {
        let out = run(
            "useradd",
            &[
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                ACCOUNT,
            ],
        );
        // A test running beside this one may have created it first.
        assert!(
            out.status.success() || id("-u").is_some(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (id("-u").expect("uid"), id("-g").expect("gid"))
}

/// Access to `/dev/net/tun` for the account while it lives. Debian gives everyone access
/// (mode 0666); some machines (this project's CI among them) give only root, and then `pasta`
/// cannot make a network as an ordinary user: an ACL entry grants it to the account alone.
struct TunAccess {
    granted: bool,
}

impl TunAccess {
    /// Whether the account may open `/dev/net/tun` already.
    fn accessible() -> bool {
        let out = run(
            "setpriv",
            &[
                &format!("--reuid={ACCOUNT}"),
                &format!("--regid={ACCOUNT}"),
                "--clear-groups",
                "--",
                "test",
                "-r",
                "/dev/net/tun",
                "-a",
                "-w",
                "/dev/net/tun",
            ],
        );
        out.status.success()
    }

    fn grant() -> TunAccess {
        if TunAccess::accessible() {
            return TunAccess { granted: false };
        }
        let out = run(
            "setfacl",
            &["-m", &format!("u:{ACCOUNT}:rw"), "/dev/net/tun"],
        );
        assert!(
            out.status.success(),
            "setfacl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TunAccess { granted: true }
    }
}

impl Drop for TunAccess {
    fn drop(&mut self) {
        if self.granted {
            let _ = run("setfacl", &["-x", &format!("u:{ACCOUNT}"), "/dev/net/tun"]);
        }
    }
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn an_unprivileged_server_sandboxes_jobs_with_their_own_network() {
    let euid =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc"));
    if euid != 0 {
        eprintln!("SKIPPED: not root, so this test cannot create the account to run the server as");
        return;
    }
    let missing: Vec<&str> = ["bwrap", "pasta", "useradd", "setfacl", "setpriv"]
        .into_iter()
        .filter(|t| !tool(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("SKIPPED: {} not installed", missing.join(", "));
        return;
    }
    let (uid, gid) = account();
    let home = TempHome::new("unprivileged");
    // The server's binary where the account can run it (the checkout may be in root's home).
    let bin = home.join("bin/dstack");
    std::fs::create_dir_all(home.join("bin")).expect("bin");
    std::fs::copy(crate::util::dstack_bin(), &bin).expect("copy dstack");
    let out = run(
        "chown",
        &["-R", &format!("{uid}:{gid}"), &home.display().to_string()],
    );
    assert!(out.status.success(), "chown: {out:?}");
    if !TunAccess::accessible() {
        // Without a network of their own jobs are not isolated: the server says so, and only
        // admins run jobs.
        let server = Server::start_as(
            &home,
            &[("USER", ACCOUNT), ("LOGNAME", ACCOUNT)],
            &bin,
            Some((uid, gid)),
        );
        let eve = server.create_user("eve");
        server.create_project(&eve, "evil");
        let refused = server.apply("evil", &eve, &task("probe", &["true"]));
        assert_eq!(refused.status, 400, "{refused}");
        assert!(
            refused.error_message().contains("network of their own"),
            "{refused}"
        );
        drop(server);
        crate::util::kill_processes_under(&home);
        std::fs::remove_dir_all(home.join(".dstack")).expect("a fresh server directory");
    }
    let _tun = TunAccess::grant();
    let server = Server::start_as(
        &home,
        &[("USER", ACCOUNT), ("LOGNAME", ACCOUNT)],
        &bin,
        Some((uid, gid)),
    );
    assert_eq!(
        uid_of(server.pid()),
        Some(uid),
        "the server runs as {ACCOUNT}"
    );
    let d = Dstack { server, home };

    // A member (no admin): the server found a sandbox, or it would refuse them.
    let eve = d.create_user("eve");
    d.create_project(&eve, "evil");
    let server_dir = d.home.join(".dstack/server");
    let server_port = d.url.rsplit(':').next().expect("port").to_string();
    let probe = format!(
        "for f in {db} {config}; do if cat $f >/dev/null 2>&1; then echo READ $f; fi; done; \
         if python3 -c \"import socket; socket.create_connection(('127.0.0.1', {server_port}), 3)\" 2>/dev/null; \
         then echo REACHED server; fi; echo uid $(id -u) done",
        db = server_dir.join("data/sqlite.db").display(),
        config = server_dir.join("config.yml").display(),
    );
    d.submit("evil", &eve, &task("probe", &[&probe]));
    let run_ = d.wait_finished("evil", &eve, "probe");
    let out = d.logs_text("evil", &eve, &run_, 1000).0;
    assert_eq!(run_["status"], "done", "{run_}\n{out}");
    assert!(out.contains("done"), "{out}");
    assert!(!out.contains("READ ") && !out.contains("REACHED"), "{out}");
    // As in the original's containers, the job is root in its own user namespace.
    assert!(out.contains("uid 0 done"), "{out}");

    // Two projects, one port, each answers for itself; the jobs run as the account on the host.
    d.create_project(&d.token, "other");
    let web = |body: &str| {
        json!({
            "type": "service", "name": "web", "port": 8000, "auth": false, "resources": small(),
            "commands": [
                format!("mkdir -p site && echo {body} > site/index.html && cd site"),
                "exec python3 -m http.server 8000 --bind 127.0.0.1",
            ],
        })
    };
    d.submit("evil", &eve, &web("from-eve"));
    d.submit("other", &d.token, &web("from-admin"));
    let running = d.wait_running("evil", &eve, "web");
    d.wait_running("other", &d.token, "web");
    let client = http_client(Duration::from_secs(10));
    for (project, body) in [("evil", "from-eve"), ("other", "from-admin")] {
        let url = format!("{}/proxy/services/{project}/web/", d.url);
        let mut last = String::new();
        assert!(
            wait_until(Duration::from_secs(30), || {
                last = client
                    .get(&url)
                    .send()
                    .ok()
                    .filter(|r| r.status() == 200)
                    .and_then(|r| r.text().ok())
                    .unwrap_or_default();
                !last.is_empty()
            }),
            "{project}'s service never answered"
        );
        assert_eq!(last.trim(), body);
    }
    let run_id = running["id"].as_str().expect("run id");
    let pids = crate::util::processes_of_run(run_id);
    assert!(!pids.is_empty(), "no process of the service found");
    for pid in pids {
        if let Some(owner) = uid_of(pid) {
            assert_eq!(owner, uid, "process {pid} of a job");
        }
    }
    d.stop("evil", &eve, &["web"], true);
    d.stop("other", &d.token, &["web"], true);
    d.wait_finished("evil", &eve, "web");
    d.wait_finished("other", &d.token, "web");
}
