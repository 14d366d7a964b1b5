//! From a run spec in a request to what the server plans and submits: the validated
//! configuration, the spec with the server's defaults (what is stored and shown), the typed job
//! specs and their commands, and the backend's verdict. One path for `get_plan` and `apply`.

use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::backends::BackendOffer;
use crate::config::{Configuration, Issue, ProfileParams};
use crate::jobspec::{self, FileArchiveMapping, JobCommand, JobSpec, RunInput};

/// The most jobs one run may have (replicas × nodes), whatever the backend.
pub(crate) const MAX_JOBS_PER_RUN: i64 = 1000;

/// A run spec, read and checked.
pub(crate) struct Submission {
    /// The spec as sent.
    pub(crate) original: Value,
    /// The spec with the server's defaults: what is stored and what plans show.
    pub(crate) effective: Value,
    pub(crate) config: Configuration,
    pub(crate) profile: Option<ProfileParams>,
    pub(crate) run_name: Option<String>,
    pub(crate) repo_code_hash: Option<String>,
    pub(crate) file_archives: Vec<FileArchiveMapping>,
}

fn issues_message(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn unprocessable(what: &str) -> ApiError {
    ApiError::Unprocessable(format!("invalid request body: {what}"))
}

/// Reads a run spec; everything the client controls is checked here.
pub(crate) fn parse(run_spec: &Value) -> Result<Submission, ApiError> {
    let obj = run_spec
        .as_object()
        .ok_or_else(|| unprocessable("`run_spec` must be an object"))?;
    let run_name = match obj.get("run_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(unprocessable("`run_spec.run_name` must be a string")),
    };
    let config_json = obj
        .get("configuration")
        .filter(|c| c.is_object())
        .ok_or_else(|| ApiError::client("run_spec.configuration is required"))?;
    let mut config = Configuration::from_json(config_json).map_err(|issues| {
        ApiError::client(format!(
            "Invalid configuration: {}",
            issues_message(&issues)
        ))
    })?;
    if config.run_common().is_none() {
        return Err(ApiError::client(format!(
            "`{}` is not a run configuration",
            config.type_name()
        )));
    }
    let profile = match obj.get("profile").filter(|p| !p.is_null()) {
        Some(p) => {
            let node = crate::config::Node::from_json(p);
            let mut cx = crate::config::decode::Cx::new();
            match ProfileParams::decode_strict(&mut cx, &node) {
                Ok(p) if !cx.has_issues() => Some(p),
                _ => {
                    return Err(ApiError::client(format!(
                        "Invalid profile: {}",
                        issues_message(&cx.into_issues())
                    )));
                }
            }
        }
        None => None,
    };
    crate::spec::validate_run_spec(run_name.as_deref(), &mut config, profile.as_ref())
        .map_err(|e| ApiError::client(e.0))?;
    let repo_code_hash = match obj.get("repo_code_hash") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) if valid_hash(h) => Some(h.clone()),
        Some(_) => return Err(ApiError::client("Invalid repo_code_hash")),
    };
    let file_archives: Vec<FileArchiveMapping> = match obj.get("file_archives") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| unprocessable("`run_spec.file_archives` must be a list of {id, path}"))?,
    };
    for a in &file_archives {
        if uuid::Uuid::parse_str(&a.id).is_err() {
            return Err(ApiError::client(format!(
                "Invalid file archive id {:?}",
                a.id
            )));
        }
    }
    let mut effective = run_spec.clone();
    if let Some(e) = effective.as_object_mut() {
        e.insert("configuration".into(), config.to_json());
    }
    Ok(Submission {
        original: run_spec.clone(),
        effective,
        config,
        profile,
        run_name,
        repo_code_hash,
        file_archives,
    })
}

/// A content hash as uploads name them: hex SHA-256.
pub(crate) fn valid_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Submission {
    /// Sets the run's name (stored in the effective spec too).
    pub(crate) fn name(&mut self, name: &str) {
        self.run_name = Some(name.to_string());
        if let Some(e) = self.effective.as_object_mut() {
            e.insert("run_name".into(), json!(name));
        }
    }

    pub(crate) fn input<'a>(&'a self, run_name: &'a str, default_python: &'a str) -> RunInput<'a> {
        RunInput {
            run_name,
            config: &self.config,
            profile: self.profile.as_ref(),
            repo_data: self.original.get("repo_data").cloned(),
            repo_code_hash: self.repo_code_hash.clone(),
            file_archives: self.file_archives.clone(),
            default_python,
        }
    }

    /// The number of jobs the run starts with.
    pub(crate) fn job_count(&self) -> i64 {
        match &self.config {
            Configuration::Task(t) => match &t.groups {
                Some(groups) => groups.iter().map(|g| g.nodes.max(0)).sum(),
                None => t.nodes.unwrap_or(1).max(0),
            },
            Configuration::Service(s) => s
                .effective_groups()
                .iter()
                .map(|g| g.replicas.min.unwrap_or(0).max(0))
                .sum(),
            _ => 1,
        }
    }
}

/// The first job's spec and command, and the offers for it; an error when the backend cannot
/// honour the run at all.
pub(crate) struct Plan {
    pub(crate) job: JobSpec,
    pub(crate) offers: Vec<BackendOffer>,
}

/// Plans the run: its first job, whether the backend refuses it, the offers. Where jobs
/// cannot be sandboxed, only global admins may run them unless the server allows everyone.
pub(crate) fn plan(
    state: &AppState,
    sub: &Submission,
    run_name: &str,
    user: &crate::state::UserRow,
) -> Result<Plan, ApiError> {
    if let Some(problem) = state.backend.isolation_problem()
        && !user.is_admin()
        && !state.allow_unsandboxed
    {
        return Err(ApiError::client(format!(
            "This server cannot sandbox jobs ({problem}), so only global admins may run them: an unsandboxed job can read the server's files. Install bubblewrap on the server's host, or start the server with --allow-unsandboxed-jobs to let every member run jobs."
        )));
    }
    let input = sub.input(run_name, &state.default_python);
    let job = jobspec::plan_job_spec(&input).map_err(|e| ApiError::client(e.0))?;
    let command = jobspec::command_of(&input, &job).map_err(|e| ApiError::client(e.0))?;
    if let Some(why) = state.backend.refuses(&job, &command) {
        return Err(ApiError::client(why));
    }
    let offers = state.backend.offers(&job).unwrap_or_default();
    Ok(Plan { job, offers })
}

/// The jobs of a run being submitted, after the checks that bound what one request may create.
pub(crate) fn jobs_to_submit(
    state: &AppState,
    sub: &Submission,
    run_name: &str,
) -> Result<Vec<(JobSpec, JobCommand)>, ApiError> {
    let count = sub.job_count();
    let input = sub.input(run_name, &state.default_python);
    if let Configuration::Task(_) = &sub.config
        && count > i64::from(state.backend.max_nodes())
    {
        let first = jobspec::plan_job_spec(&input).map_err(|e| ApiError::client(e.0))?;
        let why =
            state.backend.offers(&first).err().unwrap_or_else(|| {
                format!("The task needs {count} hosts, more than the fleet has")
            });
        return Err(ApiError::client(format!("No offers: {why}")));
    }
    if count > MAX_JOBS_PER_RUN {
        return Err(ApiError::client(format!(
            "A run may have at most {MAX_JOBS_PER_RUN} jobs (replicas × nodes); this one has {count}"
        )));
    }
    let specs = jobspec::job_specs(&input).map_err(|e| ApiError::client(e.0))?;
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let command = jobspec::command_of(&input, &spec).map_err(|e| ApiError::client(e.0))?;
        out.push((spec, command));
    }
    if let Some((first, _)) = out.first()
        && out.len() > 1
        && first.service_port.is_some()
        && let Err(why) = state.backend.can_place(out.len(), first)
    {
        return Err(ApiError::client(why));
    }
    Ok(out)
}
