//! Background processing: starts submitted jobs on the local fleet, follows running ones,
//! stops what was asked to stop, retries, and derives run statuses from job statuses.
//! One pass every second, or at once when a request wakes it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::runs::{job_dir, log_file};
use super::{ApiError, AppState};
use crate::backends::local::{self, JobLaunch};
use crate::offers;
use crate::runs::{job_finished, run_finished, run_status_from_jobs};
use crate::state::{StateError, job, run};

/// Runs passes until the server stops.
pub(crate) async fn run_loop(state: AppState) {
    let mut routes_generation = state.db.generation();
    loop {
        if let Err(e) = pass(&state).await {
            tracing::error!(error = %e, "background processing failed");
        }
        let generation = state.db.generation();
        if generation != routes_generation {
            refresh_routes(&state).await;
            routes_generation = generation;
        }
        tokio::select! {
            () = state.wake.notified() => {},
            () = tokio::time::sleep(Duration::from_secs(1)) => {},
        }
    }
}

/// Marks a run (and its jobs) to stop; the next pass signals the processes.
pub(crate) async fn request_stop(
    state: &AppState,
    r: &run::Model,
    abort: bool,
) -> Result<(), ApiError> {
    if run_finished(&r.status) {
        return Ok(());
    }
    let now = Utc::now();
    let reason = if abort {
        "aborted_by_user"
    } else {
        "stopped_by_user"
    };
    let mut r = r.clone();
    r.status = "terminating".into();
    r.termination_reason = Some(reason.into());
    r.last_processed_at = now;
    state.db.save_run(&r).await?;
    for mut j in state.db.jobs_of_run(&r.id).await? {
        if job_finished(&j.status) || j.status == "terminating" {
            continue;
        }
        j.termination_reason = Some(
            if abort {
                "aborted_by_user"
            } else {
                "terminated_by_user"
            }
            .into(),
        );
        j.last_processed_at = now;
        if j.status == "submitted" {
            j.status = "terminated".into();
            j.finished_at = Some(now);
        } else {
            j.status = "terminating".into();
            set_runtime(&mut j, "stop_requested_at", json!(now.to_rfc3339()));
            set_runtime(&mut j, "abort", json!(abort));
        }
        state.db.save_job(&j).await?;
    }
    Ok(())
}

fn runtime(j: &job::Model) -> Value {
    j.runtime
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_else(|| json!({}))
}

fn set_runtime(j: &mut job::Model, key: &str, value: Value) {
    let mut rt = runtime(j);
    rt[key] = value;
    j.runtime = Some(rt.to_string());
}

async fn pass(state: &AppState) -> Result<(), StateError> {
    for r in state.db.active_runs().await? {
        let Some(project) = state.db.project_by_id(&r.project_id).await? else {
            continue;
        };
        let jobs = state.db.jobs_of_run(&r.id).await?;
        // Only the latest submission of each job matters.
        let mut latest: Vec<job::Model> = Vec::new();
        for j in jobs {
            match latest.last_mut() {
                Some(last) if last.replica_num == j.replica_num && last.job_num == j.job_num => {
                    *last = j
                }
                _ => latest.push(j),
            }
        }
        for j in &mut latest {
            process_job(state, &project.name, &r, j).await?;
        }
        maybe_retry(state, &r, &mut latest).await?;
        update_run(state, r, &latest).await?;
    }
    Ok(())
}

async fn process_job(
    state: &AppState,
    project: &str,
    r: &run::Model,
    j: &mut job::Model,
) -> Result<(), StateError> {
    let now = Utc::now();
    let dir = job_dir(state, project, &r.run_name, &j.id);
    match j.status.as_str() {
        "submitted" => start_job(state, project, r, j, now).await,
        "running" | "provisioning" => {
            if let Some(status) = local::read_status(&dir) {
                finish_from_status(j, status, now);
                return state.db.save_job(j).await;
            }
            if !runner_alive(&dir) {
                return fail_lost(state, j, now).await;
            }
            if j.status == "provisioning" && dir.join("job.pgid").exists() {
                j.status = "running".into();
                j.last_processed_at = now;
                return state.db.save_job(j).await;
            }
            let spec: Value = serde_json::from_str(&j.job_spec).unwrap_or(Value::Null);
            if let Some(max) = spec["max_duration"].as_i64() {
                let started = runtime_time(j, "started_at").unwrap_or(j.submitted_at);
                if (now - started).num_seconds() >= max {
                    j.status = "terminating".into();
                    j.termination_reason = Some("max_duration_exceeded".into());
                    set_runtime(j, "stop_requested_at", json!(now.to_rfc3339()));
                    return state.db.save_job(j).await;
                }
            }
            Ok(())
        }
        "terminating" => {
            if let Some(status) = local::read_status(&dir) {
                let reason = j.termination_reason.clone();
                finish_from_status(j, status, now);
                if reason.is_some() {
                    j.status = match reason.as_deref() {
                        Some("aborted_by_user") => "aborted".into(),
                        Some("max_duration_exceeded") => "terminated".into(),
                        _ => "terminated".into(),
                    };
                    j.termination_reason = reason;
                }
                return state.db.save_job(j).await;
            }
            if !runner_alive(&dir) {
                j.status = "terminated".into();
                j.finished_at = Some(now);
                return state.db.save_job(j).await;
            }
            let rt = runtime(j);
            let abort = rt["abort"].as_bool().unwrap_or(false);
            let requested = runtime_time(j, "stop_requested_at").unwrap_or(now);
            let spec: Value = serde_json::from_str(&j.job_spec).unwrap_or(Value::Null);
            let grace = spec["stop_duration"].as_i64().unwrap_or(300);
            if abort || (now - requested).num_seconds() >= grace {
                local::signal_job(&dir, "KILL");
            } else if rt["term_sent"].as_bool() != Some(true) {
                local::signal_job(&dir, "TERM");
                set_runtime(j, "term_sent", json!(true));
                state.db.save_job(j).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn runtime_time(j: &job::Model, key: &str) -> Option<DateTime<Utc>> {
    runtime(j)[key]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn runner_alive(dir: &std::path::Path) -> bool {
    local::runner_pid(dir).is_some_and(local::process_alive)
}

fn finish_from_status(j: &mut job::Model, status: local::ExitStatus, now: DateTime<Utc>) {
    j.finished_at = Some(now);
    j.last_processed_at = now;
    match (status.code, status.signal) {
        (Some(0), _) => {
            j.status = "done".into();
            j.termination_reason = Some("done_by_runner".into());
            j.exit_status = Some(0);
        }
        (Some(code), _) => {
            j.status = "failed".into();
            j.termination_reason = Some("container_exited_with_error".into());
            j.exit_status = Some(i64::from(code));
        }
        (None, signal) => {
            j.status = "failed".into();
            j.termination_reason = Some("container_exited_with_error".into());
            j.exit_status = signal.map(|s| 128 + i64::from(s));
        }
    }
}

async fn fail_lost(
    state: &AppState,
    j: &mut job::Model,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    j.status = "failed".into();
    j.termination_reason = Some("executor_error".into());
    j.termination_reason_message = Some("The job's process is gone and left no exit status".into());
    j.finished_at = Some(now);
    j.last_processed_at = now;
    state.db.save_job(j).await
}

async fn start_job(
    state: &AppState,
    project: &str,
    r: &run::Model,
    j: &mut job::Model,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    let spec: Value = serde_json::from_str(&j.job_spec).unwrap_or(Value::Null);
    let fail = |j: &mut job::Model, reason: &str, message: String| {
        j.status = "failed".into();
        j.termination_reason = Some(reason.into());
        j.termination_reason_message = Some(message);
        j.finished_at = Some(now);
        j.last_processed_at = now;
    };
    // Does the host fit the requirements?
    let requirements = spec["requirements"]["resources"].clone();
    let node = crate::config::Node::from_json(&requirements);
    let mut cx = crate::config::decode::Cx::new();
    let resources = crate::config::resources::resources(&mut cx, &node).ok();
    let Some(resources) = resources else {
        fail(
            j,
            "executor_error",
            "the job's requirements cannot be read".into(),
        );
        return state.db.save_job(j).await;
    };
    let req = offers::Requirements {
        resources,
        spot: spec["requirements"]["spot"].as_bool(),
        max_price: spec["requirements"]["max_price"].as_f64(),
    };
    if let Err(why) = offers::check_offer(&state.host.offer(), &req) {
        fail(
            j,
            "failed_to_start_due_to_no_capacity",
            format!("No offers: the local fleet does not fit the requirements ({why})"),
        );
        return state.db.save_job(j).await;
    }
    let Some(runner) = state.runner_exe.as_ref() else {
        fail(
            j,
            "executor_error",
            "this server has no job runner configured".into(),
        );
        return state.db.save_job(j).await;
    };
    let dir = job_dir(state, project, &r.run_name, &j.id);
    let workdir = match spec["working_dir"].as_str() {
        Some(w) if std::path::Path::new(w).is_dir() => std::path::PathBuf::from(w),
        _ => dir.join("workdir"),
    };
    if let Err(e) = std::fs::create_dir_all(&workdir) {
        fail(
            j,
            "executor_error",
            format!("cannot create {}: {e}", workdir.display()),
        );
        return state.db.save_job(j).await;
    }
    if let Some(hash) = spec["repo_code_hash"].as_str() {
        let target = resolve_target(spec["repo_dir"].as_str().unwrap_or("."), &workdir);
        let code = super::files::code_path(state, &r.project_id, hash);
        if let Err(e) = unpack_code(&code, &target) {
            fail(
                j,
                "executor_error",
                format!("cannot place the repo's code at {}: {e}", target.display()),
            );
            return state.db.save_job(j).await;
        }
    }
    for (i, a) in spec["file_archives"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let id = a["id"].as_str().unwrap_or_default();
        let target = resolve_target(a["path"].as_str().unwrap_or("."), &workdir);
        let archive = super::files::archive_path(state, id);
        let scratch = dir.join(format!("unpack-{i}"));
        if let Err(e) = super::files::unpack(&archive, &target, &scratch) {
            fail(
                j,
                "executor_error",
                format!("cannot place uploaded files at {}: {e}", target.display()),
            );
            return state.db.save_job(j).await;
        }
    }
    let argv: Vec<String> = spec["commands"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // `${{ secrets.NAME }}` in env values, from the project's secrets.
    let secrets: Vec<(String, String)> = state
        .db
        .secrets(&r.project_id)
        .await?
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    let lookup = |ns: &str, name: &str| {
        (ns == "secrets")
            .then(|| {
                secrets
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
            .flatten()
    };
    // GPUs: the minimum the job asks for, from those no other job holds; wait when too few
    // are free.
    let wanted = spec["requirements"]["resources"]["gpu"]["count"]["min"]
        .as_u64()
        .unwrap_or(0) as usize;
    let mut gpus: Vec<usize> = Vec::new();
    if wanted > 0 {
        let mut used: Vec<usize> = Vec::new();
        for other in state.db.active_jobs().await? {
            if let Some(list) = runtime(&other)["gpus"].as_array() {
                used.extend(list.iter().filter_map(|g| g.as_u64().map(|g| g as usize)));
            }
        }
        gpus = (0..state.host.gpus.len())
            .filter(|g| !used.contains(g))
            .take(wanted)
            .collect();
        if gpus.len() < wanted {
            return Ok(());
        }
    }
    let mut env = job_env(state, r, j, &spec, &workdir, &gpus);
    for (key, value) in env.iter_mut() {
        if !value.contains("${{") || spec["env"].get(key.as_str()).is_none() {
            continue;
        }
        match crate::config::interpolate::interpolate_or_error(value, &lookup, &["groups"]) {
            Ok(v) => *value = v,
            Err(e) => {
                fail(
                    j,
                    "executor_error",
                    format!("Secrets interpolation error: {}", e.0),
                );
                return state.db.save_job(j).await;
            }
        }
    }
    let launch = JobLaunch {
        argv,
        env,
        working_dir: workdir,
        log_file: log_file(state, project, &r.run_name, &j.id),
    };
    let written = serde_json::to_string(&launch)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(local::launch_file(&dir), text));
    if let Err(e) = written.and_then(|()| local::spawn_runner(runner, &dir).map(|_| ())) {
        fail(j, "executor_error", format!("cannot start the job: {e}"));
        return state.db.save_job(j).await;
    }
    j.status = "provisioning".into();
    j.last_processed_at = now;
    set_runtime(j, "started_at", json!(now.to_rfc3339()));
    set_runtime(j, "gpus", json!(gpus));
    state.db.save_job(j).await
}

/// The job's environment: a small allow-list of the server's variables, the run's `env`, and
/// the `DSTACK_*` system variables.
fn job_env(
    state: &AppState,
    r: &run::Model,
    j: &job::Model,
    spec: &Value,
    workdir: &std::path::Path,
    gpus: &[usize],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR", "SHELL", "TZ",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
    .collect();
    let mut set = |k: &str, v: String| match env.iter_mut().find(|(key, _)| key == k) {
        Some(entry) => entry.1 = v,
        None => env.push((k.to_string(), v)),
    };
    if let Some(vars) = spec["env"].as_object() {
        for (k, v) in vars {
            set(k, v.as_str().unwrap_or_default().to_string());
        }
    }
    let assigned = gpus.len();
    let nodes = spec["jobs_per_replica"].as_i64().unwrap_or(1);
    set("DSTACK_RUN_NAME", r.run_name.clone());
    set("DSTACK_RUN_ID", r.id.clone());
    set("DSTACK_JOB_ID", j.id.clone());
    set("DSTACK_REPO_ID", "none".into());
    set("DSTACK_GPUS_NUM", assigned.to_string());
    set("DSTACK_GPUS_PER_NODE", assigned.to_string());
    set("DSTACK_NODES_NUM", nodes.to_string());
    set("DSTACK_NODE_RANK", j.job_num.to_string());
    set("DSTACK_MASTER_NODE_IP", "127.0.0.1".into());
    set("DSTACK_NODES_IPS", "127.0.0.1".into());
    set("DSTACK_REPLICA_NUM", j.replica_num.to_string());
    set("DSTACK_WORKING_DIR", workdir.display().to_string());
    let visible = gpus
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let var = match state.host.gpus.first().map(|g| g.vendor) {
        Some(crate::resources::Vendor::Amd) => "HIP_VISIBLE_DEVICES",
        _ => "CUDA_VISIBLE_DEVICES",
    };
    set(var, visible);
    env
}

async fn maybe_retry(
    state: &AppState,
    r: &run::Model,
    latest: &mut [job::Model],
) -> Result<(), StateError> {
    if r.status == "terminating" {
        return Ok(());
    }
    let now = Utc::now();
    for j in latest.iter_mut() {
        if !matches!(j.status.as_str(), "failed") {
            continue;
        }
        let spec: Value = serde_json::from_str(&j.job_spec).unwrap_or(Value::Null);
        let Some(events) = spec["retry"]["on_events"].as_array() else {
            continue;
        };
        let event = match j.termination_reason.as_deref() {
            Some("failed_to_start_due_to_no_capacity") => "no-capacity",
            Some("interrupted_by_no_capacity") => "interruption",
            _ => "error",
        };
        if !events.iter().any(|e| e == event) {
            continue;
        }
        let duration = spec["retry"]["duration"].as_i64().unwrap_or(3600);
        let since = if event == "no-capacity" {
            r.submitted_at
        } else {
            j.finished_at.unwrap_or(now)
        };
        if (now - since).num_seconds() > duration {
            continue;
        }
        let next = job::Model::submitted(
            j.run_id.clone(),
            j.replica_num,
            j.job_num,
            j.submission_num + 1,
            j.job_spec.clone(),
            now,
        );
        *j = state.db.insert_job(next).await?;
    }
    Ok(())
}

async fn update_run(
    state: &AppState,
    mut r: run::Model,
    latest: &[job::Model],
) -> Result<(), StateError> {
    let statuses: Vec<(&str, Option<&str>)> = latest
        .iter()
        .map(|j| (j.status.as_str(), j.termination_reason.as_deref()))
        .collect();
    let all_finished = latest.iter().all(|j| job_finished(&j.status));
    let (status, reason): (String, Option<String>) = if r.status == "terminating" {
        if all_finished {
            let failed = latest.iter().any(|j| j.status == "failed");
            let status = if failed { "failed" } else { "terminated" };
            (status.into(), r.termination_reason.clone())
        } else {
            ("terminating".into(), r.termination_reason.clone())
        }
    } else {
        let (s, reason) = run_status_from_jobs(&statuses);
        match s {
            // A failed job stops the others first.
            "failed" if !all_finished => {
                let stop = r.clone();
                request_stop_internal(state, &stop).await?;
                ("terminating".into(), Some("job_failed".into()))
            }
            _ => (s.into(), reason.map(str::to_string)),
        }
    };
    if status != r.status || reason != r.termination_reason {
        r.status = status;
        r.termination_reason = reason;
        r.last_processed_at = Utc::now();
        state.db.save_run(&r).await?;
    }
    Ok(())
}

async fn request_stop_internal(state: &AppState, r: &run::Model) -> Result<(), StateError> {
    match request_stop(state, r, false).await {
        Ok(()) => Ok(()),
        Err(ApiError::State(e)) => Err(e),
        Err(e) => Err(StateError::Corrupt(e.to_string())),
    }
}

/// A path in the job's file system: absolute, `~`-relative or relative to the working directory.
fn resolve_target(path: &str, workdir: &std::path::Path) -> std::path::PathBuf {
    let home = || std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default());
    if path == "~" {
        home()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home().join(rest)
    } else if path.starts_with('/') {
        std::path::PathBuf::from(path)
    } else {
        workdir.join(path)
    }
}

/// Unpacks a repo's code tar (entries relative to the repo root) into `target`.
fn unpack_code(code: &std::path::Path, target: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| e.to_string())?;
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(code)
        .arg("--no-same-owner")
        .arg("-C")
        .arg(target)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("tar failed to unpack {}", code.display()))
    }
}

/// Rebuilds the proxy's route table from the state: services with running replicas, and the
/// tokens with the projects they may use.
pub(crate) async fn refresh_routes(state: &AppState) {
    match build_routes(state).await {
        Ok(table) => state.routes.replace(table),
        Err(e) => tracing::error!(error = %e, "cannot rebuild the proxy routes"),
    }
}

async fn build_routes(state: &AppState) -> Result<crate::proxy::RouteTable, StateError> {
    use crate::proxy::{ModelRoute, Replica, RouteTable, ServiceRoute, TokenInfo};
    let projects = state.db.projects().await?;
    let project_name = |id: &str| projects.iter().find(|p| p.id == id).map(|p| p.name.clone());
    // One query per table, whatever the number of users and runs.
    let mut member_of: std::collections::HashMap<String, std::collections::HashSet<String>> =
        std::collections::HashMap::new();
    for m in state.db.all_memberships().await? {
        if let Some(name) = project_name(&m.project_id) {
            member_of.entry(m.user_id).or_default().insert(name);
        }
    }
    let mut tokens = std::collections::HashMap::new();
    for u in state.db.users().await? {
        if !u.active {
            continue;
        }
        tokens.insert(
            u.token.clone(),
            TokenInfo {
                global_admin: u.global_role == "admin",
                projects: member_of.remove(&u.id).unwrap_or_default(),
            },
        );
    }
    let runs: Vec<_> = state
        .db
        .active_runs()
        .await?
        .into_iter()
        .filter(|r| r.service_spec.is_some() && !r.deleted)
        .collect();
    let run_ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let mut ports: std::collections::HashMap<String, Vec<u16>> = std::collections::HashMap::new();
    for j in state.db.jobs_of_runs(&run_ids).await? {
        if j.status != "running" {
            continue;
        }
        let spec: Value = serde_json::from_str(&j.job_spec).unwrap_or(Value::Null);
        if let Some(port) = spec["service_port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
        {
            ports.entry(j.run_id).or_default().push(port);
        }
    }
    let mut services = Vec::new();
    for r in runs {
        let Some(project) = project_name(&r.project_id) else {
            continue;
        };
        let run_spec: Value = serde_json::from_str(&r.run_spec).unwrap_or(Value::Null);
        let Ok(crate::config::Configuration::Service(config)) =
            crate::config::Configuration::from_json(&run_spec["configuration"])
        else {
            continue;
        };
        let replicas = ports
            .remove(&r.id)
            .unwrap_or_default()
            .into_iter()
            .map(|port| Replica {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            })
            .collect();
        let model = config.model.as_ref().map(|m| ModelRoute {
            name: m.name().to_string(),
            prefix: match m {
                crate::config::service::ModelSpec::OpenAi { prefix, .. } => prefix.clone(),
                crate::config::service::ModelSpec::Tgi { .. } => String::new(),
            },
            created: r.submitted_at.timestamp(),
        });
        services.push(ServiceRoute {
            project,
            run: r.run_name.clone(),
            auth: config.auth,
            strip_prefix: config.strip_prefix,
            replicas,
            model,
        });
    }
    Ok(RouteTable { services, tokens })
}
