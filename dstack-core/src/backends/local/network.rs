//! Each sandboxed job's own network: a network namespace (bubblewrap's `--unshare-net`) joined
//! to the host by `passt`'s `pasta`, the user-mode network stack rootless Podman uses.
//!
//! The job reaches the outside world through `pasta` (outbound TCP, UDP, ICMP and DNS work), but
//! not the host's loopback: `--no-map-gw` and `-T none -U none` keep the server's listeners, a
//! local database and every other job's ports out of its reach. Its own ports are forwarded from
//! `127.0.0.1:<host port>` on the host, a port the backend picks per job, so two jobs may listen
//! on the same port, no job can answer for another's, and the proxy only ever connects into a
//! job's namespace.
//!
//! The namespace is made by bubblewrap, which stops before the job's command (`--block-fd`) and
//! reports the sandbox's pid (`--info-fd`); `pasta` is attached to that namespace, and only then
//! is the job let go, so its network is up from its first instruction. `pasta` runs as a daemon
//! whose pid is kept in the job's directory; whoever ends the job stops it
//! ([`stop_pasta`]).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

/// A job port reachable from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// Port on the host's `127.0.0.1`.
    pub host: u16,
    /// Port in the job's namespace.
    pub job: u16,
}

/// How a job's namespace is joined to the host (in the runner's launch file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobNetwork {
    /// The `pasta` binary.
    pub pasta: PathBuf,
    /// Whether `pasta` joins the sandbox's user namespace too (an unprivileged server's).
    pub userns: bool,
    /// The job's ports.
    pub forwards: Vec<Forward>,
    /// Whether DNS queries to [`DNS_FORWARD`] go to the host's resolver.
    #[serde(default)]
    pub dns_forward: bool,
}

/// `pasta.pid`: the job's `pasta`.
pub fn pasta_pid_file(dir: &Path) -> PathBuf {
    dir.join("pasta.pid")
}

/// Finds `pasta` and checks that it can give a bubblewrap sandbox a network here: `bwrap_argv`
/// is a sandbox's command line up to (not including) `--`, `userns` whether it makes a user
/// namespace. `Err` says why jobs cannot have a network of their own.
pub(crate) fn detect(
    bwrap_argv: &[String],
    userns: bool,
    scratch: &Path,
) -> Result<PathBuf, String> {
    let pasta = super::sandbox::find("pasta")
        .ok_or("`pasta` (Debian's passt) is not installed".to_string())?;
    let net = JobNetwork {
        pasta: pasta.clone(),
        userns,
        forwards: Vec::new(),
        dns_forward: false,
    };
    let mut argv = bwrap_argv.to_vec();
    argv.extend(["--".into(), "true".into()]);
    std::fs::create_dir_all(scratch).map_err(|e| format!("cannot create {scratch:?}: {e}"))?;
    let pid_file = pasta_pid_file(scratch);
    let probe = spawn(&[], &argv, &net, &pid_file, |c| {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    });
    let result = match probe {
        Ok(mut child) => child.wait().map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    stop_pasta(scratch);
    result.map(|()| pasta)
}

/// Starts `prefix... sandbox_argv...` (bubblewrap's command line, perhaps after `setpriv`;
/// `--unshare-net` is added to bubblewrap's options) configured by `configure`, attaches the job's network to its namespace and only then
/// lets the job run. On failure the sandbox is killed before it ran anything.
pub(crate) fn spawn(
    prefix: &[&str],
    sandbox_argv: &[String],
    net: &JobNetwork,
    pid_file: &Path,
    configure: impl FnOnce(&mut Command),
) -> Result<Child, String> {
    let at = sandbox_argv
        .iter()
        .position(|a| Path::new(a).file_name().is_some_and(|n| n == "bwrap"))
        .ok_or("no bubblewrap in the sandbox's command line")?;
    let (before, rest) = sandbox_argv.split_at(at + 1);
    let (mut info_r, info_w) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let (block_r, block_w) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let info_w = OwnedFd::from(info_w);
    let block_r = OwnedFd::from(block_r);
    inheritable(&info_w)?;
    inheritable(&block_r)?;
    let mut argv: Vec<String> = prefix.iter().map(ToString::to_string).collect();
    argv.extend(before.iter().cloned());
    argv.extend([
        "--unshare-net".into(),
        "--info-fd".into(),
        info_w.as_raw_fd().to_string(),
        "--block-fd".into(),
        block_r.as_raw_fd().to_string(),
    ]);
    argv.extend(rest.iter().cloned());
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    configure(&mut command);
    let spawned = command.spawn();
    // The sandbox holds its ends now; ours must go for EOF to mean what it says.
    drop(info_w);
    drop(block_r);
    let mut child = spawned.map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let fail = |child: &mut Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(why)
    };
    let mut info = Vec::new();
    let pid = loop {
        let mut buf = [0u8; 512];
        match info_r.read(&mut buf) {
            Ok(0) | Err(_) => break None,
            Ok(n) => info.extend_from_slice(&buf[..n]),
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&info) {
            break v["child-pid"].as_i64();
        }
    };
    let Some(pid) = pid else {
        return fail(
            &mut child,
            "bubblewrap did not make the sandbox (no child pid reported)".into(),
        );
    };
    if let Err(why) = attach(pid, net, pid_file) {
        // The job has not run: kill its sandbox while it still waits on the block fd.
        if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        return fail(&mut child, why);
    }
    drop(block_w);
    Ok(child)
}

/// Clears close-on-exec, so a child gets the descriptor at the same number.
fn inheritable(fd: &OwnedFd) -> Result<(), String> {
    rustix::io::fcntl_setfd(fd.as_fd(), rustix::io::FdFlags::empty())
        .map_err(|e| format!("cannot pass a descriptor to the sandbox: {e}"))
}

/// Runs `pasta` against the namespaces of `pid` and waits until it is up (it daemonizes once
/// the namespace's interface is configured).
fn attach(pid: i64, net: &JobNetwork, pid_file: &Path) -> Result<(), String> {
    // `pasta` drops its capabilities before it opens the paths it is given, and the sandbox is
    // not dumpable: the namespaces are opened here and handed over as descriptors.
    let open = |kind: &str| -> Result<OwnedFd, String> {
        let file = std::fs::File::open(format!("/proc/{pid}/ns/{kind}"))
            .map_err(|e| format!("cannot open the sandbox's {kind} namespace: {e}"))?;
        let fd = OwnedFd::from(file);
        inheritable(&fd)?;
        Ok(fd)
    };
    let netns = open("net")?;
    let userns = if net.userns {
        Some(open("user")?)
    } else {
        None
    };
    let mut pasta = Command::new(&net.pasta);
    pasta
        .arg("--config-net")
        .arg("--quiet")
        .args(["--netns", &format!("/proc/self/fd/{}", netns.as_raw_fd())]);
    if let Some(fd) = &userns {
        pasta.args(["--userns", &format!("/proc/self/fd/{}", fd.as_raw_fd())]);
    }
    if rustix::process::geteuid().is_root() {
        // As root `pasta` would switch to `nobody`, and could then neither enter a namespace
        // root owns nor open `/dev/net/tun` where only root may; it keeps uid 0 with two
        // capabilities under its seccomp filter.
        pasta.args(["--runas", "0"]);
    }
    // No way back to the host's loopback: neither through the gateway address nor by ports
    // forwarded from the namespace to the host.
    pasta.args(["--no-map-gw", "-T", "none", "-U", "none", "-u", "none"]);
    if net.forwards.is_empty() {
        pasta.args(["-t", "none"]);
    }
    if net.dns_forward {
        pasta.args(["--dns-forward", DNS_FORWARD]);
    }
    for f in &net.forwards {
        pasta.args(["-t", &format!("127.0.0.1/{}:{}", f.host, f.job)]);
    }
    let _ = std::fs::remove_file(pid_file);
    pasta.arg("--pid").arg(pid_file);
    let out = pasta
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", net.pasta.display()))?;
    if out.status.success() {
        return Ok(());
    }
    // Old releases also report that they cannot reach syslog: not the reason.
    let why: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("syslog") && !l.trim().is_empty())
        .collect();
    Err(format!(
        "pasta cannot give the sandbox a network: {}",
        if why.is_empty() {
            out.status.to_string()
        } else {
            why.join("; ")
        }
    ))
}

/// Stops the `pasta` of the job in `dir`, if it still runs.
pub fn stop_pasta(dir: &Path) {
    let file = pasta_pid_file(dir);
    let Some(pid) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return;
    };
    // The pid is only trusted while it is still this job's `pasta` (pids are reused): its
    // command line names this pid file. (Its name is no proof: `pasta` re-executes itself as
    // `passt.avx2` where the CPU allows.)
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == file.as_os_str().as_encoded_bytes());
    if ours && let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
    let _ = std::fs::remove_file(file);
}

/// A port on the host's `127.0.0.1` that nothing listens on now.
pub(crate) fn free_host_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Where jobs send DNS queries when the host's resolver listens on its loopback (systemd's
/// `127.0.0.53`, a local dnsmasq), which a job's namespace cannot reach: `pasta` forwards
/// queries to this address to the host's resolver.
pub(crate) const DNS_FORWARD: &str = "169.254.53.53";

/// The `resolv.conf` jobs get instead of the host's, when the host's names a resolver on its
/// loopback: the same file with those resolvers replaced by [`DNS_FORWARD`]. `None` when the
/// host's file serves jobs as it is.
pub(crate) fn resolv_conf_for_jobs(host: &str) -> Option<String> {
    let loopback = |addr: &str| {
        addr.parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
    };
    let mut replaced = false;
    let mut out = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") && words.next().is_some_and(loopback) {
            if !replaced {
                out.push_str(&format!("nameserver {DNS_FORWARD}\n"));
            }
            replaced = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    replaced.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_resolver_is_replaced_by_the_forwarded_address() {
        let host =
            "# stub\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0 trust-ad\nsearch lan\n";
        assert_eq!(
            resolv_conf_for_jobs(host).as_deref(),
            Some("# stub\nnameserver 169.254.53.53\noptions edns0 trust-ad\nsearch lan\n")
        );
        assert_eq!(resolv_conf_for_jobs("nameserver 10.0.0.2\n"), None);
    }
}
