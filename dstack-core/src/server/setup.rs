//! First-start set-up: the database, the admin user, projects from `config.yml`, and the CLI's
//! `~/.dstack/config.yml`.

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::config::yaml;
use crate::state::{Db, StateError};

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
    std::fs::create_dir_all(dir.join("data")).map_err(|e| io("create", dir, e))?;
    let url = options
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(dir));
    let db = Db::connect(&url).await?;
    let now = Utc::now();
    let (admin, first_start) = match db.user_by_name("admin").await? {
        Some(admin) => match &options.admin_token {
            Some(token) if *token != admin.token => {
                (db.set_user_token(&admin, token).await?, false)
            }
            _ => (admin, false),
        },
        None => {
            let token = options
                .admin_token
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            (
                db.create_user("admin", &token, crate::auth::GlobalRole::Admin, None, now)
                    .await?,
                true,
            )
        }
    };
    for name in config_projects(dir)? {
        if db.project_by_name(&name).await?.is_none() {
            db.create_project(&name, &admin, false, now).await?;
        }
    }
    Ok(Prepared {
        db,
        admin_token: admin.token,
        first_start,
    })
}

/// Reads (or writes, when absent) `<dir>/config.yml` and returns the project names it lists.
fn config_projects(dir: &Path) -> Result<Vec<String>, ServerError> {
    let path = dir.join("config.yml");
    if !path.exists() {
        let default = serde_json::json!({"projects": [{"name": "main", "backends": []}]});
        std::fs::write(&path, yaml::to_yaml(&default)).map_err(|e| io("write", &path, e))?;
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io("read", &path, e))?;
    let bad = |message: String| ServerError::Config {
        path: path.display().to_string(),
        message,
    };
    let doc = yaml::load(&text)
        .map_err(|e| bad(format!("{}:{}: {}", e.mark.line, e.mark.column, e.message)))?;
    let mut names = Vec::new();
    if doc.is_null() {
        return Ok(names);
    }
    let projects = doc
        .get("projects")
        .and_then(|p| p.as_seq())
        .unwrap_or_default();
    if doc.get("encryption").is_some() {
        tracing::warn!(
            "{}: `encryption` keys are not supported yet; secrets are stored unencrypted",
            path.display()
        );
    }
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
    Ok(names)
}

/// Adds (or updates) a project entry in the CLI's configuration, making it the default when
/// none is.
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
    std::fs::write(path, yaml::to_yaml(&doc)).map_err(|e| io("write", path, e))
}
