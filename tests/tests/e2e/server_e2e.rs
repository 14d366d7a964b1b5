//! `dstack server` as a real process on 127.0.0.1 running real jobs on the local fleet:
//! a task runs to `done` with its output in the logs; a service's process answers on its port,
//! survives `kill -9` of the server, and `stop` leaves nothing behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

struct ServerProcess {
    child: Child,
    url: String,
    token: String,
}

/// A server process is killed when its handle goes away, also when a test fails midway.
impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    fn start(home: &Path, token: Option<&str>) -> ServerProcess {
        ServerProcess::start_with(home, token, None)
    }

    fn start_with(home: &Path, token: Option<&str>, database_url: Option<&str>) -> ServerProcess {
        ServerProcess::start_env(home, token, database_url, &[])
    }

    fn start_env(
        home: &Path,
        token: Option<&str>,
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut cmd = Command::new(crate::util::dstack_bin());
        cmd.envs(env.iter().copied());
        cmd.args(["server", "--host", "127.0.0.1", "--port", "0"])
            .env("HOME", home)
            .env_remove("DSTACK_DATABASE_URL")
            .env_remove("DSTACK_SERVER_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        if let Some(url) = database_url {
            cmd.env("DSTACK_DATABASE_URL", url);
        }
        let mut child = cmd.spawn().expect("server starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut token = String::new();
        let mut url = String::new();
        for line in lines.by_ref() {
            let line = line.expect("line");
            if let Some(rest) = line.strip_prefix("The admin token is ") {
                token = rest.trim_matches('"').to_string();
            }
            if let Some(rest) = line.strip_prefix("The server is running at ") {
                url = rest.trim_end_matches('/').to_string();
                break;
            }
        }
        assert!(
            !token.is_empty() && url.starts_with("http://127.0.0.1:"),
            "{token} {url}"
        );
        ServerProcess { child, url, token }
    }

    fn kill9(self) {
        // SIGKILL, as `kill -9`; `Drop` does exactly that.
        drop(self);
    }

    fn terminate(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("{}{path}", self.url))
                .header("Authorization", format!("Bearer {}", self.token))
                .json(&body)
                .send()
                .await
                .expect("answered");
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    fn apply(&self, configuration: Value) -> Value {
        let run_spec = json!({"run_name": configuration["name"], "configuration": configuration, "profile": null});
        let (status, plan) = self.post(
            "/api/project/main/runs/get_plan",
            json!({"run_spec": run_spec}),
        );
        assert_eq!(status, 200, "{plan}");
        assert_eq!(
            plan["job_plans"][0]["offers"][0]["backend"], "remote",
            "{plan}"
        );
        let (status, run) = self.post(
            "/api/project/main/runs/apply",
            json!({"plan": {"run_spec": plan["run_spec"], "current_resource": null}, "force": false}),
        );
        assert_eq!(status, 200, "{run}");
        run
    }

    fn run(&self, name: &str) -> Value {
        let (status, run) = self.post("/api/project/main/runs/get", json!({"run_name": name}));
        assert_eq!(status, 200, "{run}");
        run
    }

    fn wait_status(&self, name: &str, wanted: &[&str], timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let run = self.run(name);
            if wanted.iter().any(|w| run["status"] == *w) {
                return run;
            }
            assert!(
                start.elapsed() < timeout,
                "run {name} stuck in {}: {run}",
                run["status"]
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self, run: &Value) -> String {
        let submission = &run["jobs"][0]["job_submissions"][0]["id"];
        let (status, logs) = self.post(
            "/api/project/main/logs/poll",
            json!({"run_name": run["run_spec"]["run_name"], "job_submission_id": submission, "limit": 1000}),
        );
        assert_eq!(status, 200, "{logs}");
        logs["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .filter_map(|e| {
                base64::engine::general_purpose::STANDARD
                    .decode(e["message"].as_str()?)
                    .ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }
}

/// A temporary HOME; everything started under it is stopped and it is removed when dropped.
fn temp_home(name: &str) -> crate::util::TempHome {
    crate::util::TempHome::new(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300))
        .is_ok()
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn task_runs_to_done_with_its_output_in_the_logs() {
    let home = temp_home("task");
    task_scenario(&home, None);
}

/// The same on PostgreSQL (a fresh database on the server `DSTACK_TEST_POSTGRES_URL` names).
#[test]
fn task_runs_to_done_on_postgres() {
    let Ok(base) = std::env::var("DSTACK_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED: DSTACK_TEST_POSTGRES_URL is not set; the PostgreSQL variant did not run"
        );
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let db = format!("dstack_e2e_{nanos}");
    let created = Command::new("psql")
        .args([base.as_str(), "-q", "-c", &format!("CREATE DATABASE {db}")])
        .status()
        .expect("psql runs");
    assert!(created.success(), "cannot create {db}");
    let url = match base.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{db}"),
        None => panic!("DSTACK_TEST_POSTGRES_URL must end with /<database>"),
    };
    let home = temp_home("task-pg");
    task_scenario(&home, Some(&url));
    let _ = Command::new("psql")
        .args([
            base.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE {db} WITH (FORCE)"),
        ])
        .status();
}

fn task_scenario(home: &Path, database_url: Option<&str>) {
    let server = ServerProcess::start_with(home, None, database_url);
    let configuration = json!({
        "type": "task",
        "name": "hello",
        "commands": ["echo hello from $DSTACK_RUN_NAME", "echo oops >&2", "exit 0"],
        "resources": {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."},
    });
    server.apply(configuration);
    let run = server.wait_status(
        "hello",
        &["done", "failed", "terminated"],
        Duration::from_secs(30),
    );
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["latest_job_submission"]["status_message"], "exited (0)");
    let logs = server.logs(&run);
    assert!(
        logs.contains("hello from hello\n") && logs.contains("oops\n"),
        "{logs:?}"
    );

    // A failing task fails with its exit code.
    server.apply(
        json!({"type": "task", "name": "fails", "commands": ["exit 3"],
        "resources": {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."}}),
    );
    let run = server.wait_status("fails", &["failed", "done"], Duration::from_secs(30));
    assert_eq!(run["latest_job_submission"]["exit_status"], 3, "{run}");
    assert_eq!(run["latest_job_submission"]["status_message"], "exited (3)");

    // What the host cannot honour is refused at plan time, with the reason.
    let run_spec = json!({"run_name": "img", "configuration": {"type": "task", "image": "ubuntu", "commands": ["true"]}});
    let (status, err) = server.post(
        "/api/project/main/runs/get_plan",
        json!({"run_spec": run_spec}),
    );
    assert_eq!(status, 400);
    assert!(
        err["detail"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("custom `image`"),
        "{err}"
    );
    server.terminate();
    std::fs::remove_dir_all(home).ok();
}

#[test]
fn service_survives_a_server_crash_and_stops_cleanly() {
    let home = temp_home("service");
    let server = ServerProcess::start(&home, None);
    let port = free_port();
    let configuration = json!({
        "type": "service",
        "name": "web",
        "port": port,
        "commands": [format!("exec python3 -m http.server {port} --bind 127.0.0.1")],
        "resources": {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."},
        "stop_duration": "5s",
    });
    let run = server.apply(configuration);
    assert_eq!(run["service"]["url"], "/proxy/services/main/web/");
    let run = server.wait_status("web", &["running"], Duration::from_secs(30));
    // Where the job's port is reached on the host (its own port where jobs share the host's
    // network, another where each has a namespace).
    let port = run["jobs"][0]["job_submissions"][0]["job_runtime_data"]["ports"][port.to_string()]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no host port for {port}: {run}"));
    assert!(
        wait_until(Duration::from_secs(20), || answers(port)),
        "the service never answered"
    );

    // kill -9 the server; the job keeps running and a new server finds it again.
    let token = server.token.clone();
    server.kill9();
    assert!(answers(port), "the job died with the server");
    let server = ServerProcess::start(&home, Some(&token));
    let run = server.wait_status("web", &["running"], Duration::from_secs(10));
    assert_eq!(
        run["jobs"][0]["job_submissions"].as_array().map(Vec::len),
        Some(1),
        "{run}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.run("web")["status"], "running");
    assert!(answers(port));

    // stop: SIGTERM to the process group, then the run is terminated and the port is free.
    let (status, _) = server.post(
        "/api/project/main/runs/stop",
        json!({"runs_names": ["web"], "abort": false}),
    );
    assert_eq!(status, 200);
    let run = server.wait_status(
        "web",
        &["terminated", "failed", "done"],
        Duration::from_secs(30),
    );
    assert_eq!(run["status"], "terminated", "{run}");
    assert_eq!(run["latest_job_submission"]["status_message"], "stopped");
    assert!(
        wait_until(Duration::from_secs(10), || !answers(port)),
        "the process outlived stop"
    );
    let (status, _) = server.post(
        "/api/project/main/runs/delete",
        json!({"runs_names": ["web"]}),
    );
    assert_eq!(status, 200);
    let (status, err) = server.post("/api/project/main/runs/get", json!({"run_name": "web"}));
    assert_eq!(
        (status, err["detail"][0]["code"].clone()),
        (400, json!("resource_not_exists"))
    );
    server.terminate();
    std::fs::remove_dir_all(&home).ok();
}

/// `files:` are packed and uploaded by `dstack apply`, unpacked before the job starts, and
/// uploads over `DSTACK_SERVER_CODE_UPLOAD_LIMIT` are refused with the reason.
#[test]
fn files_are_uploaded_and_the_limit_holds() {
    let home = temp_home("files");
    let project = home.join("project");
    std::fs::create_dir_all(project.join("src")).expect("dirs");
    std::fs::write(project.join("src/app.txt"), "from the src dir\n").expect("write");
    std::fs::write(project.join("single.txt"), "one file\n").expect("write");
    std::fs::write(
        project.join("task.dstack.yml"),
        "type: task\nname: files\nfiles:\n  - src\n  - single.txt:copied/one.txt\ncommands:\n  - cat src/app.txt copied/one.txt\n\
         resources: {cpu: 1.., memory: 0.1GB.., disk: 0.1GB..}\n",
    )
    .expect("write");
    let server = ServerProcess::start_env(
        &home,
        None,
        None,
        &[("DSTACK_SERVER_CODE_UPLOAD_LIMIT", "32768")],
    );
    let cli = |args: &[&str]| {
        Command::new(crate::util::dstack_bin())
            .args(args)
            .env("HOME", &home)
            .env("NO_COLOR", "1")
            .current_dir(&project)
            .output()
            .expect("dstack runs")
    };
    let out = cli(&["apply", "-f", "task.dstack.yml", "-y"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("from the src dir\none file\n"), "{stdout}");
    // Over the limit: refused before anything is submitted.
    std::fs::write(project.join("src/big.bin"), vec![b'x'; 64 * 1024]).expect("write");
    let out = cli(&["apply", "-f", "task.dstack.yml", "-y", "-n", "too-big"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exceeds the limit"), "{stderr}");
    let (status, _) = server.post("/api/project/main/runs/get", json!({"run_name": "too-big"}));
    assert_eq!(status, 400);
    server.terminate();
    std::fs::remove_dir_all(&home).ok();
}

/// Secrets: managed through the API (managers only) and substituted into `env` at job start.
#[test]
fn secrets_reach_the_job_environment() {
    let home = temp_home("secrets");
    let server = ServerProcess::start(&home, None);
    let (status, secret) = server.post(
        "/api/project/main/secrets/create_or_update",
        json!({"name": "api-token", "value": "s3cr3t"}),
    );
    assert_eq!(status, 200, "{secret}");
    let (_, list) = server.post("/api/project/main/secrets/list", Value::Null);
    assert_eq!(list[0]["name"], "api-token");
    assert_eq!(list[0]["value"], Value::Null, "list never shows values");
    let (_, got) = server.post(
        "/api/project/main/secrets/get",
        json!({"name": "api-token"}),
    );
    assert_eq!(got["value"], "s3cr3t");
    // `${{ secrets.X }}` names must be identifiers, so the secret is referred to as API_TOKEN.
    server.post(
        "/api/project/main/secrets/create_or_update",
        json!({"name": "API_TOKEN", "value": "v4lue"}),
    );
    server.apply(json!({
        "type": "task",
        "name": "uses-secret",
        "env": {"TOKEN": "Bearer ${{ secrets.API_TOKEN }}"},
        "commands": ["echo token=$TOKEN"],
        "resources": {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."},
    }));
    let run = server.wait_status("uses-secret", &["done", "failed"], Duration::from_secs(30));
    assert_eq!(run["status"], "done", "{run}");
    assert!(server.logs(&run).contains("token=Bearer v4lue\n"));
    // A missing secret fails the job with the reason.
    server.apply(json!({
        "type": "task",
        "name": "missing-secret",
        "env": {"TOKEN": "${{ secrets.NOPE }}"},
        "commands": ["true"],
        "resources": {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."},
    }));
    let run = server.wait_status(
        "missing-secret",
        &["failed", "done"],
        Duration::from_secs(30),
    );
    let message = run["latest_job_submission"]["termination_reason_message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains("Secrets interpolation error"), "{run}");
    let (status, _) = server.post(
        "/api/project/main/secrets/delete",
        json!({"secrets_names": ["api-token"]}),
    );
    assert_eq!(status, 200);
    let (status, _) = server.post(
        "/api/project/main/secrets/get",
        json!({"name": "api-token"}),
    );
    assert_eq!(status, 400);
    server.terminate();
    std::fs::remove_dir_all(&home).ok();
}
