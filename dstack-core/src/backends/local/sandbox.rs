//! The sandbox jobs of the local fleet run in: Debian's `bubblewrap` (`bwrap`).
//!
//! Each job gets its own user, mount, PID, IPC and UTS namespaces. It sees the host's system
//! read-only (so its Python, CUDA libraries and tools work as on the host), but not `/root`,
//! `/home`, `/run` or the server's directory; its own `/workflow`, home and `/tmp` (bound from its
//! job directory); a minimal `/dev` with only the GPUs it was given; no capabilities and no way
//! to gain privileges (`no_new_privs`, an empty bounding set). The job is root in a user
//! namespace of its own, as in the original's containers, and that root is an unprivileged user
//! on the host. A server running as root builds the sandbox as root (so that bubblewrap reaches
//! the job's directories inside the server's, which only root may enter); inside it the job
//! drops to `nobody` (`setpriv`), makes its user namespace mapping `nobody` to root (`unshare
//! --user --map-root-user`) and gives up the capabilities that brings; where `nobody` may not
//! make user namespaces, the job stays `nobody` without one. An unprivileged server's
//! bubblewrap makes the user namespace itself, and the job's root is the server's user. Its
//! network namespace is its own too, joined to the host by `pasta` (see [`super::network`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::files::JobFs;
use crate::jobspec::LEGACY_REPO_DIR;

/// Top-level host directories a job never sees.
const HIDDEN_ROOTS: &[&str] = &[
    "proc",
    "dev",
    "tmp",
    "sys",
    "run",
    "root",
    "home",
    "lost+found",
];

/// The user sandboxes run as when the server is root (`nobody`).
pub(crate) const NOBODY: (u32, u32) = (65534, 65534);

/// An entry of the host's `/` shown to jobs.
#[derive(Debug, Clone)]
enum RootEntry {
    Dir(String),
    Symlink { name: String, target: String },
}

/// How jobs are sandboxed on this host.
#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    bwrap: PathBuf,
    /// The unprivileged user sandboxes run as (when the server is root).
    run_as: Option<(u32, u32)>,
    /// Whether a root server's job makes a user namespace of its own (`nobody` may).
    job_userns: bool,
    roots: Vec<RootEntry>,
    /// Host paths inside the shown roots that are masked (the server's directory).
    masked: Vec<PathBuf>,
    /// The `pasta` that gives jobs their network; `Err` says why they cannot have one.
    network: Result<PathBuf, String>,
    /// The `resolv.conf` jobs get, when the host's names a resolver they cannot reach.
    resolv_conf: Option<PathBuf>,
}

pub(crate) fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

impl Sandbox {
    /// Finds `bwrap` and checks that it can make a sandbox here (user namespaces allowed).
    /// `Err` says why jobs cannot be sandboxed.
    pub(crate) fn detect(server_dir: &Path) -> Result<Sandbox, String> {
        let bwrap = find("bwrap").ok_or("`bwrap` (Debian's bubblewrap) is not installed")?;
        let root = rustix::process::geteuid().is_root();
        if root && (find("setpriv").is_none() || find("unshare").is_none()) {
            return Err("`setpriv` and `unshare` (util-linux) are not installed".into());
        }
        let mut roots = Vec::new();
        let entries = std::fs::read_dir("/").map_err(|e| format!("cannot read /: {e}"))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if HIDDEN_ROOTS.contains(&name.as_str()) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                if let Ok(target) = std::fs::read_link(entry.path()) {
                    roots.push(RootEntry::Symlink {
                        name,
                        target: target.to_string_lossy().into_owned(),
                    });
                }
            } else if meta.is_dir() {
                roots.push(RootEntry::Dir(name));
            }
        }
        roots.sort_by_key(|r| match r {
            RootEntry::Dir(n) | RootEntry::Symlink { name: n, .. } => n.clone(),
        });
        let server_dir =
            std::fs::canonicalize(server_dir).unwrap_or_else(|_| server_dir.to_path_buf());
        let scratch = server_dir.join("local").join("network-probe");
        let mut sandbox = Sandbox {
            bwrap,
            run_as: root.then_some(NOBODY),
            job_userns: root,
            roots,
            masked: vec![server_dir],
            network: Err(String::new()),
            resolv_conf: None,
        };
        if let Err(why) = sandbox.probe() {
            if !sandbox.job_userns {
                return Err(why);
            }
            tracing::info!("jobs run as nobody without a user namespace of their own: {why}");
            sandbox.job_userns = false;
            sandbox.probe()?;
        }
        let mut argv = sandbox.prefix();
        argv.extend(sandbox.isolation());
        argv.extend(["--chdir".into(), "/".into()]);
        sandbox.network = super::network::detect(&argv, sandbox.has_userns(), &scratch);
        if sandbox.network.is_ok() {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            if let Some(text) = super::network::resolv_conf_for_jobs(&host) {
                let file = scratch.join("resolv.conf");
                std::fs::write(&file, text)
                    .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                sandbox.resolv_conf = Some(file);
            }
        }
        Ok(sandbox)
    }

    /// The `pasta` that gives jobs a network of their own; `Err` says why there is none.
    pub(crate) fn network(&self) -> Result<&Path, &str> {
        self.network
            .as_ref()
            .map(PathBuf::as_path)
            .map_err(String::as_str)
    }

    /// Whether jobs' DNS queries are forwarded to the host's resolver (see
    /// [`super::network::DNS_FORWARD`]).
    pub(crate) fn dns_forward(&self) -> bool {
        self.resolv_conf.is_some()
    }

    /// Whether the sandbox has a user namespace of its own (which `pasta` joins): an
    /// unprivileged server's. (A root server's bubblewrap runs as root, so that it can reach
    /// the job's directories inside the server's; the job then runs as `nobody`.)
    pub(crate) fn has_userns(&self) -> bool {
        self.run_as.is_none()
    }

    /// The user a sandboxed job runs as on the host, when it is not the server's.
    pub(crate) fn run_as(&self) -> Option<(u32, u32)> {
        self.run_as
    }

    /// Whether a host path is visible to sandboxed jobs.
    pub(crate) fn shows(&self, path: &Path) -> bool {
        let Some(first) = path
            .components()
            .nth(1)
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
        else {
            return false;
        };
        let shown = self.roots.iter().any(|r| match r {
            RootEntry::Dir(n) | RootEntry::Symlink { name: n, .. } => *n == first,
        });
        shown && !self.masked.iter().any(|m| path.starts_with(m))
    }

    fn probe(&self) -> Result<(), String> {
        let mut argv = self.prefix();
        argv.extend(self.isolation());
        argv.extend(["--chdir".into(), "/".into(), "--".into()]);
        argv.extend(self.drop_privileges());
        argv.push("true".into());
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "bubblewrap cannot make a sandbox here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn prefix(&self) -> Vec<String> {
        vec![self.bwrap.display().to_string()]
    }

    /// What runs the job's command inside the sandbox: as root, `setpriv` to the unprivileged
    /// user with no capabilities left at all, then that user's own user namespace (where it is
    /// root) without the capabilities it brings.
    fn drop_privileges(&self) -> Vec<String> {
        let Some((uid, gid)) = self.run_as else {
            return Vec::new();
        };
        let no_caps = ["--bounding-set=-all", "--inh-caps=-all", "--"];
        let mut argv: Vec<String> = vec![
            "setpriv".into(),
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
        ];
        argv.extend(no_caps.iter().map(ToString::to_string));
        if self.job_userns {
            argv.extend(
                ["unshare", "--user", "--map-root-user", "--", "setpriv"]
                    .iter()
                    .chain(&no_caps)
                    .map(ToString::to_string),
            );
        }
        argv
    }

    /// Namespaces, capabilities and the read-only view of the host.
    fn isolation(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        if self.run_as.is_some() {
            // Root builds the sandbox; the job drops to the unprivileged user (setpriv needs
            // these three, and gives them up).
            a.extend(["--cap-drop".into(), "ALL".into()]);
            for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
                a.extend(["--cap-add".into(), cap.into()]);
            }
        } else {
            a.extend(["--unshare-user".into(), "--cap-drop".into(), "ALL".into()]);
        }
        a.extend(
            [
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-cgroup-try",
                "--die-with-parent",
                "--tmpfs",
                "/",
            ]
            .iter()
            .map(ToString::to_string),
        );
        for r in &self.roots {
            match r {
                RootEntry::Dir(n) => {
                    a.extend(["--ro-bind".into(), format!("/{n}"), format!("/{n}")])
                }
                RootEntry::Symlink { name, target } => {
                    a.extend(["--symlink".into(), target.clone(), format!("/{name}")])
                }
            }
        }
        a.extend([
            "--dev".into(),
            "/dev".into(),
            "--proc".into(),
            "/proc".into(),
        ]);
        a.extend(["--ro-bind-try".into(), "/sys".into(), "/sys".into()]);
        a.extend([
            "--ro-bind-try".into(),
            "/run/systemd/resolve".into(),
            "/run/systemd/resolve".into(),
        ]);
        if let Some(file) = &self.resolv_conf {
            a.extend([
                "--ro-bind".into(),
                file.display().to_string(),
                "/etc/resolv.conf".into(),
            ]);
        }
        for m in &self.masked {
            if self.shows_root_of(m) {
                a.extend(["--tmpfs".into(), m.display().to_string()]);
            }
        }
        a
    }

    fn shows_root_of(&self, path: &Path) -> bool {
        let first = path
            .components()
            .nth(1)
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        first.is_some_and(|f| {
            self.roots
                .iter()
                .any(|r| matches!(r, RootEntry::Dir(n) if *n == f))
        })
    }

    /// The command line that runs `command` in a sandbox for the job `fs`, starting in `cwd`
    /// (a path of the job), with `devices` (GPU device nodes) and `bin` (a directory shown at
    /// `/dstack/bin`, first on the job's `PATH`).
    pub(crate) fn wrap(
        &self,
        fs: &JobFs,
        cwd: &str,
        devices: &[PathBuf],
        bin: Option<&Path>,
        hostname: &str,
        command: &[String],
    ) -> Vec<String> {
        let mut argv = self.prefix();
        argv.extend(self.isolation());
        for d in devices {
            let d = d.display().to_string();
            argv.extend(["--dev-bind-try".into(), d.clone(), d]);
        }
        argv.extend([
            "--bind".into(),
            fs.tmp.display().to_string(),
            "/tmp".into(),
            "--bind".into(),
            fs.workdir.display().to_string(),
            LEGACY_REPO_DIR.into(),
            "--bind".into(),
            fs.home.display().to_string(),
            fs.home_dir.clone(),
        ]);
        if let Some(bin) = bin {
            argv.extend([
                "--ro-bind".into(),
                bin.display().to_string(),
                "/dstack/bin".into(),
            ]);
        }
        if self.run_as.is_none() {
            // An unprivileged server's jobs are "root" in their own user namespace, as in the
            // original's containers.
            argv.extend(["--uid".into(), "0".into(), "--gid".into(), "0".into()]);
        }
        argv.extend([
            "--hostname".into(),
            hostname.into(),
            "--chdir".into(),
            cwd.into(),
            "--".into(),
        ]);
        argv.extend(self.drop_privileges());
        argv.extend(command.iter().cloned());
        argv
    }
}
