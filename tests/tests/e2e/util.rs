//! Shared helpers: locating the `dstack` binary, a temporary HOME that takes every process
//! started under it down with it, a `dstack server` process, HTTP calls, polling, and the
//! upstream CLI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The `dstack` binary under test: `DSTACK_BIN` if set, else `dstack` in the target profile
/// directory this test binary was built into (found by walking up from the test executable).
pub(crate) fn dstack_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DSTACK_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "DSTACK_BIN={} is not a file; build it first: cargo build -p dstack-cli",
            bin.display()
        );
        return bin;
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join("dstack");
        if candidate.is_file() {
            return candidate;
        }
        // The profile directory holds `deps/`; do not wander above the target directory.
        if dir.join("deps").is_dir() {
            break;
        }
    }
    panic!(
        "no `dstack` binary next to {} (nor DSTACK_BIN); build it first: cargo build -p dstack-cli",
        exe.display()
    );
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temporary HOME. Dropping it kills every process still running that was started under it
/// (jobs outlive the server by design, so killing the server is not enough), then removes it.
#[derive(Debug)]
pub(crate) struct TempHome {
    pub(crate) path: PathBuf,
}

impl TempHome {
    pub(crate) fn new(name: &str) -> TempHome {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "dstack-e2e-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temp home");
        // The upstream CLI checks for a new version once a day unless this was touched today.
        for channel in ["cli", "stgn-cli"] {
            let dir = path.join(".cache/.dstack").join(channel);
            std::fs::create_dir_all(&dir).expect("cache dir");
            std::fs::write(dir.join("last_check"), "").expect("last_check");
        }
        TempHome { path }
    }

    /// A directory under this HOME.
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path.join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}

impl std::ops::Deref for TempHome {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempHome {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for TempHome {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        kill_processes_under(&self.path);
        std::fs::remove_dir_all(&self.path).ok();
    }
}

/// Processes (other than this one) whose command line or environment names `path`: the
/// server, its job runners, and jobs (which inherit HOME or a working directory under it).
pub(crate) fn processes_under(path: &Path) -> Vec<u32> {
    let needle = path.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && process_alive(*pid))
        .filter(|pid| {
            ["cmdline", "environ"].iter().any(|f| {
                std::fs::read(format!("/proc/{pid}/{f}"))
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            })
        })
        .collect()
}

pub(crate) fn kill_processes_under(path: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let pids = processes_under(path);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process exists and is not a zombie.
pub(crate) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) text: String,
    /// The body as JSON, `Value::Null` when it is not JSON (see `is_json`).
    pub(crate) json: Value,
    pub(crate) is_json: bool,
}

impl Resp {
    fn from_blocking(resp: reqwest::blocking::Response) -> Resp {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
        Resp::from_parts(status, &bytes)
    }

    pub(crate) fn from_parts(status: u16, bytes: &[u8]) -> Resp {
        let parsed = serde_json::from_slice::<Value>(bytes);
        Resp {
            status,
            text: String::from_utf8_lossy(bytes).into_owned(),
            is_json: parsed.is_ok(),
            json: parsed.unwrap_or(Value::Null),
        }
    }

    /// The message of an error envelope, whichever of the original's shapes it has:
    /// `{"detail": [{"msg"}]}`, `{"detail": {"msg"}}`, `{"detail": "..."}` or `{"msg"}`.
    pub(crate) fn error_message(&self) -> String {
        let j = &self.json;
        [
            j.pointer("/detail/0/msg"),
            j.pointer("/detail/msg"),
            j.get("detail").filter(|d| d.is_string()),
            j.get("msg"),
        ]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .unwrap_or_default()
        .to_string()
    }

    /// The status and the error message (or the start of the body): for one-line reports.
    pub(crate) fn short(&self) -> String {
        let msg = self.error_message();
        if msg.is_empty() {
            let text: String = self.text.chars().take(150).collect();
            format!("HTTP {} {text}", self.status)
        } else {
            format!("HTTP {} {msg:?}", self.status)
        }
    }

    /// `detail[0].code` of a 400 envelope.
    pub(crate) fn error_code(&self) -> Option<&str> {
        self.json.pointer("/detail/0/code").and_then(Value::as_str)
    }
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: String = self.text.chars().take(600).collect();
        write!(f, "HTTP {} {text}", self.status)
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No body at all (`Content-Length: 0`, no content type), as the CLI sends some calls.
    Empty,
    Json(Value),
    /// Raw bytes with a content type.
    Raw(Vec<u8>, String),
}

/// `dstack server --host 127.0.0.1 --port 0` as a real process. Killed when dropped, also when
/// a test fails midway.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    /// The admin's token.
    pub(crate) token: String,
    pub(crate) http: reqwest::blocking::Client,
    /// The last lines the server printed (its log).
    output: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh server in its own temporary HOME; dropping it stops the server, then everything
/// started under the HOME, then removes the HOME.
#[derive(Debug)]
pub(crate) struct Dstack {
    // Field order is drop order: the server goes first.
    pub(crate) server: Server,
    pub(crate) home: TempHome,
}

impl std::ops::Deref for Dstack {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Dstack {
    pub(crate) fn start(name: &str) -> Dstack {
        Dstack::start_env(name, &[])
    }

    pub(crate) fn start_env(name: &str, env: &[(&str, &str)]) -> Dstack {
        let home = TempHome::new(name);
        let server = Server::start(&home.path, env);
        Dstack { server, home }
    }
}

pub(crate) fn http_client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .expect("HTTP client")
}

impl Server {
    /// Starts a server in `home` with extra environment and waits until it prints its URL.
    pub(crate) fn start(home: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_as(home, env, &dstack_bin(), None)
    }

    /// Starts the server `bin` in `home`, as the account `user` (uid, gid) when given.
    pub(crate) fn start_as(
        home: &Path,
        env: &[(&str, &str)],
        bin: &Path,
        user: Option<(u32, u32)>,
    ) -> Server {
        let mut cmd = Command::new(bin);
        if let Some((uid, gid)) = user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd.args(["server", "--host", "127.0.0.1", "--port", "0"])
            .env("HOME", home)
            .env_remove("DSTACK_DATABASE_URL")
            .env_remove("DSTACK_SERVER_DIR")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("dstack server starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let output = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let kept = output.clone();
        // Reads the banner, then keeps draining stdout so the server never blocks on it,
        // keeping the last lines for tests that wait for something in the log.
        std::thread::spawn(move || {
            let (mut token, mut sent) = (String::new(), false);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut kept) = kept.lock() {
                    if kept.len() >= 2000 {
                        kept.pop_front();
                    }
                    kept.push_back(line.clone());
                }
                if let Some(rest) = line.strip_prefix("The admin token is ") {
                    token = rest.trim_matches('"').to_string();
                }
                if let Some(rest) = line.strip_prefix("The server is running at ")
                    && !sent
                {
                    let _ = tx.send((token.clone(), rest.trim_end_matches('/').to_string()));
                    sent = true;
                }
            }
        });
        let Ok((token, url)) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dstack server did not print its URL within 60 s");
        };
        assert!(
            !token.is_empty() && url.starts_with("http://127.0.0.1:"),
            "{token} {url}"
        );
        Server {
            child,
            url,
            token,
            http: http_client(Duration::from_secs(60)),
            output,
        }
    }

    /// The last lines the server printed.
    pub(crate) fn output_tail(&self, n: usize) -> String {
        self.output.lock().map_or_else(
            |_| String::new(),
            |lines| {
                let skip = lines.len().saturating_sub(n);
                lines
                    .iter()
                    .skip(skip)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        )
    }

    /// Whether the server printed a line containing `text` (among its last 2,000 lines).
    pub(crate) fn printed(&self, text: &str) -> bool {
        self.output
            .lock()
            .is_ok_and(|lines| lines.iter().any(|l| l.contains(text)))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, KiB (`VmRSS` in `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    /// Any request; `auth` is the whole `Authorization` header value. Panics without an answer.
    pub(crate) fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Body) -> Resp {
        match self.try_call(method, path, auth, body) {
            Ok(r) => r,
            Err(e) => panic!("{method} {path}: no answer: {e}"),
        }
    }

    /// Any request; the transport error when there is no answer.
    pub(crate) fn try_call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Body,
    ) -> Result<Resp, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        req = match body {
            Body::Empty => req.header("Content-Length", "0"),
            Body::Json(v) => req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&v).map_err(|e| e.to_string())?),
            Body::Raw(bytes, content_type) => req.header("Content-Type", content_type).body(bytes),
        };
        req.send()
            .map(Resp::from_blocking)
            .map_err(|e| e.to_string())
    }

    /// `POST path` with a JSON body and `Authorization: Bearer <token>`.
    pub(crate) fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call(
            "POST",
            path,
            Some(&format!("Bearer {token}")),
            Body::Json(body.clone()),
        )
    }

    /// `POST path` as the admin.
    pub(crate) fn admin(&self, path: &str, body: &Value) -> Resp {
        self.post(path, &self.token, body)
    }

    /// Creates a user with global role `user`; returns the user's token.
    pub(crate) fn create_user(&self, name: &str) -> String {
        self.create_user_with_role(name, "user")
    }

    pub(crate) fn create_user_with_role(&self, name: &str, role: &str) -> String {
        let r = self.admin(
            "/api/users/create",
            &json!({"username": name, "global_role": role}),
        );
        assert_eq!(r.status, 200, "create user {name}: {r}");
        let r = self.admin("/api/users/get_user", &json!({"username": name}));
        assert_eq!(r.status, 200, "get user {name}: {r}");
        r.json["creds"]["token"]
            .as_str()
            .expect("the user's token")
            .to_string()
    }

    /// Creates a project as the user with `token` (who becomes its owner and admin).
    pub(crate) fn create_project(&self, token: &str, name: &str) {
        let r = self.post(
            "/api/projects/create",
            token,
            &json!({"project_name": name, "is_public": false}),
        );
        assert_eq!(r.status, 200, "create project {name}: {r}");
    }

    /// Adds (or re-roles) a member, as the admin.
    pub(crate) fn add_member(&self, project: &str, username: &str, role: &str) {
        let r = self.admin(
            &format!("/api/projects/{project}/add_members"),
            &json!({"members": [{"username": username, "project_role": role}]}),
        );
        assert_eq!(r.status, 200, "add {username} to {project}: {r}");
    }

    /// `runs/apply` of a configuration (no plan first), as the CLI sends it.
    pub(crate) fn apply(&self, project: &str, token: &str, configuration: &Value) -> Resp {
        self.apply_spec(project, token, &run_spec(configuration))
    }

    pub(crate) fn apply_spec(&self, project: &str, token: &str, run_spec: &Value) -> Resp {
        self.post(
            &format!("/api/project/{project}/runs/apply"),
            token,
            &json!({"plan": {"run_spec": run_spec, "current_resource": null}, "force": false}),
        )
    }

    /// `runs/apply` that must succeed; returns the run.
    pub(crate) fn submit(&self, project: &str, token: &str, configuration: &Value) -> Value {
        let r = self.apply(project, token, configuration);
        assert_eq!(r.status, 200, "apply {}: {r}", configuration["name"]);
        r.json
    }

    pub(crate) fn get_plan(&self, project: &str, token: &str, configuration: &Value) -> Resp {
        self.post(
            &format!("/api/project/{project}/runs/get_plan"),
            token,
            &json!({"run_spec": run_spec(configuration)}),
        )
    }

    pub(crate) fn get_run(&self, project: &str, token: &str, name: &str) -> Resp {
        self.post(
            &format!("/api/project/{project}/runs/get"),
            token,
            &json!({"run_name": name}),
        )
    }

    pub(crate) fn stop(&self, project: &str, token: &str, names: &[&str], abort: bool) -> Resp {
        self.post(
            &format!("/api/project/{project}/runs/stop"),
            token,
            &json!({"runs_names": names, "abort": abort}),
        )
    }

    /// Polls `runs/get` until `done(run)` holds; panics after `timeout`.
    pub(crate) fn wait_run(
        &self,
        project: &str,
        token: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let r = self.get_run(project, token, name);
            assert_eq!(r.status, 200, "runs/get {name}: {r}");
            if done(&r.json) {
                return r.json;
            }
            assert!(
                start.elapsed() < timeout,
                "run {name} not {what} after {timeout:?}: status {}: {}",
                r.json["status"],
                r
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the run is `done`, `failed` or `terminated`.
    pub(crate) fn wait_finished(&self, project: &str, token: &str, name: &str) -> Value {
        self.wait_run(
            project,
            token,
            name,
            Duration::from_secs(60),
            "finished",
            |r| finished(&r["status"]),
        )
    }

    pub(crate) fn wait_running(&self, project: &str, token: &str, name: &str) -> Value {
        self.wait_run(
            project,
            token,
            name,
            Duration::from_secs(60),
            "running",
            |r| {
                assert!(!finished(&r["status"]), "run {name} finished early: {r}");
                r["status"] == "running"
            },
        )
    }

    /// One page of `logs/poll`.
    pub(crate) fn poll_logs(
        &self,
        project: &str,
        token: &str,
        run_name: &str,
        submission: &str,
        next_token: Option<&str>,
        limit: u32,
    ) -> Resp {
        self.post(
            &format!("/api/project/{project}/logs/poll"),
            token,
            &json!({"run_name": run_name, "job_submission_id": submission, "start_time": null,
                    "end_time": null, "descending": false, "next_token": next_token,
                    "limit": limit, "diagnose": false}),
        )
    }

    /// The whole log of the run's latest submission of job 0, following `next_token`, with
    /// the number of pages read.
    pub(crate) fn logs_text(
        &self,
        project: &str,
        token: &str,
        run: &Value,
        limit: u32,
    ) -> (String, usize) {
        let name = run["run_spec"]["run_name"].as_str().expect("run name");
        let submission = latest_submission(run);
        let mut text = String::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            let r = self.poll_logs(project, token, name, &submission, next.as_deref(), limit);
            assert_eq!(r.status, 200, "logs/poll: {r}");
            let events = r.json["logs"].as_array().expect("logs");
            assert!(
                events.len() <= limit as usize,
                "a page holds {} events, more than the limit {limit}",
                events.len()
            );
            text.push_str(&decode_messages(events));
            pages += 1;
            assert!(pages < 100_000, "logs/poll never ends");
            match r.json["next_token"].as_str() {
                Some(t) => next = Some(t.to_string()),
                None => return (text, pages),
            }
        }
    }
}

/// The id of the newest submission of the run's job 0.
pub(crate) fn latest_submission(run: &Value) -> String {
    run["jobs"][0]["job_submissions"]
        .as_array()
        .and_then(|s| s.last())
        .and_then(|s| s["id"].as_str())
        .expect("a job submission")
        .to_string()
}

/// The base64 log messages of `logs/poll` events, decoded and joined.
pub(crate) fn decode_messages(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["message"].as_str()?)
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

pub(crate) fn finished(status: &Value) -> bool {
    matches!(status.as_str(), Some("done" | "failed" | "terminated"))
}

/// A run spec as the CLI sends it: the configuration, its name as the run name, no profile.
pub(crate) fn run_spec(configuration: &Value) -> Value {
    json!({"run_name": configuration["name"], "configuration": configuration, "profile": null})
}

/// Resources every host running these tests has.
pub(crate) fn small() -> Value {
    json!({"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."})
}

/// A task configuration that fits the local fleet.
pub(crate) fn task(name: &str, commands: &[&str]) -> Value {
    json!({"type": "task", "name": name, "commands": commands, "resources": small()})
}

/// Polls `f` every 100 ms until it holds or `timeout` passes; whether it held.
pub(crate) fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `multipart/form-data` body with one file field `file` named `filename`.
pub(crate) fn multipart_file(filename: &str, data: &[u8]) -> (Vec<u8>, String) {
    let boundary = format!("dstack-e2e-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// The venv with the upstream CLI (`DSTACK_UPSTREAM_VENV`), or `None` after saying loudly
/// that the test is skipped.
pub(crate) fn upstream_venv(test: &str) -> Option<PathBuf> {
    let Some(venv) = std::env::var_os("DSTACK_UPSTREAM_VENV").map(PathBuf::from) else {
        eprintln!("SKIPPED {test}: DSTACK_UPSTREAM_VENV is not set; the upstream CLI was not run");
        return None;
    };
    if !venv.join("bin/dstack").is_file() {
        eprintln!(
            "SKIPPED {test}: {} is missing",
            venv.join("bin/dstack").display()
        );
        return None;
    }
    Some(venv)
}

/// What a CLI run printed.
#[derive(Debug)]
pub(crate) struct CliOutput {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl CliOutput {
    pub(crate) fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the upstream CLI with `HOME=home` (whose `~/.dstack/config.yml` the server wrote) in
/// `cwd`; killed after `timeout` (then `code` is `None`).
pub(crate) fn upstream_cli(
    venv: &Path,
    home: &Path,
    cwd: &Path,
    args: &[&str],
    timeout: Duration,
) -> CliOutput {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let out_path = home.join(format!("cli-{n}.out"));
    let err_path = home.join(format!("cli-{n}.err"));
    let mut child = Command::new(venv.join("bin/dstack"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("DSTACK_PROJECT")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("COLUMNS", "200")
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("the upstream CLI starts");
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    CliOutput {
        code,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Host processes of a run: those whose environment has `DSTACK_RUN_ID=<run_id>` (jobs are
/// sandboxed, so they cannot leave pid files on the host; the test reads `/proc`).
pub(crate) fn processes_of_run(run_id: &str) -> Vec<u32> {
    let needle = format!("DSTACK_RUN_ID={run_id}");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) && process_alive(pid) {
            out.push(pid);
        }
    }
    out
}
