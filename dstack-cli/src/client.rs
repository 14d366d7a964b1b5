//! Talking to a dstack server: the CLI configuration (`~/.dstack/config.yml`), project
//! selection, and JSON calls with the server's error envelopes turned into one-line messages.

use std::path::PathBuf;
use std::time::Duration;

use dstack_core::config::yaml;
use serde_json::{Value, json};

use crate::CliError;

/// The API version we claim (the server checks it).
const API_VERSION: &str = "0.22.5";

/// A project entry of the CLI configuration.
#[derive(Debug, Clone)]
pub(crate) struct ProjectEntry {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) default: bool,
}

/// `~/.dstack/config.yml`
pub(crate) fn config_path() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".dstack").join("config.yml")
}

/// Reads the CLI configuration (an empty one when absent).
pub(crate) fn read_config() -> Result<Value, CliError> {
    let path = config_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => yaml::load(&text).map(|n| n.to_json()).map_err(|e| {
            CliError::Invalid(format!("{}:{}: {}", path.display(), e.mark.line, e.message))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(json!({"projects": [], "repos": []}))
        }
        Err(e) => Err(CliError::Failed(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Writes the CLI configuration.
pub(crate) fn write_config(config: &Value) -> Result<(), CliError> {
    let path = config_path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(&path, yaml::to_yaml(config))
        .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))
}

/// The configured projects.
pub(crate) fn projects(config: &Value) -> Vec<ProjectEntry> {
    config["projects"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| {
                    Some(ProjectEntry {
                        name: p["name"].as_str()?.to_string(),
                        url: p["url"].as_str()?.trim_end_matches('/').to_string(),
                        token: p["token"].as_str()?.to_string(),
                        default: p["default"].as_bool().unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A client for one project.
pub(crate) struct Client {
    pub(crate) project: ProjectEntry,
    http: reqwest::blocking::Client,
}

impl Client {
    /// The client for `--project NAME`, `DSTACK_PROJECT`, or the default project.
    pub(crate) fn for_project(name: Option<&str>) -> Result<Client, CliError> {
        let config = read_config()?;
        let all = projects(&config);
        let wanted = name
            .map(str::to_string)
            .or_else(|| std::env::var("DSTACK_PROJECT").ok());
        let project = match &wanted {
            Some(n) => all.iter().find(|p| &p.name == n).cloned().ok_or_else(|| {
                CliError::Invalid(format!("project `{n}` is not configured; add it with `dstack project add`"))
            })?,
            None => all
                .iter()
                .find(|p| p.default)
                .or_else(|| all.first())
                .cloned()
                .ok_or_else(|| {
                    CliError::Invalid("no project is configured; start `dstack server` or run `dstack project add`".into())
                })?,
        };
        Client::new(project)
    }

    /// A client for an explicit project entry.
    pub(crate) fn new(project: ProjectEntry) -> Result<Client, CliError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .map_err(|e| CliError::Failed(format!("cannot create an HTTP client: {e}")))?;
        Ok(Client { project, http })
    }

    /// Sends `POST <server><path>` with the credentials; returns the status and the JSON body.
    fn send(
        &self,
        path: &str,
        body: impl FnOnce(reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder,
    ) -> Result<(u16, Value), CliError> {
        let request = self
            .http
            .post(format!("{}{path}", self.project.url))
            .header("Authorization", format!("Bearer {}", self.project.token))
            .header("X-API-VERSION", API_VERSION);
        let resp = body(request).send().map_err(|e| {
            CliError::Failed(format!(
                "cannot reach the server at {}: {}",
                self.project.url,
                root_cause(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().unwrap_or(Value::Null)))
    }

    /// Turns a non-200 answer into one line.
    fn check(&self, path: &str, (status, value): (u16, Value)) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.project.url);
        match status {
            200 => Ok(value),
            400 => Err(CliError::Failed(server_message(&value).unwrap_or_else(
                || format!("the server refused the request ({status})"),
            ))),
            401 | 403 => Err(CliError::Failed(format!(
                "access to {url} is denied; check the project's token (`dstack project add`)"
            ))),
            404 => Err(CliError::Failed(format!(
                "{url} was not found (404); is this a dstack server?"
            ))),
            _ => Err(CliError::Failed(format!(
                "unexpected status {status} from {url}"
            ))),
        }
    }

    /// `POST /api/...` with a JSON body; errors become one line.
    pub(crate) fn post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        let reply = self.send(path, |r| r.json(&body))?;
        self.check(path, reply)
    }

    /// Uploads a local repo's code (`POST repos/upload_code`).
    pub(crate) fn upload_code(&self, hash: &str, data: Vec<u8>) -> Result<(), CliError> {
        let path = format!(
            "/api/project/{}/repos/upload_code?repo_id=none",
            self.project.name
        );
        self.upload(&path, hash, data).map(|_| ())
    }

    /// Uploads a file archive (`POST /api/files/upload_archive`); returns its id.
    pub(crate) fn upload_archive(&self, hash: &str, data: Vec<u8>) -> Result<String, CliError> {
        let value = self.upload("/api/files/upload_archive", hash, data)?;
        value["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Failed("the server did not return the archive's id".into()))
    }

    /// A multipart upload of `data` named by its hash, as the original's API takes files.
    fn upload(&self, path: &str, hash: &str, data: Vec<u8>) -> Result<Value, CliError> {
        let part = reqwest::blocking::multipart::Part::bytes(data).file_name(hash.to_string());
        let form = reqwest::blocking::multipart::Form::new().part("file", part);
        let reply = self.send(path, |r| r.multipart(form))?;
        self.check(path, reply)
    }

    /// `POST /api/project/<project>/<path>`.
    pub(crate) fn project_post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.post(&format!("/api/project/{}/{path}", self.project.name), body)
    }

    /// The run, or `None` when the server answers `resource_not_exists`.
    pub(crate) fn get_run(&self, name: &str) -> Result<Option<Value>, CliError> {
        let path = format!("/api/project/{}/runs/get", self.project.name);
        let (status, value) = self.send(&path, |r| r.json(&json!({"run_name": name})))?;
        if status == 400 && value["detail"][0]["code"] == "resource_not_exists" {
            return Ok(None);
        }
        self.check(&path, (status, value)).map(Some)
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

/// The message of an error envelope `{"detail": [{"msg": ...}]}`.
fn server_message(value: &Value) -> Option<String> {
    let items = value["detail"].as_array()?;
    let msgs: Vec<&str> = items.iter().filter_map(|i| i["msg"].as_str()).collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}
