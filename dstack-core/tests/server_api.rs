//! The server's HTTP API on a real listener (127.0.0.1, any port) with real state: SQLite in a
//! temporary directory, and PostgreSQL when `DSTACK_TEST_POSTGRES_URL` names a server.
#![cfg(feature = "server")]

use std::path::PathBuf;

use dstack_core::server::{Server, ServerOptions};
use serde_json::{Value, json};

struct TestServer {
    url: String,
    token: String,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start(dir: PathBuf, database_url: Option<String>) -> TestServer {
        let options = ServerOptions {
            host: "127.0.0.1".into(),
            port: 0,
            admin_token: None,
            server_dir: dir.clone(),
            database_url,
            cli_config: Some(dir.join("cli-config.yml")),
            runner_exe: None,
            upload_limit: dstack_core::server::DEFAULT_UPLOAD_LIMIT,
            jobs: dstack_core::server::JobIsolation::default(),
            proxy: dstack_core::server::ProxyOptions::default(),
        };
        let server = Server::bind(options).await.expect("server starts");
        let url = server.url_for("127.0.0.1");
        let token = server.admin_token().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = rx.await;
                })
                .await
                .expect("serves");
        });
        TestServer {
            url,
            token,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut req = client
            .post(format!("{}{path}", self.url))
            .header("X-API-VERSION", "0.22.5");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dstack-test-{name}-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn users_and_projects(server: &TestServer) {
    let admin = server.token.as_str();
    // Auth failures use the original's envelopes.
    assert_eq!(
        server.post("/api/users/get_my_user", None, None).await,
        (401, json!({"detail": "Not authenticated"}))
    );
    assert_eq!(
        server
            .post("/api/users/get_my_user", Some("wrong"), None)
            .await,
        (
            403,
            json!({"detail": {"msg": "Invalid token", "code": null}})
        )
    );
    let (status, me) = server
        .post("/api/users/get_my_user", Some(admin), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["creds"]["token"], admin);
    // Project main exists with the admin as its admin.
    let (status, main) = server
        .post("/api/projects/main/get", Some(admin), None)
        .await;
    assert_eq!(status, 200, "{main}");
    assert_eq!(main["members"][0]["project_role"], "admin");
    assert_eq!(main["backends"], json!([]));
    // A second user sees nothing until added to a project.
    let (status, bob) = server
        .post(
            "/api/users/create",
            Some(admin),
            Some(json!({"username": "bob", "global_role": "user"})),
        )
        .await;
    assert_eq!(status, 200, "{bob}");
    let (_, bob_creds) = server
        .post(
            "/api/users/get_user",
            Some(admin),
            Some(json!({"username": "bob"})),
        )
        .await;
    let bob_token = bob_creds["creds"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let (status, list) = server
        .post("/api/projects/list", Some(&bob_token), None)
        .await;
    assert_eq!((status, list), (200, json!([])));
    assert_eq!(
        server
            .post("/api/projects/main/get", Some(&bob_token), None)
            .await,
        (
            403,
            json!({"detail": {"msg": "Access denied", "code": null}})
        )
    );
    assert_eq!(
        server
            .post("/api/projects/nope/get", Some(admin), None)
            .await,
        (404, json!({"detail": {"msg": "Not found", "code": null}}))
    );
    // Bob creates his own project; the admin adds him to main.
    let (status, team) = server
        .post(
            "/api/projects/create",
            Some(&bob_token),
            Some(json!({"project_name": "team"})),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    let (status, dup) = server
        .post(
            "/api/projects/create",
            Some(admin),
            Some(json!({"project_name": "team"})),
        )
        .await;
    assert_eq!(
        (status, dup["detail"][0]["code"].clone()),
        (400, json!("resource_exists"))
    );
    let (status, _) = server
        .post(
            "/api/projects/main/add_members",
            Some(admin),
            Some(json!({"members": [{"username": "bob", "project_role": "user"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = server
        .post("/api/projects/list", Some(&bob_token), None)
        .await;
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["project_name"].as_str())
        .collect();
    assert_eq!(names, vec!["main", "team"]);
    // A plain member cannot change membership.
    let (status, _) = server
        .post(
            "/api/projects/main/remove_members",
            Some(&bob_token),
            Some(json!({"usernames": ["admin"]})),
        )
        .await;
    assert_eq!(status, 403);
    // Unknown routes and versions behave like the original.
    assert_eq!(
        server.post("/api/nonexistent", Some(admin), None).await.0,
        405
    );
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/api/server/get_info", server.url))
        .header("X-API-VERSION", "0.23.0")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 400);
    let (status, info) = server.post("/api/server/get_info", None, None).await;
    assert_eq!(
        (status, info["server_version"].clone()),
        (200, json!("0.22.5"))
    );
}

#[tokio::test]
async fn sqlite_users_projects_and_restart() {
    let dir = temp_dir("sqlite");
    let server = TestServer::start(dir.clone(), None).await;
    users_and_projects(&server).await;
    let token = server.token.clone();
    server.stop().await;
    // State survives a restart: same admin token, bob's project is still there.
    let again = TestServer::start(dir.clone(), None).await;
    assert_eq!(again.token, token);
    let (status, team) = again
        .post("/api/projects/team/get", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{team}");
    let cli =
        std::fs::read_to_string(again.dir.join("cli-config.yml")).expect("CLI config written");
    assert!(cli.contains("name: main") && cli.contains(&token), "{cli}");
    again.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn postgres_users_projects_and_restart() {
    let Ok(base) = std::env::var("DSTACK_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED: DSTACK_TEST_POSTGRES_URL is not set; the PostgreSQL variant did not run"
        );
        return;
    };
    // A fresh database per run keeps runs independent.
    let db_name = format!("dstack_test_{}", uuid_like());
    let admin_conn = sea_orm_connect(&base).await;
    exec(&admin_conn, &format!("CREATE DATABASE {db_name}")).await;
    let url = match base.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{db_name}"),
        None => panic!("DSTACK_TEST_POSTGRES_URL must end with /<database>"),
    };
    let dir = temp_dir("postgres");
    let server = TestServer::start(dir.clone(), Some(url.clone())).await;
    users_and_projects(&server).await;
    let token = server.token.clone();
    server.stop().await;
    let again = TestServer::start(dir.clone(), Some(url)).await;
    assert_eq!(again.token, token);
    assert_eq!(
        again
            .post("/api/projects/team/get", Some(&token), None)
            .await
            .0,
        200
    );
    again.stop().await;
    exec(
        &admin_conn,
        &format!("DROP DATABASE {db_name} WITH (FORCE)"),
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

async fn sea_orm_connect(url: &str) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(url)
        .await
        .expect("PostgreSQL reachable")
}

async fn exec(conn: &sea_orm::DatabaseConnection, sql: &str) {
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared(sql).await.expect(sql);
}
