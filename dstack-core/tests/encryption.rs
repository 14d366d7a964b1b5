//! Secrets and tokens at rest: `encryption.keys` in `config.yml` on a real server (127.0.0.1,
//! any port) with real state (SQLite in a temporary directory; PostgreSQL too when
//! `DSTACK_TEST_POSTGRES_URL` names a server). The database file's bytes are searched for the
//! values; restarts encrypt a plain database, rotate keys and decrypt again with `identity`.
#![cfg(feature = "server")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dstack_core::server::{Server, ServerError, ServerOptions};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

const KEY1: &str = "E5yzN6V3XvBq/f085ISWFCdgnOGED0kuFaAkASlmmO4=";
const KEY2: &str = "cR2r1JmkPyL6edBQeHKz6ZBjCfS2oWk87Gc2G3wHVoA=";

fn options(dir: &Path, database_url: Option<String>) -> ServerOptions {
    ServerOptions {
        host: "127.0.0.1".into(),
        port: 0,
        admin_token: None,
        server_dir: dir.to_path_buf(),
        database_url,
        cli_config: Some(dir.join("cli-config.yml")),
        runner_exe: None,
        upload_limit: dstack_core::server::DEFAULT_UPLOAD_LIMIT,
        jobs: dstack_core::server::JobIsolation::default(),
        proxy: dstack_core::server::ProxyOptions::default(),
    }
}

struct Running {
    url: String,
    token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(dir: &Path, database_url: Option<String>) -> Running {
        let server = Server::bind(options(dir, database_url))
            .await
            .expect("server starts");
        let url = server.url_for("127.0.0.1");
        let token = server.admin_token().to_string();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = rx.await;
                })
                .await
                .expect("serves");
        });
        Running {
            url,
            token,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
            .json(&body)
            .send()
            .await
            .expect("answered");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn secret(&self, name: &str) -> Value {
        let (status, got) = self
            .post(
                "/api/project/main/secrets/get",
                &self.token,
                json!({ "name": name }),
            )
            .await;
        assert_eq!(status, 200, "{got}");
        got["value"].clone()
    }

    /// The token `users/get_my_user` shows to its owner.
    async fn my_token(&self, token: &str) -> Value {
        let (status, me) = self
            .post("/api/users/get_my_user", token, Value::Null)
            .await;
        assert_eq!(status, 200, "{me}");
        me["creds"]["token"].clone()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dstack-encryption-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write_config(dir: &Path, keys: &str) {
    std::fs::write(
        dir.join("config.yml"),
        format!("projects:\n- name: main\n  backends: []\nencryption:\n  keys:\n{keys}"),
    )
    .expect("config.yml");
}

fn aes(name: &str, secret: &str) -> String {
    format!("  - type: aes\n    name: {name}\n    secret: {secret}\n")
}

/// Every byte SQLite keeps for the database: the file, its WAL and journal.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for file in ["sqlite.db", "sqlite.db-wal", "sqlite.db-journal"] {
        bytes.extend(std::fs::read(dir.join("data").join(file)).unwrap_or_default());
    }
    assert!(!bytes.is_empty(), "no database in {}", dir.display());
    bytes
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

/// The stored secret values and tokens, as the database holds them.
async fn stored(url: &str) -> (Vec<String>, Vec<String>) {
    let db = dstack_core::state::Db::connect(url)
        .await
        .expect("database");
    let secrets = dstack_core::state::secret::Entity::find()
        .all(db.conn())
        .await
        .expect("secrets")
        .into_iter()
        .map(|s| s.value)
        .collect();
    let tokens = dstack_core::state::user::Entity::find()
        .all(db.conn())
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.token)
        .collect();
    (secrets, tokens)
}

fn all_start_with(values: &[String], prefix: &str) -> bool {
    !values.is_empty() && values.iter().all(|v| v.starts_with(prefix))
}

#[tokio::test]
async fn with_a_key_secrets_and_tokens_are_not_in_the_database_file() {
    let dir = temp_dir("key");
    write_config(&dir, &aes("key1", KEY1));
    let server = Running::start(&dir, None).await;
    let value = format!("value-{}", uuid::Uuid::new_v4());
    let (status, put) = server
        .post(
            "/api/project/main/secrets/create_or_update",
            &server.token,
            json!({"name": "API", "value": value}),
        )
        .await;
    assert_eq!((status, put["value"].as_str()), (200, Some(value.as_str())));
    assert_eq!(server.secret("API").await, json!(value));
    let (status, _) = server
        .post(
            "/api/users/create",
            &server.token,
            json!({"username": "bob", "global_role": "user"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, bob) = server
        .post(
            "/api/users/get_user",
            &server.token,
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(status, 200, "{bob}");
    let bob_token = bob["creds"]["token"].as_str().expect("a token").to_string();
    assert_eq!(server.my_token(&bob_token).await, json!(bob_token));
    assert_eq!(server.my_token(&server.token).await, json!(server.token));
    let admin_token = server.token.clone();
    server.stop().await;

    let bytes = database_bytes(&dir);
    assert!(!holds(&bytes, &value), "the secret is in the database file");
    assert!(!holds(&bytes, &admin_token), "the admin token is in it");
    assert!(!holds(&bytes, &bob_token), "bob's token is in it");
    let url = dstack_core::server::sqlite_url(&dir);
    let (secrets, tokens) = stored(&url).await;
    assert!(all_start_with(&secrets, "enc:aes:key1:"), "{secrets:?}");
    assert!(all_start_with(&tokens, "enc:aes:key1:"), "{tokens:?}");
    // Readable by the server's user only.
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("data")), 0o700);
    assert_eq!(mode(&dir.join("config.yml")), 0o600);
    assert_eq!(mode(&dir.join("data/sqlite.db")), 0o600);
    assert_eq!(mode(&dir.join("cli-config.yml")), 0o600);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn restarts_encrypt_a_plain_database_rotate_keys_and_decrypt_with_identity() {
    let dir = temp_dir("restarts");
    let server = Running::start(&dir, None).await;
    let token = server.token.clone();
    let value = format!("plain-{}", uuid::Uuid::new_v4());
    server
        .post(
            "/api/project/main/secrets/create_or_update",
            &token,
            json!({"name": "API", "value": value}),
        )
        .await;
    server.stop().await;
    // Without a key the values are there to read (what the test would otherwise miss).
    assert!(holds(&database_bytes(&dir), &value));
    let url = dstack_core::server::sqlite_url(&dir);
    assert!(all_start_with(
        &stored(&url).await.0,
        "enc:identity:noname:"
    ));

    // A key configured: the next start encrypts what is stored.
    write_config(&dir, &aes("key1", KEY1));
    let server = Running::start(&dir, None).await;
    assert_eq!(server.token, token, "the same admin token");
    assert_eq!(server.my_token(&token).await, json!(token));
    assert_eq!(server.secret("API").await, json!(value));
    server.stop().await;
    let bytes = database_bytes(&dir);
    assert!(!holds(&bytes, &value), "the secret is still in the file");
    assert!(!holds(&bytes, &token), "the token is still in the file");
    let (secrets, tokens) = stored(&url).await;
    assert!(all_start_with(&secrets, "enc:aes:key1:"), "{secrets:?}");
    assert!(all_start_with(&tokens, "enc:aes:key1:"), "{tokens:?}");

    // Rotation: a new first key, the old one kept; old values decrypt, all move to key2.
    write_config(&dir, &(aes("key2", KEY2) + &aes("key1", KEY1)));
    let server = Running::start(&dir, None).await;
    assert_eq!(server.secret("API").await, json!(value));
    server.stop().await;
    let (secrets, tokens) = stored(&url).await;
    assert!(all_start_with(&secrets, "enc:aes:key2:"), "{secrets:?}");
    assert!(all_start_with(&tokens, "enc:aes:key2:"), "{tokens:?}");

    // The old key may go now; a start without the key in use is refused, naming it.
    write_config(&dir, &aes("key2", KEY2));
    let server = Running::start(&dir, None).await;
    assert_eq!(server.secret("API").await, json!(value));
    server.stop().await;
    write_config(&dir, &aes("key1", KEY1));
    let message = match Server::bind(options(&dir, None)).await {
        Err(e @ ServerError::Config { .. }) => e.to_string(),
        Err(e) => panic!("expected a config.yml error, got {e}"),
        Ok(_) => panic!("a server without the key in use started"),
    };
    assert!(
        message.contains("config.yml")
            && message.contains("encrypted with the aes key `key2`")
            && !message.contains(&value),
        "{message}"
    );

    // Identity first: the next start decrypts everything.
    write_config(&dir, &format!("  - type: identity\n{}", aes("key2", KEY2)));
    let server = Running::start(&dir, None).await;
    assert_eq!(server.secret("API").await, json!(value));
    server.stop().await;
    let (secrets, tokens) = stored(&url).await;
    assert!(
        all_start_with(&secrets, "enc:identity:noname:"),
        "{secrets:?}"
    );
    assert!(
        all_start_with(&tokens, "enc:identity:noname:"),
        "{tokens:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_invalid_key_stops_the_start_naming_the_file_and_the_key() {
    let dir = temp_dir("bad-key");
    write_config(
        &dir,
        &(aes("key1", KEY1) + "  - type: aes\n    name: key2\n    secret: c2hvcnQ=\n"),
    );
    let message = match Server::bind(options(&dir, None)).await {
        Err(e @ ServerError::Config { .. }) => e.to_string(),
        Err(e) => panic!("expected a config.yml error, got {e}"),
        Ok(_) => panic!("a server with an invalid key started"),
    };
    let expected = format!(
        "{}: encryption.keys[1] (key `key2`).secret: AES key must be 32 bytes. Got 5 bytes",
        dir.join("config.yml").display()
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(
        !message.contains("c2hvcnQ="),
        "the secret is not shown: {message}"
    );
    assert!(
        !dir.join("data/sqlite.db").exists(),
        "refused before opening the database"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn existing_files_are_tightened_at_start() {
    let dir = temp_dir("modes");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    write_config(&dir, &aes("key1", KEY1));
    std::fs::set_permissions(
        dir.join("config.yml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let server = Running::start(&dir, None).await;
    server.stop().await;
    std::fs::set_permissions(
        dir.join("data/sqlite.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let server = Running::start(&dir, None).await;
    server.stop().await;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("config.yml")), 0o600);
    assert_eq!(mode(&dir.join("data/sqlite.db")), 0o600);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn postgres_stores_secrets_and_tokens_encrypted() {
    let Ok(base) = std::env::var("DSTACK_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED: DSTACK_TEST_POSTGRES_URL is not set; the PostgreSQL variant did not run"
        );
        return;
    };
    let db_name = format!("dstack_enc_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(&base)
        .await
        .expect("PostgreSQL reachable");
    let exec = |sql: String| {
        let admin = admin.clone();
        async move {
            sea_orm::ConnectionTrait::execute_unprepared(&admin, &sql)
                .await
                .expect("executed");
        }
    };
    exec(format!("CREATE DATABASE {db_name}")).await;
    let url = match base.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{db_name}"),
        None => panic!("DSTACK_TEST_POSTGRES_URL must end with /<database>"),
    };
    let dir = temp_dir("postgres");
    let server = Running::start(&dir, Some(url.clone())).await;
    let token = server.token.clone();
    server
        .post(
            "/api/project/main/secrets/create_or_update",
            &token,
            json!({"name": "API", "value": "pg-value"}),
        )
        .await;
    server.stop().await;
    write_config(&dir, &aes("key1", KEY1));
    let server = Running::start(&dir, Some(url.clone())).await;
    assert_eq!(server.my_token(&token).await, json!(token));
    assert_eq!(server.secret("API").await, json!("pg-value"));
    server.stop().await;
    let (secrets, tokens) = stored(&url).await;
    assert!(all_start_with(&secrets, "enc:aes:key1:"), "{secrets:?}");
    assert!(all_start_with(&tokens, "enc:aes:key1:"), "{tokens:?}");
    exec(format!("DROP DATABASE {db_name} WITH (FORCE)")).await;
    std::fs::remove_dir_all(&dir).ok();
}
