//! `encryption.keys` in the server's `config.yml` with `dstack server` as a real process:
//! secrets still reach jobs while neither they nor the tokens are in the database file, and an
//! invalid key stops the server with the file and the key named.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::util::{Dstack, Server, TempHome, small};

const KEY: &str = "E5yzN6V3XvBq/f085ISWFCdgnOGED0kuFaAkASlmmO4=";

fn write_config(home: &Path, keys: &str) {
    let dir = home.join(".dstack/server");
    std::fs::create_dir_all(&dir).expect("server dir");
    std::fs::write(
        dir.join("config.yml"),
        format!("projects:\n- name: main\n  backends: []\nencryption:\n  keys:\n{keys}"),
    )
    .expect("config.yml");
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// As `server_e2e::secrets_reach_the_job_environment`, with an `aes` key configured; then the
/// database's bytes are searched for the value and the tokens.
#[test]
fn secrets_reach_the_job_environment_with_an_encryption_key() {
    let home = TempHome::new("encrypted-secrets");
    write_config(
        &home,
        &format!("  - type: aes\n    name: key1\n    secret: {KEY}\n"),
    );
    let server = Server::start(&home.path, &[]);
    let d = Dstack { server, home };
    let value = format!("v4lue-{}", std::process::id());
    let r = d.admin(
        "/api/project/main/secrets/create_or_update",
        &json!({"name": "API_TOKEN", "value": value}),
    );
    assert_eq!(r.status, 200, "{r}");
    let r = d.admin(
        "/api/project/main/secrets/get",
        &json!({"name": "API_TOKEN"}),
    );
    assert_eq!(r.json["value"], json!(value), "{r}");
    let bob = d.create_user("bob");
    let r = d.post("/api/users/get_my_user", &bob, &json!({}));
    assert_eq!(r.json["creds"]["token"], json!(bob), "{r}");
    d.submit(
        "main",
        &d.token,
        &json!({
            "type": "task",
            "name": "uses-secret",
            "env": {"TOKEN": "Bearer ${{ secrets.API_TOKEN }}"},
            "commands": ["echo token=$TOKEN"],
            "resources": small(),
        }),
    );
    let run = d.wait_finished("main", &d.token, "uses-secret");
    assert_eq!(run["status"], "done", "{run}");
    let (text, _) = d.logs_text("main", &d.token, &run, 1000);
    assert!(
        text.contains(&format!("token=Bearer {value}\n")),
        "{text:?}"
    );

    let data = d.home.join(".dstack/server/data");
    let mut bytes = Vec::new();
    for file in ["sqlite.db", "sqlite.db-wal", "sqlite.db-journal"] {
        bytes.extend(std::fs::read(data.join(file)).unwrap_or_default());
    }
    assert!(!bytes.is_empty());
    assert!(!holds(&bytes, &value), "the secret is in the database file");
    assert!(!holds(&bytes, &d.token), "the admin token is in it");
    assert!(!holds(&bytes, &bob), "bob's token is in it");
    assert!(
        holds(&bytes, "enc:aes:key1:"),
        "values are stored encrypted"
    );
}

/// A key that is not 32 bytes: `dstack server` exits with the file and the key named.
#[test]
fn an_invalid_key_stops_the_server_with_the_reason() {
    let home = TempHome::new("bad-key");
    write_config(
        &home,
        "  - type: aes\n    name: key1\n    secret: c2hvcnQ=\n",
    );
    let out = Command::new(crate::util::dstack_bin())
        .args(["server", "--host", "127.0.0.1", "--port", "0"])
        .env("HOME", &home.path)
        .env_remove("DSTACK_DATABASE_URL")
        .env_remove("DSTACK_SERVER_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("dstack server runs");
    assert!(
        !out.status.success(),
        "the server started with an invalid key"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let config = home.join(".dstack/server/config.yml");
    assert!(
        stderr.contains(&format!(
            "{}: encryption.keys[0] (key `key1`).secret: AES key must be 32 bytes. Got 5 bytes",
            config.display()
        )),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("is running"));
}
