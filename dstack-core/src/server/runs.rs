//! Runs: plans, submission, listing, stop and delete, logs; and the read-only lists the CLI
//! asks for around them (fleets, gateways, volumes, secrets).

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::Utc;
use serde_json::{Value, json};

use super::routes::{body, project_access, required_body};
use super::{ApiError, AppState};
use crate::api::runs::{self as wire, InstanceOffer, JobPlan, RunPlan};
use crate::config::{Configuration, Issue};
use crate::offers::{self, Requirements};
use crate::runs::{job_status_message, run_finished, run_status_message};
use crate::spec;
use crate::state::{job, project, run};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Where a job submission's files live.
pub(crate) fn job_dir(
    state: &AppState,
    project: &str,
    run_name: &str,
    submission_id: &str,
) -> PathBuf {
    state
        .dir
        .join("projects")
        .join(project)
        .join("runs")
        .join(run_name)
        .join(submission_id)
}

/// Where a job submission's log goes.
pub(crate) fn log_file(
    state: &AppState,
    project: &str,
    run_name: &str,
    submission_id: &str,
) -> PathBuf {
    state
        .dir
        .join("projects")
        .join(project)
        .join("logs")
        .join(run_name)
        .join(format!("{submission_id}.jsonl"))
}

fn issues_message(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A run spec from a request: the configuration decoded and validated, defaults applied.
pub(crate) struct ParsedSpec {
    pub(crate) original: Value,
    pub(crate) config: Configuration,
    pub(crate) effective: Value,
}

pub(crate) fn parse_run_spec(run_spec: &Value) -> Result<ParsedSpec, ApiError> {
    let config_json = run_spec
        .get("configuration")
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
    let run_name = run_spec.get("run_name").and_then(Value::as_str);
    let profile = match run_spec.get("profile").filter(|p| !p.is_null()) {
        Some(p) => {
            let node = crate::config::Node::from_json(p);
            let mut cx = crate::config::decode::Cx::new();
            let parsed = crate::config::ProfileParams::decode_strict(&mut cx, &node);
            match parsed {
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
    spec::validate_run_spec(run_name, &mut config, profile.as_ref())
        .map_err(|e| ApiError::client(e.0))?;
    let mut effective = run_spec.clone();
    effective["configuration"] = config.to_json();
    Ok(ParsedSpec {
        original: run_spec.clone(),
        config,
        effective,
    })
}

/// Remote Git repos (cloned by the job) are not supported on the local fleet.
fn check_repo_data(run_spec: &Value) -> Result<(), ApiError> {
    if run_spec
        .pointer("/repo_data/repo_type")
        .and_then(Value::as_str)
        == Some("remote")
    {
        return Err(ApiError::client(
            "The local fleet does not clone remote Git repos yet. Mount the directory with `files` instead, or use `repos` with `dstack` from this project, which uploads local directories.",
        ));
    }
    Ok(())
}

/// Properties the local fleet cannot honour, as one clear message.
pub(crate) fn local_fleet_limits(config: &Configuration) -> Option<String> {
    let c = config.run_common()?;
    let mut problems = Vec::new();
    if let Some(image) = &c.image {
        problems.push(format!("a custom `image` ({image})"));
    }
    if c.docker == Some(true) {
        problems.push("`docker: true`".into());
    }
    if c.privileged {
        problems.push("`privileged: true`".into());
    }
    if c.repos.iter().any(|r| r.url.is_some()) {
        problems.push("a remote `repos` URL (this host does not clone repositories)".into());
    }
    if !c.volumes.is_empty() {
        problems.push("`volumes`".into());
    }
    if let Some(py) = c.python {
        let exe = format!("python{}", py.as_str());
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(&exe).is_file()))
            .unwrap_or(false);
        if !found {
            problems.push(format!(
                "`python: \"{}\"` (no `{exe}` on this host)",
                py.as_str()
            ));
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

fn parts(
    config: &Configuration,
) -> Option<(&crate::config::RunCommon, &crate::config::ProfileParams)> {
    match config {
        Configuration::Task(t) => Some((&t.common, &t.profile)),
        Configuration::Service(s) => Some((&s.common, &s.profile)),
        Configuration::DevEnvironment(d) => Some((&d.common, &d.profile)),
        _ => None,
    }
}

fn requirements(config: &Configuration) -> Option<Requirements> {
    use crate::config::profile::SpotPolicy;
    let (common, profile) = parts(config)?;
    Some(Requirements {
        resources: common.resources.clone(),
        spot: match profile.spot_policy {
            Some(SpotPolicy::Spot) => Some(true),
            Some(SpotPolicy::Auto) => None,
            _ => Some(false),
        },
        max_price: profile.max_price,
    })
}

/// The number of jobs a run starts with: replicas × nodes.
fn job_slots(config: &Configuration) -> Vec<(i64, i64)> {
    match config {
        Configuration::Service(s) => {
            let replicas: i64 = s
                .effective_groups()
                .iter()
                .map(|g| g.replicas.min.unwrap_or(0))
                .sum();
            (0..replicas).map(|r| (r, 0)).collect()
        }
        Configuration::Task(t) => {
            let nodes = match &t.groups {
                Some(groups) => groups.iter().map(|g| g.nodes).sum(),
                None => t.nodes.unwrap_or(1),
            };
            (0..nodes).map(|n| (0, n)).collect()
        }
        _ => vec![(0, 0)],
    }
}

/// The job spec of one job, as the API shows it.
pub(crate) fn job_spec(
    config: &Configuration,
    run_name: &str,
    replica: i64,
    job_num: i64,
    jobs_per_replica: i64,
) -> Option<Value> {
    let (c, profile) = parts(config)?;
    let c = c.clone();
    let (commands, service_port) = match config {
        Configuration::Task(t) => (t.commands.clone(), None),
        Configuration::Service(s) => (
            s.effective_groups()
                .first()
                .map(|g| g.commands.clone())
                .unwrap_or_default(),
            Some(s.port.container_port),
        ),
        Configuration::DevEnvironment(d) => (d.init.clone(), None),
        _ => return None,
    };
    let shell = spec::resolve_shell(c.shell.as_deref(), c.image.is_some());
    let argv: Vec<String> = match &c.entrypoint {
        Some(e) => {
            let mut argv = spec::shlex_split(e).unwrap_or_default();
            argv.extend(commands);
            argv
        }
        None if matches!(config, Configuration::DevEnvironment(_)) => {
            let mut all = commands;
            all.push("sleep infinity".into());
            vec![shell, "-c".into(), spec::join_shell_commands(&all)]
        }
        None => vec![shell, "-c".into(), spec::join_shell_commands(&commands)],
    };
    let env: serde_json::Map<String, Value> = c
        .env
        .0
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default())))
        .collect();
    let req = requirements(config)?;
    let stop_duration = match profile.stop_duration {
        Some(crate::config::values::OffableDuration::Seconds(s)) => Some(s),
        Some(crate::config::values::OffableDuration::Off) => None,
        None => Some(300),
    };
    let max_duration = match profile.max_duration {
        Some(crate::config::values::OffableDuration::Seconds(s)) => Some(s),
        _ => None,
    };
    Some(json!({
        "replica_num": replica,
        "job_num": job_num,
        "job_name": format!("{run_name}-{replica}-{job_num}"),
        "jobs_per_replica": jobs_per_replica,
        "replica_group": "0",
        "app_specs": [],
        "user": null,
        "commands": argv,
        "env": env,
        "home_dir": c.home_dir,
        "image_name": c.image.clone().unwrap_or_else(|| "host".into()),
        "privileged": c.privileged,
        "single_branch": c.single_branch,
        "max_duration": max_duration,
        "stop_duration": stop_duration,
        "utilization_policy": profile.utilization_policy,
        "registry_auth": null,
        "requirements": {
            "resources": req.resources,
            "max_price": req.max_price,
            "spot": req.spot,
            "reservation": profile.reservation,
            "multinode": jobs_per_replica > 1,
            "backend_options": null,
        },
        "retry": retry_spec(profile),
        "volumes": [],
        "ssh_key": null,
        "working_dir": c.working_dir,
        "repo_data": {"repo_type": "virtual"},
        "repo_code_hash": null,
        "repo_dir": "/workflow",
        "repo_exists_action": null,
        "file_archives": [],
        "service_port": service_port,
        "probes": [],
        "node_group_index": 0,
        "node_group_name": "0",
        "node_group_job_index": job_num,
    }))
}

fn retry_spec(profile: &crate::config::ProfileParams) -> Value {
    use crate::config::profile::Retry;
    match &profile.retry {
        None | Some(Retry::Enabled(false)) => Value::Null,
        Some(Retry::Enabled(true)) => {
            json!({"on_events": ["no-capacity", "interruption", "error"], "duration": 3600})
        }
        Some(Retry::Spec {
            on_events,
            duration,
        }) => json!({
            "on_events": on_events.as_ref().map_or_else(
                || vec!["no-capacity", "interruption", "error"],
                |e| e.iter().map(|e| e.as_str()).collect()),
            "duration": duration.unwrap_or(3600),
        }),
    }
}

fn service_spec(
    config: &Configuration,
    project: &str,
    run_name: &str,
) -> Option<wire::ServiceSpec> {
    let Configuration::Service(s) = config else {
        return None;
    };
    let url = format!("/proxy/services/{project}/{run_name}/");
    let model = s.model.as_ref().map(|m| {
        let base_url = match m {
            crate::config::service::ModelSpec::OpenAi { prefix, .. } => {
                format!("{}{prefix}", url.trim_end_matches('/'))
            }
            crate::config::service::ModelSpec::Tgi { .. } => format!("/proxy/models/{project}/"),
        };
        wire::ServiceModelSpec {
            name: m.name().to_string(),
            base_url,
            kind: "chat".into(),
        }
    });
    Some(wire::ServiceSpec {
        url,
        model,
        options: serde_json::Map::new(),
    })
}

fn submission_dto(j: &job::Model, state: &AppState) -> wire::JobSubmission {
    let runtime: Value = j
        .runtime
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    let provisioning = (j.status != "submitted" && !runtime.is_null()).then(|| {
        json!({
            "backend": "remote",
            "base_backend": null,
            "instance_type": state.host.instance_type(),
            "instance_id": "local",
            "hostname": "127.0.0.1",
            "internal_ip": "127.0.0.1",
            "public_ip_enabled": false,
            "instance_network": null,
            "region": "local",
            "availability_zone": null,
            "reservation": null,
            "price": 0.0,
            "username": std::env::var("USER").unwrap_or_else(|_| "root".into()),
            "ssh_port": null,
            "dockerized": false,
            "ssh_proxy": null,
            "backend_data": null,
            "gpu_driver": null,
        })
    });
    wire::JobSubmission {
        id: j.id.clone(),
        submission_num: j.submission_num,
        deployment_num: 0,
        submitted_at: j.submitted_at,
        last_processed_at: j.last_processed_at,
        finished_at: j.finished_at,
        inactivity_secs: None,
        status: j.status.clone(),
        status_message: job_status_message(
            &j.status,
            j.termination_reason.as_deref(),
            j.termination_reason_message.as_deref(),
            j.exit_status,
        ),
        termination_reason: j.termination_reason.clone(),
        termination_reason_message: j.termination_reason_message.clone(),
        exit_status: j.exit_status,
        job_provisioning_data: provisioning,
        job_runtime_data: None,
        error: None,
        probes: Vec::new(),
        image_pull_progress: None,
    }
}

/// Stored JSON passed through without parsing (`null` if it is not JSON).
fn raw_json(text: &str) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(text.to_string())
        .or_else(|_| serde_json::value::RawValue::from_string("null".into()))
        .unwrap_or_default()
}

/// The API view of a run.
pub(crate) async fn run_dto(
    state: &AppState,
    r: &run::Model,
    project_name: &str,
    submissions_limit: Option<usize>,
) -> Result<wire::Run, ApiError> {
    let rows = state.db.jobs_of_run(&r.id).await?;
    run_dto_with_jobs(state, r, project_name, submissions_limit, &rows)
}

/// The API view of a run whose job submissions were fetched already.
fn run_dto_with_jobs(
    state: &AppState,
    r: &run::Model,
    project_name: &str,
    submissions_limit: Option<usize>,
    rows: &[job::Model],
) -> Result<wire::Run, ApiError> {
    let mut jobs: Vec<wire::Job> = Vec::new();
    let mut key: Option<(i64, i64)> = None;
    for j in rows {
        let this = (j.replica_num, j.job_num);
        if key != Some(this) {
            jobs.push(wire::Job {
                job_spec: raw_json(&j.job_spec),
                job_submissions: Vec::new(),
                job_connection_info: None,
            });
            key = Some(this);
        }
        if let Some(last) = jobs.last_mut() {
            last.job_submissions.push(submission_dto(j, state));
        }
    }
    if let Some(limit) = submissions_limit {
        for job in &mut jobs {
            let n = job.job_submissions.len();
            if n > limit {
                job.job_submissions.drain(..n - limit);
            }
        }
    }
    let latest = rows
        .iter()
        .max_by_key(|j| j.submitted_at)
        .map(|j| submission_dto(j, state));
    let run_spec = serde_json::value::RawValue::from_string(r.run_spec.clone())
        .map_err(|e| ApiError::client(format!("stored run spec: {e}")))?;
    let retrying = r.status == "pending";
    Ok(wire::Run {
        id: r.id.clone(),
        project_name: project_name.to_string(),
        user: r.user_name.clone(),
        fleet: None,
        submitted_at: r.submitted_at,
        last_processed_at: r.last_processed_at,
        status: r.status.clone(),
        status_message: run_status_message(&r.status, retrying),
        termination_reason: r.termination_reason.clone(),
        run_spec,
        jobs,
        latest_job_submission: latest,
        cost: 0.0,
        service: r
            .service_spec
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        deployment_num: r.deployment_num,
        error: None,
        deleted: r.deleted,
        next_triggered_at: None,
    })
}

fn offers_for(state: &AppState, config: &Configuration) -> Vec<InstanceOffer> {
    match requirements(config) {
        Some(req) if offers::matches(&state.host.offer(), &req) => {
            vec![state.host.api_offer(false)]
        }
        _ => Vec::new(),
    }
}

pub(super) async fn get_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
    bytes: Bytes,
) -> ApiResult<RunPlan> {
    let (user, project) = project_access(&state, &headers, &project_name).await?;
    let req: wire::GetRunPlanRequest = required_body(&bytes)?;
    let parsed = parse_run_spec(&req.run_spec)?;
    if !req.for_offers_only {
        check_repo_data(&req.run_spec)?;
        if let Some(message) = local_fleet_limits(&parsed.config) {
            return Err(ApiError::client(message));
        }
    }
    let run_name = req
        .run_spec
        .get("run_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut offers = offers_for(&state, &parsed.config);
    let total = offers.len();
    if let Some(max) = req.max_offers {
        offers.truncate(max);
    }
    let spec_name = run_name.clone().unwrap_or_else(|| "run".into());
    let job_plans = vec![JobPlan {
        job_spec: job_spec(&parsed.config, &spec_name, 0, 0, 1).unwrap_or(Value::Null),
        max_price: offers.iter().map(|o| o.price).reduce(f64::max),
        offers,
        total_offers: total,
    }];
    let current = match &run_name {
        Some(name) => match state.db.run_by_name(&project.id, name, false).await? {
            Some(r) if !run_finished(&r.status) => {
                Some(run_dto(&state, &r, &project.name, Some(1)).await?)
            }
            _ => None,
        },
        None => None,
    };
    Ok(Json(RunPlan {
        project_name: project.name.clone(),
        user: user.username.clone(),
        run_spec: parsed.original,
        effective_run_spec: parsed.effective,
        job_plans,
        action: if current.is_some() {
            "update"
        } else {
            "create"
        }
        .into(),
        current_resource: current,
    }))
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lucky", "quiet",
    "swift", "wise",
];
const ANIMALS: &[&str] = &[
    "ant", "bee", "cat", "deer", "eel", "fox", "goat", "hawk", "lynx", "mole", "owl", "seal",
];

async fn generate_run_name(state: &AppState, project: &project::Model) -> Result<String, ApiError> {
    let seed = Utc::now().timestamp_subsec_nanos() as usize;
    let base = format!(
        "{}-{}",
        ADJECTIVES[seed % ADJECTIVES.len()],
        ANIMALS[(seed / 7) % ANIMALS.len()]
    );
    for n in 1.. {
        let name = format!("{base}-{n}");
        if state
            .db
            .run_by_name(&project.id, &name, false)
            .await?
            .is_none()
        {
            return Ok(name);
        }
    }
    Err(ApiError::client("cannot generate a run name"))
}

pub(super) async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
    bytes: Bytes,
) -> ApiResult<wire::Run> {
    let (user, project) = project_access(&state, &headers, &project_name).await?;
    let req: wire::ApplyRunPlanRequest = required_body(&bytes)?;
    let mut run_spec = req.plan.run_spec.clone();
    let run_name = match run_spec.get("run_name").and_then(Value::as_str) {
        Some(name) => name.to_string(),
        None => {
            let name = match run_spec
                .pointer("/configuration/name")
                .and_then(Value::as_str)
            {
                Some(n) => n.to_string(),
                None => generate_run_name(&state, &project).await?,
            };
            run_spec["run_name"] = json!(name);
            name
        }
    };
    let parsed = parse_run_spec(&run_spec)?;
    check_repo_data(&run_spec)?;
    if let Some(message) = local_fleet_limits(&parsed.config) {
        return Err(ApiError::client(message));
    }
    let now = Utc::now();
    if let Some(existing) = state.db.run_by_name(&project.id, &run_name, false).await? {
        if !run_finished(&existing.status) {
            if !req.force {
                return Err(ApiError::client(format!(
                    "Cannot delete active runs: ['{run_name}']"
                )));
            }
            super::process::request_stop(&state, &existing, false).await?;
            return Err(ApiError::client(format!(
                "Run {run_name} is being stopped; apply again once it has finished"
            )));
        }
        let mut old = existing.clone();
        old.deleted = true;
        state.db.save_run(&old).await?;
    }
    let service = service_spec(&parsed.config, &project.name, &run_name);
    let model = run::Model {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project.id.clone(),
        user_name: user.username.clone(),
        run_name: run_name.clone(),
        submitted_at: now,
        last_processed_at: now,
        status: "submitted".into(),
        termination_reason: None,
        run_spec: run_spec.to_string(),
        service_spec: service
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_default()),
        deployment_num: 0,
        deleted: false,
    };
    let r = state.db.insert_run(model).await?;
    let slots = job_slots(&parsed.config);
    let per_replica = slots.iter().filter(|(rep, _)| *rep == 0).count() as i64;
    // A local repo's code, uploaded with `repos/upload_code`.
    let code_hash = run_spec
        .get("repo_code_hash")
        .cloned()
        .unwrap_or(Value::Null);
    let repo_path = parsed
        .config
        .run_common()
        .and_then(|c| c.repos.first())
        .map_or_else(|| ".".to_string(), |r| r.path.clone());
    if let Some(hash) = code_hash.as_str() {
        let valid = hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid || !super::files::code_path(&state, &project.id, hash).exists() {
            return Err(ApiError::client(format!(
                "The repo code {hash} was not uploaded"
            )));
        }
    }
    // Uploaded `files`: every archive must belong to this user.
    let archives = run_spec
        .get("file_archives")
        .cloned()
        .unwrap_or_else(|| json!([]));
    for a in archives.as_array().map(Vec::as_slice).unwrap_or_default() {
        let id = a["id"].as_str().unwrap_or_default();
        let exists =
            !id.is_empty() && !id.contains('/') && super::files::archive_path(&state, id).exists();
        if !exists {
            return Err(ApiError::client(format!(
                "File archive {id} not found; upload it first"
            )));
        }
    }
    for (replica, job_num) in slots {
        let spec = job_spec(
            &parsed.config,
            &run_name,
            replica,
            job_num,
            per_replica.max(1),
        )
        .ok_or_else(|| ApiError::client("not a run configuration"))?;
        let mut spec = spec;
        spec["file_archives"] = archives.clone();
        spec["repo_code_hash"] = code_hash.clone();
        spec["repo_dir"] = json!(repo_path.clone());
        state
            .db
            .insert_job(job::Model::submitted(
                r.id.clone(),
                replica,
                job_num,
                0,
                spec.to_string(),
                now,
            ))
            .await?;
    }
    state.wake.notify_one();
    Ok(Json(run_dto(&state, &r, &project.name, None).await?))
}

pub(super) async fn list_runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let user = super::routes::authenticate(&state, &headers).await?;
    let req: wire::ListRunsRequest = body(&bytes)?;
    // Lists are answered from a cache of rendered bodies while nothing was written since.
    let generation = state.db.generation();
    let key = format!(
        "{}|{:?}|{}|{}|{:?}",
        user.id, req.project_name, req.only_active, req.limit, req.job_submissions_limit
    );
    if let Ok(cache) = state.list_cache.lock() {
        if cache.generation == generation {
            if let Some(body) = cache.bodies.get(&key) {
                return Ok((
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body.clone(),
                )
                    .into_response());
            }
        }
    }
    let out = render_runs(&state, &user, &req).await?;
    let body = Bytes::from(serde_json::to_vec(&out).map_err(|e| ApiError::client(e.to_string()))?);
    if let Ok(mut cache) = state.list_cache.lock() {
        if cache.generation != generation {
            cache.generation = generation;
            cache.bodies.clear();
        }
        cache.bodies.insert(key, body.clone());
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

async fn render_runs(
    state: &AppState,
    user: &crate::state::user::Model,
    req: &wire::ListRunsRequest,
) -> Result<Vec<wire::Run>, ApiError> {
    let member_of: Vec<String> = state
        .db
        .memberships(&user.id)
        .await?
        .into_iter()
        .map(|m| m.project_id)
        .collect();
    let projects: Vec<project::Model> = state
        .db
        .projects()
        .await?
        .into_iter()
        .filter(|p| req.project_name.as_ref().is_none_or(|n| *n == p.name))
        .filter(|p| user.global_role == "admin" || member_of.contains(&p.id))
        .collect();
    let ids: Vec<String> = projects.iter().map(|p| p.id.clone()).collect();
    let runs: Vec<run::Model> = state
        .db
        .runs(&ids, 10_000)
        .await?
        .into_iter()
        .filter(|r| !(req.only_active && (run_finished(&r.status) || r.deleted)))
        .take(req.limit)
        .collect();
    let run_ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let jobs = state.db.jobs_of_runs(&run_ids).await?;
    let mut out = Vec::with_capacity(runs.len());
    for r in &runs {
        let project_name = projects
            .iter()
            .find(|p| p.id == r.project_id)
            .map_or("", |p| p.name.as_str());
        let own: Vec<job::Model> = jobs.iter().filter(|j| j.run_id == r.id).cloned().collect();
        out.push(run_dto_with_jobs(
            state,
            r,
            project_name,
            req.job_submissions_limit,
            &own,
        )?);
    }
    Ok(out)
}

async fn find_run(
    state: &AppState,
    project: &project::Model,
    req: &wire::GetRunRequest,
) -> Result<run::Model, ApiError> {
    let found = match (&req.id, &req.run_name) {
        (Some(id), _) => state
            .db
            .run_by_id(id)
            .await?
            .filter(|r| r.project_id == project.id && !r.deleted),
        (None, Some(name)) => state.db.run_by_name(&project.id, name, false).await?,
        (None, None) => return Err(ApiError::client("run_name or id is required")),
    };
    found.ok_or_else(|| ApiError::not_exists("Run not found"))
}

pub(super) async fn get_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
    bytes: Bytes,
) -> ApiResult<wire::Run> {
    let (_, project) = project_access(&state, &headers, &project_name).await?;
    let req: wire::GetRunRequest = body(&bytes)?;
    let r = find_run(&state, &project, &req).await?;
    Ok(Json(run_dto(&state, &r, &project.name, None).await?))
}

pub(super) async fn stop_runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Value> {
    let (_, project) = project_access(&state, &headers, &project_name).await?;
    let req: wire::StopRunsRequest = required_body(&bytes)?;
    for name in &req.runs_names {
        if let Some(r) = state.db.run_by_name(&project.id, name, false).await? {
            super::process::request_stop(&state, &r, req.abort).await?;
        }
    }
    state.wake.notify_one();
    Ok(Json(Value::Null))
}

pub(super) async fn delete_runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Value> {
    let (_, project) = project_access(&state, &headers, &project_name).await?;
    let req: wire::DeleteRunsRequest = required_body(&bytes)?;
    let mut runs = Vec::new();
    for name in &req.runs_names {
        let r = state
            .db
            .run_by_name(&project.id, name, false)
            .await?
            .ok_or_else(|| ApiError::not_exists(format!("Run {name} not found")))?;
        runs.push(r);
    }
    let active: Vec<String> = runs
        .iter()
        .filter(|r| !run_finished(&r.status))
        .map(|r| format!("'{}'", r.run_name))
        .collect();
    if !active.is_empty() {
        return Err(ApiError::client(format!(
            "Cannot delete active runs: [{}]",
            active.join(", ")
        )));
    }
    for mut r in runs {
        r.deleted = true;
        state.db.save_run(&r).await?;
    }
    Ok(Json(Value::Null))
}

pub(super) async fn poll_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
    bytes: Bytes,
) -> ApiResult<wire::JobSubmissionLogs> {
    let (_, project) = project_access(&state, &headers, &project_name).await?;
    let req: wire::PollLogsRequest = required_body(&bytes)?;
    let job = state
        .db
        .job_by_id(&req.job_submission_id)
        .await?
        .ok_or_else(|| ApiError::not_exists("Job submission not found"))?;
    let path = log_file(&state, &project.name, &req.run_name, &job.id);
    let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    let start: usize = req
        .next_token
        .as_deref()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let limit = req.limit.unwrap_or(1000).clamp(1, 10_000);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let end = (start + limit).min(lines.len());
    let mut logs: Vec<wire::LogEvent> = lines
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if req.descending {
        logs.reverse();
    }
    Ok(Json(wire::JobSubmissionLogs {
        logs,
        external_url: None,
        next_token: (end < lines.len()).then(|| end.to_string()),
    }))
}

pub(super) async fn list_fleets(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
) -> ApiResult<Value> {
    let (_, project) = project_access(&state, &headers, &project_name).await?;
    let busy = !state.db.active_runs().await?.is_empty();
    Ok(Json(json!([local_fleet(&state, &project, busy)])))
}

/// The built-in fleet of the server's host, as the API shows fleets.
fn local_fleet(state: &AppState, project: &project::Model, busy: bool) -> Value {
    let created = state
        .started_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut profile =
        serde_json::to_value(crate::config::ProfileParams::default()).unwrap_or_else(|_| json!({}));
    profile["name"] = json!("default");
    profile["default"] = json!(false);
    let fleet_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("local-fleet/{}", project.id).as_bytes(),
    )
    .to_string();
    json!({
        "id": fleet_id,
        "name": "local",
        "project_name": project.name,
        "spec": {
            "configuration": {
                "type": "fleet", "name": "local", "placement": null, "blocks": 1, "nodes": null,
                "reservation": null, "resources": null, "backends": null, "regions": null,
                "availability_zones": null, "instance_types": null, "spot_policy": null, "retry": null,
                "max_price": null, "idle_duration": null, "tags": null, "backend_options": null,
                "ssh_config": {"user": null, "port": null, "identity_file": null, "ssh_key": null, "proxy_jump": null, "hosts": ["127.0.0.1"], "network": null},
                "env": {}
            },
            "configuration_path": null,
            "profile": profile,
            "autocreated": true
        },
        "created_at": created,
        "status": "active",
        "status_message": null,
        "instances": [{
            "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("local-instance/{}", project.id).as_bytes()).to_string(),
            "project_name": project.name,
            "backend": "remote",
            "instance_type": state.host.instance_type(),
            "name": "local-0",
            "fleet_id": fleet_id,
            "fleet_name": "local",
            "instance_num": 0,
            "job_name": null,
            "hostname": "127.0.0.1",
            "status": if busy { "busy" } else { "idle" },
            "unreachable": false,
            "health_status": "healthy",
            "termination_reason": null,
            "termination_reason_message": null,
            "created": created,
            "finished_at": null,
            "region": "local",
            "availability_zone": null,
            "price": 0.0,
            "total_blocks": 1,
            "busy_blocks": if busy { 1 } else { 0 },
            "gpu_driver": null
        }]
    })
}

/// Endpoints that return an empty list: gateways, volumes, secrets (none can exist yet).
pub(super) async fn empty_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
) -> ApiResult<Value> {
    project_access(&state, &headers, &project_name).await?;
    Ok(Json(json!([])))
}

/// `repos/init`: the local fleet has nothing to store for virtual repos.
pub(super) async fn repos_init(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project_name): Path<String>,
) -> ApiResult<Value> {
    project_access(&state, &headers, &project_name).await?;
    Ok(Json(Value::Null))
}

/// `GET metrics/job/{run}`: no metrics are collected yet.
pub(super) async fn job_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project_name, run_name)): Path<(String, String)>,
) -> ApiResult<Value> {
    let (_, project) = project_access(&state, &headers, &project_name).await?;
    state
        .db
        .run_by_name(&project.id, &run_name, false)
        .await?
        .ok_or_else(|| ApiError::not_exists("Run not found"))?;
    Ok(Json(json!({"metrics": []})))
}
