//! First-start set-up: the database, the admin user, projects and encryption keys from
//! `config.yml`, and the CLI's `~/.dstack/config.yml`.
//!
//! The server's directory is readable by the server's user only (0700), and so are the files
//! that hold credentials (0600: `config.yml`, the SQLite database, the CLI's configuration);
//! they are created so and tightened at start when they exist.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::config::yaml;
use crate::state::{Db, Keys, StateError, token_hash};

/// How to run the server (flags and environment, resolved by the caller).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 = any free port).
    pub port: u16,
    /// The admin token to use (created or replaced); a new one is generated when unset.
    pub admin_token: Option<String>,
    /// Where state, logs and `config.yml` live (`~/.dstack/server`).
    pub server_dir: PathBuf,
    /// Database URL; SQLite in the server directory when unset.
    pub database_url: Option<String>,
    /// The CLI configuration to register project `main` in (`~/.dstack/config.yml`).
    pub cli_config: Option<PathBuf>,
    /// The executable that runs jobs (`dstack job-runner DIR`); without it, jobs fail to start.
    pub runner_exe: Option<PathBuf>,
    /// The largest accepted file archive in bytes, 0 for no limit (2 MiB by default upstream,
    /// `DSTACK_SERVER_CODE_UPLOAD_LIMIT`).
    pub upload_limit: u64,
    /// Proxy timeouts and limits.
    pub proxy: super::ProxyOptions,
    /// Jobs on the local fleet: the sandbox, and who may run jobs without one.
    pub jobs: JobIsolation,
}

/// Whether jobs are sandboxed, and who may run them where they cannot be.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobIsolation {
    /// Do not sandbox jobs even where bubblewrap works (`--no-sandbox`).
    pub no_sandbox: bool,
    /// Let every member run unsandboxed jobs (`--allow-unsandboxed-jobs`); by default only
    /// global admins may, since such a job can read the server's files.
    pub allow_unsandboxed: bool,
}

/// The default upload limit: 2 MiB.
pub const DEFAULT_UPLOAD_LIMIT: u64 = 2 * 1024 * 1024;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file or socket operation failed.
    #[error("{0}")]
    Io(String),
    /// The database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// `config.yml` is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

pub(super) struct Prepared {
    pub(super) db: Db,
    pub(super) admin_token: String,
    pub(super) first_start: bool,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> ServerError {
    ServerError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// The default SQLite URL for a server directory.
pub fn sqlite_url(server_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        server_dir.join("data").join("sqlite.db").display()
    )
}

pub(super) async fn prepare(options: &ServerOptions) -> Result<Prepared, ServerError> {
    let dir = &options.server_dir;
    private_dir(dir)?;
    private_dir(&dir.join("data"))?;
    let config = read_config(dir)?;
    let url = options
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(dir));
    if let Some(path) = sqlite_file(&url) {
        private_sqlite(&path)?;
    }
    let db = Db::open(&url, config.keys).await?;
    // Before anything reads a token: values stored plain or under another key are brought
    // under the first key.
    let rewritten = db.reencrypt().await.map_err(|e| match e {
        StateError::Undecryptable { .. } => ServerError::Config {
            path: config.path.display().to_string(),
            message: format!(
                "{e}; keep the key that encrypted it in `encryption.keys` (after one start with \
                 both keys, every value is under the first one)"
            ),
        },
        other => other.into(),
    })?;
    if rewritten.tokens + rewritten.secrets > 0 {
        tracing::info!(
            tokens = rewritten.tokens,
            secrets = rewritten.secrets,
            "stored tokens and secrets are now under the {}",
            db.keys().describe()
        );
    }
    let now = Utc::now();
    let (admin, admin_token, first_start) = match db.user_by_name("admin").await? {
        Some(admin) => match &options.admin_token {
            Some(token) if token_hash(token) != admin.token_hash => (
                db.set_user_token(&admin, token).await?,
                token.clone(),
                false,
            ),
            Some(token) => (admin, token.clone(), false),
            None => {
                let token = db.decrypt(&admin.stored_token)?;
                (admin, token, false)
            }
        },
        None => {
            let token = options
                .admin_token
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            (
                db.create_user("admin", &token, crate::auth::GlobalRole::Admin, None, now)
                    .await?,
                token,
                true,
            )
        }
    };
    for name in config.projects {
        if db.project_by_name(&name).await?.is_none() {
            db.create_project(&name, &admin, false, now).await?;
        }
    }
    Ok(Prepared {
        db,
        admin_token,
        first_start,
    })
}

/// Creates a directory (and its missing parents) readable by the server's user only, or
/// tightens it to that.
fn private_dir(path: &Path) -> Result<(), ServerError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io("create", path, e))?;
    tighten(path, 0o700);
    Ok(())
}

/// Restricts an existing file or directory to `mode`; a file that cannot be changed (a
/// read-only mount of `config.yml`, another owner) is left as it is, with a warning.
fn tighten(path: &Path, mode: u32) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o777 == mode {
        return;
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(
            "cannot restrict {} to mode {mode:o}: {e}; it may be readable by other users",
            path.display()
        );
    }
}

/// Writes a file readable by the server's user only (created with mode 0600, tightened when
/// it existed).
fn write_private(path: &Path, text: &str) -> Result<(), ServerError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io("write", path, e))?;
    tighten(path, 0o600);
    file.write_all(text.as_bytes())
        .map_err(|e| io("write", path, e))
}

/// The file of a `sqlite:` URL, if it names one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

/// Creates the SQLite database file with mode 0600 before SQLite does (SQLite gives its
/// journal and WAL files the database file's mode), and tightens existing ones.
fn private_sqlite(path: &Path) -> Result<(), ServerError> {
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| io("create", path, e))?;
    }
    let name = path.as_os_str().to_owned();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = name.clone();
        file.push(suffix);
        tighten(Path::new(&file), 0o600);
    }
    Ok(())
}

/// What the server reads from `config.yml`.
struct ServerConfig {
    path: PathBuf,
    /// The projects it lists.
    projects: Vec<String>,
    /// `encryption.keys` (`identity` when there is no `encryption`).
    keys: Keys,
}

/// Reads (or writes, when absent) `<dir>/config.yml`: the project names it lists and the
/// encryption keys.
fn read_config(dir: &Path) -> Result<ServerConfig, ServerError> {
    let path = dir.join("config.yml");
    if !path.exists() {
        let default = serde_json::json!({"projects": [{"name": "main", "backends": []}]});
        write_private(&path, &yaml::to_yaml(&default))?;
    }
    tighten(&path, 0o600);
    let text = std::fs::read_to_string(&path).map_err(|e| io("read", &path, e))?;
    let bad = |message: String| ServerError::Config {
        path: path.display().to_string(),
        message,
    };
    let doc = yaml::load(&text)
        .map_err(|e| bad(format!("{}:{}: {}", e.mark.line, e.mark.column, e.message)))?;
    let mut names = Vec::new();
    if doc.is_null() {
        return Ok(ServerConfig {
            path,
            projects: names,
            keys: Keys::identity(),
        });
    }
    let keys = match doc.get("encryption") {
        Some(section) => Keys::from_config(&section.to_json()).map_err(|e| bad(e.to_string()))?,
        None => Keys::identity(),
    };
    let projects = doc
        .get("projects")
        .and_then(|p| p.as_seq())
        .unwrap_or_default();
    for (i, project) in projects.iter().enumerate() {
        let backends = project
            .get("backends")
            .and_then(|b| b.as_seq())
            .unwrap_or_default();
        for b in backends {
            let kind = b.get("type").and_then(|t| t.as_str()).unwrap_or("?");
            tracing::warn!(
                "{}: projects[{i}]: the `{kind}` backend is not supported yet and is not used; jobs run on the local fleet",
                path.display()
            );
        }
        match project.get("name").and_then(|n| n.as_str()) {
            Some(name) if crate::config::run::is_valid_resource_name(name) || name == "main" => {
                names.push(name.to_string());
            }
            _ => return Err(bad(format!("projects[{i}].name: expected a project name"))),
        }
    }
    Ok(ServerConfig {
        path,
        projects: names,
        keys,
    })
}

/// Adds (or updates) a project entry in the CLI's configuration, making it the default when
/// none is. The file holds tokens: it is written readable by its owner only.
pub fn update_cli_config(
    path: &Path,
    project: &str,
    url: &str,
    token: &str,
) -> Result<(), ServerError> {
    let mut doc = match std::fs::read_to_string(path) {
        Ok(text) => yaml::load(&text)
            .map(|n| n.to_json())
            .map_err(|e| ServerError::Config {
                path: path.display().to_string(),
                message: e.message,
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
        Err(e) => return Err(io("read", path, e)),
    };
    if !doc.is_object() {
        doc = serde_json::json!({});
    }
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| ServerError::Io("unreachable".into()))?;
    let projects = obj
        .entry("projects")
        .or_insert_with(|| serde_json::json!([]));
    if !projects.is_array() {
        *projects = serde_json::json!([]);
    }
    let list = projects
        .as_array_mut()
        .ok_or_else(|| ServerError::Io("unreachable".into()))?;
    let has_default = list.iter().any(|p| p["default"] == serde_json::json!(true));
    match list
        .iter_mut()
        .find(|p| p["name"] == project && p["url"] == url)
    {
        Some(entry) => entry["token"] = serde_json::json!(token),
        None => list.push(serde_json::json!({
            "default": !has_default,
            "name": project,
            "token": token,
            "url": url,
        })),
    }
    obj.entry("repos").or_insert_with(|| serde_json::json!([]));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
    }
    write_private(path, &yaml::to_yaml(&doc))
}
