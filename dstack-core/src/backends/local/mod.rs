//! The local fleet: the host the server runs on, offered with its real resources, running each
//! job under a detached runner (see [`runner`]) in its own session and process group.
//!
//! Each job runs in a sandbox (see [`sandbox`]) with a network of its own (see [`network`]),
//! reached at host ports picked for it; GPUs are given out exclusively (`CUDA_VISIBLE_DEVICES` /
//! `HIP_VISIBLE_DEVICES`). What a job holds is recorded in its directory too, so a restarted
//! server takes it back (see [`alloc`]).

mod alloc;
mod cgroup;
mod files;
pub mod host;
pub mod network;
mod python;
pub mod runner;
mod sandbox;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub use host::HostResources;

use super::{
    Backend, BackendError, BackendOffer, InstanceInfo, JobHandle, Launch, PortBinding, StartError,
};
use crate::jobspec::{BASE_IMAGE, DIND_IMAGE, JobCommand, JobSpec, LEGACY_REPO_DIR, Prelude};
use crate::lifecycle::{Observed, Signal};
use alloc::{Allocation, Held};
use files::JobFs;

/// The backend's name in handles.
pub const NAME: &str = "local";

/// Server variables a job inherits; everything else of the server's environment stays out.
const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR", "SHELL", "TZ",
];

/// Where the job finds its directories and tools, as it sees them.
#[derive(Debug)]
struct JobView {
    cwd: String,
    home: String,
    tmp: String,
    bin: Option<String>,
}

/// The host the server runs on, as a backend.
#[derive(Debug)]
pub struct LocalBackend {
    inner: std::sync::Arc<Inner>,
    held: Mutex<Held>,
}

/// What does not change after start-up.
#[derive(Debug)]
struct Inner {
    jobs_dir: PathBuf,
    runner_exe: Option<PathBuf>,
    host: HostResources,
    instance: InstanceInfo,
    base_env: Vec<(String, String)>,
    /// Python versions on `PATH` (`3.12` → `/usr/bin/python3.12`).
    pythons: BTreeMap<String, Vec<PathBuf>>,
    /// The version of `python3`.
    default_python: Option<String>,
    /// The sandbox jobs run in; `Err` says why there is none.
    sandbox: Result<sandbox::Sandbox, String>,
    /// Where jobs' CPU and memory limits are made; `Err` says why they cannot be.
    cgroups: Result<cgroup::Cgroups, String>,
}

impl LocalBackend {
    /// The local fleet of a server keeping its files in `server_dir`, starting runners with
    /// `runner_exe job-runner DIR`. Reads the host's resources and environment once.
    pub fn new(server_dir: &Path, runner_exe: Option<PathBuf>, sandbox: bool) -> LocalBackend {
        let host = HostResources::detect(server_dir);
        let base_env: Vec<(String, String)> = INHERITED_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        let username = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let (pythons, default_python) = python::find_pythons(std::env::var_os("PATH"));
        let cgroups = cgroup::Cgroups::detect();
        if let Err(why) = &cgroups {
            tracing::warn!("jobs' CPU and memory are not limited: {why}");
        }
        let sandbox = if sandbox {
            sandbox::Sandbox::detect(server_dir)
        } else {
            Err("the sandbox is turned off (--no-sandbox)".to_string())
        };
        let instance = InstanceInfo {
            backend: "remote".into(),
            instance_id: "local".into(),
            instance_type: host.instance_type(),
            hostname: "127.0.0.1".into(),
            internal_ip: "127.0.0.1".into(),
            region: "local".into(),
            price: 0.0,
            username,
            ssh_port: None,
            dockerized: false,
        };
        LocalBackend {
            inner: std::sync::Arc::new(Inner {
                jobs_dir: server_dir.join("local").join("jobs"),
                runner_exe,
                host,
                instance,
                base_env,
                pythons,
                default_python,
                sandbox,
                cgroups,
            }),
            held: Mutex::default(),
        }
    }

    /// The host's resources.
    pub fn host(&self) -> &HostResources {
        &self.inner.host
    }

    /// The Python version jobs get when they name none (the host's `python3`).
    pub fn default_python(&self) -> Option<&str> {
        self.inner.default_python.as_deref()
    }

    fn job_dir(&self, job_id: &str) -> Result<PathBuf, String> {
        self.inner.job_dir(job_id)
    }

    fn handle(&self, job_id: &str, a: &Allocation) -> JobHandle {
        self.inner.handle(job_id, a)
    }

    fn handle_dir(&self, handle: &JobHandle) -> Result<PathBuf, BackendError> {
        if handle.backend != NAME {
            return Err(BackendError::Handle(format!(
                "a `{}` handle given to the local fleet",
                handle.backend
            )));
        }
        let id = handle.data["job_id"]
            .as_str()
            .ok_or_else(|| BackendError::Handle("no job id".into()))?;
        self.job_dir(id).map_err(BackendError::Handle)
    }

    /// Picks the GPUs and ports a job needs from those nobody holds, and holds them.
    fn reserve(&self, job_id: &str, spec: &JobSpec) -> Result<Allocation, StartError> {
        let mut held = self
            .held
            .lock()
            .map_err(|_| StartError::Failed("the local fleet's state is poisoned".into()))?;
        let mut ports: Vec<u16> = spec.service_port.into_iter().collect();
        for app in spec.app_specs.iter().flatten() {
            if !ports.contains(&app.port) {
                ports.push(app.port);
            }
        }
        let pick: &dyn Fn() -> std::io::Result<u16> = &network::free_host_port;
        let isolated = self.inner.network().is_ok();
        held.reserve(
            job_id,
            ports,
            spec.gpu_count() as usize,
            self.inner.host.gpus.len() as u32,
            isolated.then_some(pick),
        )
        .map_err(|e| match e {
            alloc::AllocError::NoPort(_) => StartError::Failed(e.to_string()),
            _ => StartError::Busy(e.to_string()),
        })
    }

    fn free(&self, job_id: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.free(job_id);
        }
    }
}

impl Inner {
    /// The `pasta` that gives sandboxed jobs their network; `Err` says why jobs are not
    /// isolated (no sandbox, or no network of their own).
    fn network(&self) -> Result<&Path, String> {
        let sandbox = self.sandbox.as_ref().map_err(Clone::clone)?;
        sandbox
            .network()
            .map_err(|e| format!("jobs cannot have a network of their own: {e}"))
    }

    fn job_dir(&self, job_id: &str) -> Result<PathBuf, String> {
        let valid = !job_id.is_empty()
            && job_id.len() <= 64
            && job_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if valid {
            Ok(self.jobs_dir.join(job_id))
        } else {
            Err(format!("invalid job id {job_id:?}"))
        }
    }

    fn handle(&self, job_id: &str, a: &Allocation) -> JobHandle {
        JobHandle {
            backend: NAME.into(),
            instance: self.instance.clone(),
            ports: a
                .forwards()
                .iter()
                .map(|f| PortBinding {
                    container_port: f.job,
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], f.host)),
                })
                .collect(),
            gpus: a.gpus.clone(),
            data: serde_json::json!({ "job_id": job_id }),
        }
    }

    /// The job's environment: the inherited server variables, the launch's, and what the host
    /// decides (GPUs, addresses, the working and home directories, the requested Python first
    /// on `PATH`).
    fn environment(
        &self,
        launch: &Launch,
        a: &Allocation,
        view: &JobView,
    ) -> Vec<(String, String)> {
        let mut env = self.base_env.clone();
        let mut set = |k: &str, v: String| match env.iter_mut().find(|(key, _)| key == k) {
            Some(entry) => entry.1 = v,
            None => env.push((k.to_string(), v)),
        };
        set("HOME", view.home.clone());
        set("TMPDIR", view.tmp.clone());
        for (k, v) in &launch.env {
            set(k, v.clone());
        }
        let gpus = a.gpus.len().to_string();
        set("DSTACK_GPUS_NUM", gpus.clone());
        set("DSTACK_GPUS_PER_NODE", gpus);
        set("DSTACK_MASTER_NODE_IP", "127.0.0.1".into());
        set("DSTACK_NODES_IPS", "127.0.0.1".into());
        set("DSTACK_WORKING_DIR", view.cwd.clone());
        let visible: Vec<String> = a.gpus.iter().map(ToString::to_string).collect();
        let var = match self.host.gpus.first().map(|g| g.vendor) {
            Some(crate::resources::Vendor::Amd) => "HIP_VISIBLE_DEVICES",
            _ => "CUDA_VISIBLE_DEVICES",
        };
        set(var, visible.join(","));
        if let Some(dir) = &view.bin {
            let path = self
                .base_env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map_or_else(String::new, |(_, v)| v.clone());
            set("PATH", format!("{dir}:{path}"));
        }
        env
    }

    /// The device nodes of the GPUs a job holds.
    fn devices(&self, a: &Allocation) -> Vec<PathBuf> {
        let amd = matches!(
            self.host.gpus.first().map(|g| g.vendor),
            Some(crate::resources::Vendor::Amd)
        );
        let mut out = Vec::new();
        if a.gpus.is_empty() {
            return out;
        }
        if amd {
            out.push(PathBuf::from("/dev/kfd"));
            for g in &a.gpus {
                out.push(PathBuf::from(format!("/dev/dri/renderD{}", 128 + g)));
            }
        } else {
            for n in [
                "nvidiactl",
                "nvidia-uvm",
                "nvidia-uvm-tools",
                "nvidia-modeset",
            ] {
                out.push(PathBuf::from(format!("/dev/{n}")));
            }
            for g in &a.gpus {
                out.push(PathBuf::from(format!("/dev/nvidia{g}")));
            }
        }
        out
    }

    /// Prepares the job's directory and files and spawns its runner (blocking).
    fn spawn(&self, launch: &Launch, a: &Allocation) -> Result<(), String> {
        let dir = self.job_dir(&launch.job_id)?;
        let io = |what: &str, e: std::io::Error| format!("cannot {what}: {e}");
        std::fs::create_dir_all(&dir).map_err(|e| io("create the job directory", e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(runner::lock_file(&dir))
            .map_err(|e| io("open the job's lock", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            // A runner of this job is alive: it was started already.
            Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock the job", e)),
        }
        if runner::read_status(&dir)
            .map_err(|e| io("read the job's status", e))?
            .is_some()
        {
            return Ok(());
        }
        runner::write_atomic(
            &dir.join("alloc.json"),
            serde_json::to_string(a).unwrap_or_default().as_bytes(),
        )
        .map_err(|e| io("record the job's allocation", e))?;
        let fs = JobFs::new(&dir, launch.spec.home_dir.as_deref());
        fs.create()
            .map_err(|e| io("create the job's directories", e))?;
        if let Some((code, target)) = &launch.code {
            let target = fs.host_path(target)?;
            files::unpack_code(code, &target).map_err(|e| {
                format!("cannot place the repo's code at {}: {e}", target.display())
            })?;
        }
        for (i, (archive, target)) in launch.files.iter().enumerate() {
            let target = fs.host_path(target)?;
            files::unpack_archive(archive, &target, &dir.join(format!("unpack-{i}")))
                .map_err(|e| format!("cannot place uploaded files at {}: {e}", target.display()))?;
        }
        let bin = match &launch.command {
            JobCommand::Shell {
                prelude: Prelude::PythonVenv(version),
                ..
            } => self.python_shims(&dir, version)?,
            _ => None,
        };
        // The working directory as the job sees it: its own, or an absolute `working_dir`.
        let cwd = launch
            .spec
            .working_dir
            .clone()
            .unwrap_or_else(|| LEGACY_REPO_DIR.to_string());
        let (argv, view, host_cwd) = match &self.sandbox {
            Ok(sandbox) => {
                if let Ok(path) = fs.host_path(&cwd) {
                    std::fs::create_dir_all(&path)
                        .map_err(|e| io("create the working directory", e))?;
                }
                if let Some((uid, gid)) = sandbox.run_as() {
                    for (_, area) in fs.areas() {
                        files::chown_tree(area, uid, gid)?;
                    }
                }
                let view = JobView {
                    cwd: cwd.clone(),
                    home: fs.home_dir.clone(),
                    tmp: "/tmp".into(),
                    bin: bin.as_ref().map(|_| "/dstack/bin".to_string()),
                };
                let argv = sandbox.wrap(
                    &fs,
                    &cwd,
                    &self.devices(a),
                    bin.as_deref(),
                    &launch.spec.job_name,
                    &launch.command.host_argv(),
                );
                (argv, view, dir.clone())
            }
            Err(_) => {
                // Unsandboxed (only where the server allows it): the job's areas at their host
                // paths; an absolute `working_dir` outside them is the host's.
                let host_cwd = match fs.host_path(&cwd) {
                    Ok(p) => p,
                    Err(_) if Path::new(&cwd).is_dir() => PathBuf::from(&cwd),
                    Err(e) => return Err(e),
                };
                std::fs::create_dir_all(&host_cwd)
                    .map_err(|e| io("create the working directory", e))?;
                let view = JobView {
                    cwd: host_cwd.display().to_string(),
                    home: fs.home.display().to_string(),
                    tmp: fs.tmp.display().to_string(),
                    bin: bin.as_ref().map(|b| b.display().to_string()),
                };
                (launch.command.host_argv(), view, host_cwd)
            }
        };
        let env = self.environment(launch, a, &view);
        let network = self.network().ok().map(|pasta| network::JobNetwork {
            pasta: pasta.to_path_buf(),
            userns: self
                .sandbox
                .as_ref()
                .is_ok_and(sandbox::Sandbox::has_userns),
            forwards: a.forwards(),
            dns_forward: self.sandbox.as_ref().is_ok_and(|s| s.dns_forward()),
        });
        let limits = cgroup::Limits::of(
            &launch.spec.requirements.resources,
            self.host.cpus,
            self.host.memory_mib as f64 / 1024.0,
        );
        let cgroups = match &self.cgroups {
            Ok(cgroups) if !limits.is_empty() => cgroups.create(&launch.job_id, &limits)?,
            _ => Vec::new(),
        };
        let runner_launch = runner::RunnerLaunch {
            argv,
            env,
            working_dir: host_cwd,
            log_file: launch.log_file.clone(),
            network,
            cgroups,
        };
        runner::write_atomic(
            &runner::launch_file(&dir),
            serde_json::to_string(&runner_launch)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(|e| io("write the job's launch file", e))?;
        let exe = self
            .runner_exe
            .as_ref()
            .ok_or_else(|| "this server has no job runner configured".to_string())?;
        // The runner gets the locked file as its standard input and holds the lock for as long
        // as it lives; it detaches and this first process exits at once.
        let env = serde_json::to_string(&runner_launch.env)
            .map_err(|e| format!("cannot encode the job's environment: {e}"))?;
        let status = Command::new(exe)
            .arg("job-runner")
            .arg(&dir)
            .env(runner::ENV_VAR, env)
            .stdin(Stdio::from(lock))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| io("start the job's runner", e))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the job's runner failed to start ({status})"))
        }
    }

    /// The interpreter of a Python version jobs can use (one the sandbox shows).
    fn python(&self, version: &str) -> Option<&PathBuf> {
        self.pythons
            .get(version)?
            .iter()
            .find(|p| match &self.sandbox {
                Ok(sandbox) => std::fs::canonicalize(p).is_ok_and(|real| sandbox.shows(&real)),
                Err(_) => true,
            })
    }

    /// `python` and `python3` for the requested version, first on the job's `PATH`.
    fn python_shims(&self, dir: &Path, version: &str) -> Result<Option<PathBuf>, String> {
        let Some(exe) = self.python(version) else {
            return Ok(None);
        };
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin)
            .map_err(|e| format!("cannot create {}: {e}", bin.display()))?;
        for name in ["python", "python3"] {
            let link = bin.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(exe, &link)
                .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
        }
        Ok(Some(bin))
    }

    fn read_allocation(dir: &Path) -> Allocation {
        std::fs::read(dir.join("alloc.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Whether a runner was ever started for the job in `dir` (its lock is held, or it left a
    /// status).
    fn was_started(dir: &Path) -> Result<bool, BackendError> {
        if runner::read_status(dir)
            .map_err(|source| io_error("read the job's status", source))?
            .is_some()
        {
            return Ok(true);
        }
        let lock = match std::fs::File::open(runner::lock_file(dir)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(io_error("open the job's lock", source)),
        };
        match lock.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(io_error("check the job's lock", source))
            }
        }
    }
}

fn io_error(what: &str, source: std::io::Error) -> BackendError {
    BackendError::Io {
        what: what.to_string(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io_error("run a blocking task", std::io::Error::other(e.to_string())))?
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn offers(&self, spec: &JobSpec) -> Result<Vec<BackendOffer>, String> {
        if spec.jobs_per_replica > 1 {
            return Err(format!(
                "a multi-node task needs {} hosts and the local fleet is one host",
                spec.jobs_per_replica
            ));
        }
        let host = &self.inner.host;
        let resources = &spec.requirements.resources;
        let limits = cgroup::Limits::of(resources, host.cpus, host.memory_mib as f64 / 1024.0);
        // A job asking for less than the host is offered that much and held to it; where it
        // cannot be held, it is offered the whole host (which its range then refuses).
        let offer = match &self.inner.cgroups {
            Ok(_) if !limits.is_empty() => host.offer_within(resources),
            _ => host.offer(),
        };
        let req = crate::offers::Requirements {
            resources: spec.requirements.resources.clone(),
            spot: spec.requirements.spot,
            max_price: spec.requirements.max_price,
        };
        crate::offers::check_offer(&offer, &req).map_err(|why| match &self.inner.cgroups {
            Err(cannot) if !limits.is_empty() => format!(
                "the local fleet does not fit the requirements ({why}); it cannot hold a job to less than the whole host here: {cannot}"
            ),
            _ => format!("the local fleet does not fit the requirements ({why})"),
        })?;
        let busy = self.held.lock().map(|h| !h.is_empty());
        Ok(vec![BackendOffer {
            backend: self.inner.instance.backend.clone(),
            region: self.inner.instance.region.clone(),
            instance: {
                let mut shown = self.inner.instance.instance_type.clone();
                shown.resources.cpus = offer.cpus;
                shown.resources.memory_mib = (offer.memory_gib * 1024.0).round() as u64;
                shown
            },
            price: 0.0,
            busy: busy.unwrap_or(false),
            offer,
        }])
    }

    fn refuses(&self, spec: &JobSpec, command: &JobCommand) -> Option<String> {
        let mut problems = Vec::new();
        if spec.image_name.starts_with(DIND_IMAGE) {
            problems.push("`docker: true`".to_string());
        } else if !spec.image_name.starts_with(&format!("{BASE_IMAGE}:")) {
            problems.push(format!("a custom `image` ({})", spec.image_name));
        }
        if spec.privileged && !spec.image_name.starts_with(DIND_IMAGE) {
            problems.push("`privileged: true`".into());
        }
        if spec
            .repo_data
            .as_ref()
            .and_then(|r| r.get("repo_type"))
            .and_then(|t| t.as_str())
            == Some("remote")
        {
            problems.push("a remote Git repo (this host does not clone repositories)".into());
        }
        if let Some(user) = &spec.user {
            let same = user["username"].as_str() == Some(self.inner.instance.username.as_str())
                && user["uid"].is_null()
                && user["gid"].is_null()
                && user["groupname"].is_null();
            if !same {
                problems.push(format!(
                    "`user` (jobs run as `{}`, the server's user)",
                    self.inner.instance.username
                ));
            }
        }
        if spec.volumes.as_ref().is_some_and(|v| !v.is_empty()) {
            problems.push("`volumes`".into());
        }
        if let JobCommand::Shell {
            prelude: Prelude::PythonVenv(version),
            ..
        } = command
        {
            let default = self.inner.default_python.as_deref() == Some(version.as_str());
            if !default && self.inner.python(version).is_none() {
                problems.push(format!(
                    "`python: \"{version}\"` (no `python{version}` on this host that jobs can use)"
                ));
            }
        }
        let home_dir = spec.home_dir.as_deref().unwrap_or("/root");
        let targets = spec
            .file_archives
            .iter()
            .map(|a| ("`files`", a.path.as_str()))
            .chain(
                spec.repo_code_hash
                    .as_ref()
                    .map(|_| ("`repos`", spec.repo_dir.as_str())),
            )
            .chain(
                spec.working_dir
                    .iter()
                    .map(|w| ("`working_dir`", w.as_str())),
            );
        for (what, target) in targets {
            if let Err(why) = files::check_target(target, home_dir) {
                problems.push(format!("the {what} path {why}"));
            }
        }
        (!problems.is_empty()).then(|| {
            format!(
                "The local fleet runs jobs as processes on the server's host and cannot honour {}. Remove {} or use a fleet that runs containers.",
                problems.join(", "),
                if problems.len() == 1 { "it" } else { "them" }
            )
        })
    }

    fn isolation_problem(&self) -> Option<String> {
        self.inner.network().err()
    }

    fn max_nodes(&self) -> u32 {
        1
    }

    fn can_place(&self, count: usize, spec: &JobSpec) -> Result<(), String> {
        match spec.service_port {
            Some(port) if count > 1 && self.inner.network().is_err() => Err(format!(
                "The local fleet runs jobs on the host's network, so {count} replicas would all listen on port {port}. Use `replicas: 1`, or a fleet that isolates jobs."
            )),
            _ => Ok(()),
        }
    }

    fn instances(&self) -> Vec<InstanceInfo> {
        vec![self.inner.instance.clone()]
    }

    async fn start(&self, launch: Launch) -> Result<JobHandle, StartError> {
        if let Err(why) = self.offers(&launch.spec) {
            return Err(StartError::NoOffers(why));
        }
        if let Some(why) = self.refuses(&launch.spec, &launch.command) {
            return Err(StartError::Failed(why));
        }
        let dir = self.job_dir(&launch.job_id).map_err(StartError::Failed)?;
        let job_id = launch.job_id.clone();
        // A runner started before (a crash between starting and saving): its allocation.
        let started = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || {
                Inner::was_started(&dir)
                    .ok()
                    .filter(|s| *s)
                    .map(|_| Inner::read_allocation(&dir))
            }
        })
        .await
        .ok()
        .flatten();
        if let Some(a) = started {
            if let Ok(mut held) = self.held.lock() {
                held.take(&job_id, &a);
            }
            return Ok(self.handle(&job_id, &a));
        }
        let a = self.reserve(&job_id, &launch.spec)?;
        let this = self.inner.clone();
        let alloc = a.clone();
        let spawned = tokio::task::spawn_blocking(move || this.spawn(&launch, &alloc))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match spawned {
            Ok(()) => Ok(self.handle(&job_id, &a)),
            Err(e) => {
                self.free(&job_id);
                Err(StartError::Failed(e))
            }
        }
    }

    async fn find(&self, job_id: &str) -> Result<Option<JobHandle>, BackendError> {
        let dir = self.job_dir(job_id).map_err(BackendError::Handle)?;
        let found =
            blocking(move || Ok(Inner::was_started(&dir)?.then(|| Inner::read_allocation(&dir))))
                .await?;
        Ok(found.map(|a| self.handle(job_id, &a)))
    }

    async fn observe(&self, handle: &JobHandle) -> Result<Observed, BackendError> {
        let dir = self.handle_dir(handle)?;
        blocking(move || {
            if let Some(status) =
                runner::read_status(&dir).map_err(|e| io_error("read the job's status", e))?
            {
                return Ok(Observed::Exited(status));
            }
            let lock = match std::fs::File::open(runner::lock_file(&dir)) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Observed::Lost("The job's directory is gone".into()));
                }
                Err(e) => return Err(io_error("open the job's lock", e)),
            };
            match lock.try_lock_shared() {
                Err(std::fs::TryLockError::WouldBlock) => {
                    let pgid = runner::read_pgid(&dir)
                        .map_err(|e| io_error("read the job's process group", e))?;
                    Ok(if pgid.is_some() {
                        Observed::Running
                    } else {
                        Observed::Starting
                    })
                }
                Ok(()) => {
                    // The runner is gone; it may have written its status just before.
                    match runner::read_status(&dir)
                        .map_err(|e| io_error("read the job's status", e))?
                    {
                        Some(status) => Ok(Observed::Exited(status)),
                        None => Ok(Observed::Lost(
                            "The job's runner is gone and left no exit status".into(),
                        )),
                    }
                }
                Err(std::fs::TryLockError::Error(e)) => Err(io_error("check the job's lock", e)),
            }
        })
        .await
    }

    async fn signal(&self, handle: &JobHandle, signal: Signal) -> Result<(), BackendError> {
        let dir = self.handle_dir(handle)?;
        let name = match signal {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        };
        blocking(move || {
            runner::write_atomic(&runner::stop_file(&dir), name.as_bytes())
                .map_err(|e| io_error("record the stop request", e))?;
            if let Some(pgid) =
                runner::read_pgid(&dir).map_err(|e| io_error("read the job's process group", e))?
            {
                runner::kill_group(pgid, name).map_err(|e| io_error("signal the job", e))?;
            }
            Ok(())
        })
        .await
    }

    async fn release(&self, handle: &JobHandle) -> Result<(), BackendError> {
        let dir = self.handle_dir(handle)?;
        if let Some(id) = dir.file_name().and_then(|n| n.to_str()) {
            self.free(id);
        }
        // The runner stops the job's `pasta`; one it could not (killed itself) stops here.
        let inner = self.inner.clone();
        blocking(move || {
            network::stop_pasta(&dir);
            if let (Ok(cgroups), Some(id)) =
                (&inner.cgroups, dir.file_name().and_then(|n| n.to_str()))
            {
                cgroups.remove(id);
            }
            Ok(())
        })
        .await
    }

    async fn restore(&self, handles: &[JobHandle]) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        for h in handles.iter().filter(|h| h.backend == NAME) {
            if let Some(id) = h.data["job_id"].as_str() {
                let a = Allocation {
                    gpus: h.gpus.clone(),
                    ports: h.ports.iter().map(|p| p.container_port).collect(),
                    host_ports: h.ports.iter().map(|p| p.addr.port()).collect(),
                };
                held.take(id, &a);
            }
        }
    }
}
