//! Runs: plans, submission, listing, stop and delete. Handlers record intent (a submitted run,
//! a stop request) and wake the orchestrator; they never change a job.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::super::events::{self, Target};
use super::super::http::{Auth, Body, Member, OptBody};
use super::super::submit::{self, Submission};
use super::super::{ApiError, AppState, storage, views};
use crate::api::runs::{self as wire, JobPlan, RunPlan};
use crate::config::Configuration;
use crate::lifecycle::{JobStatus, RunStatus, StopRequest};
use crate::state::{JobRow, RunRow, RunsQuery, StateError, project};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The API view of one run, with its jobs.
async fn run_view(
    state: &AppState,
    r: &RunRow,
    project_name: &str,
    submissions_limit: Option<usize>,
) -> Result<wire::Run, ApiError> {
    let rows = state.db.jobs_of_run(&r.id).await?;
    views::run(r, project_name, submissions_limit, &rows)
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

pub(super) async fn get_plan(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<wire::GetRunPlanRequest>,
) -> ApiResult<RunPlan> {
    let sub = submit::parse(&req.run_spec)?;
    let name = sub.run_name.clone().unwrap_or_else(|| "run".into());
    let plan = submit::plan(&state, &sub, &name, &m.user);
    let plan = match plan {
        Ok(p) => p,
        // `dstack offer` asks for offers of any configuration.
        Err(_) if req.for_offers_only => {
            let input = sub.input(&name, &state.default_python);
            let job = crate::jobspec::plan_job_spec(&input).map_err(|e| ApiError::client(e.0))?;
            let offers = state.backend.offers(&job).unwrap_or_default();
            submit::Plan { job, offers }
        }
        Err(e) => return Err(e),
    };
    let mut offers: Vec<_> = plan.offers.iter().map(views::offer).collect();
    let total = offers.len();
    if let Some(max) = req.max_offers {
        offers.truncate(max);
    }
    let current = match &sub.run_name {
        Some(name) => match state.db.run_by_name(&m.project.id, name).await? {
            Some(r) if !r.status.is_finished() => {
                Some(run_view(&state, &r, &m.project.name, Some(1)).await?)
            }
            _ => None,
        },
        None => None,
    };
    Ok(Json(RunPlan {
        project_name: m.project.name.clone(),
        user: m.user.username.clone(),
        run_spec: sub.original.clone(),
        effective_run_spec: sub.effective.clone(),
        job_plans: vec![JobPlan {
            job_spec: plan.job,
            max_price: offers.iter().map(|o| o.price).reduce(f64::max),
            offers,
            total_offers: total,
        }],
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

fn random_name() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!(
        "{}-{}-{}",
        ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
        ANIMALS[b[1] as usize % ANIMALS.len()],
        u16::from_le_bytes([b[2], b[3]]) % 1000 + 1
    )
}

/// Checks the uploads a run refers to: the repo code was uploaded to this project, and every
/// file archive was uploaded by this user.
async fn check_uploads(state: &AppState, m: &Member, sub: &Submission) -> Result<(), ApiError> {
    if let Some(hash) = &sub.repo_code_hash {
        let exists = match storage::code_path(&state.dir, &m.project.id, hash) {
            Some(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            None => false,
        };
        if !exists {
            return Err(ApiError::client(format!(
                "The repo code {hash} was not uploaded"
            )));
        }
    }
    for a in &sub.file_archives {
        let owned = state.db.archive_of(&a.id, &m.user.id).await?.is_some();
        let stored = match storage::archive_path(&state.dir, &a.id) {
            Some(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            None => false,
        };
        if !owned || !stored {
            return Err(ApiError::client(format!(
                "File archive {} not found; upload it first",
                a.id
            )));
        }
    }
    Ok(())
}

pub(super) async fn apply(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<wire::ApplyRunPlanRequest>,
) -> ApiResult<wire::Run> {
    let mut sub = submit::parse(&req.plan.run_spec)?;
    // Everything is checked before anything is written.
    let explicit = sub
        .run_name
        .clone()
        .or_else(|| sub.config.run_common().and_then(|c| c.name.clone()));
    let name = explicit.clone().unwrap_or_else(random_name);
    sub.name(&name);
    submit::plan(&state, &sub, &name, &m.user)?;
    check_uploads(&state, &m, &sub).await?;
    let mut attempt = 0;
    loop {
        let name = sub.run_name.clone().unwrap_or_default();
        let jobs = submit::jobs_to_submit(&state, &sub, &name)?;
        let existing = state.db.run_by_name(&m.project.id, &name).await?;
        if let Some(existing) = &existing
            && !existing.status.is_finished()
        {
            return Err(ApiError::client(
                "Cannot override active run. Stop the run first.",
            ));
        }
        let now = Utc::now();
        let r = RunRow {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: m.project.id.clone(),
            user_name: m.user.username.clone(),
            run_name: name.clone(),
            submitted_at: now,
            last_processed_at: now,
            status: RunStatus::Submitted,
            termination_reason: None,
            run_spec: sub.effective.to_string(),
            service_spec: service_spec(&sub.config, &m.project.name, &name)
                .and_then(|s| serde_json::to_string(&s).ok()),
            deployment_num: 0,
            deleted: false,
            stop: None,
            resubmission_attempt: 0,
        };
        let rows: Vec<JobRow> = jobs
            .iter()
            .map(|(spec, _)| {
                JobRow::submitted(
                    &r.id,
                    spec.replica_num,
                    spec.job_num,
                    0,
                    serde_json::to_string(spec).unwrap_or_default(),
                    now,
                )
            })
            .collect();
        let mut log = vec![events::event(
            &m.project.id,
            Some(&m.user.username),
            Target::Run {
                id: &r.id,
                name: &r.run_name,
            },
            events::run_submitted(r.status),
            now,
        )];
        for (j, (spec, _)) in rows.iter().zip(&jobs) {
            log.push(events::event(
                &m.project.id,
                Some(&m.user.username),
                Target::Job {
                    id: &j.id,
                    name: &spec.job_name,
                },
                events::job_created("run submission", JobStatus::Submitted),
                now,
            ));
        }
        match state
            .db
            .submit_run(
                r.clone(),
                rows.clone(),
                existing.as_ref().map(|e| e.id.as_str()),
            )
            .await
        {
            Ok(()) => {
                state.db.record_events(log).await?;
                state.wake.notify_one();
                return Ok(Json(views::run(&r, &m.project.name, None, &rows)?));
            }
            // Another apply of this name won the race.
            Err(StateError::Conflict(_)) if explicit.is_some() || attempt >= 5 => {
                return Err(ApiError::client(
                    "Cannot override active run. Stop the run first.",
                ));
            }
            Err(StateError::Conflict(_)) => {
                attempt += 1;
                sub.name(&random_name());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `runs/list` answers are cached as rendered bodies, shared (not copied) by every request
/// that asks the same while nothing was written since.
pub(super) async fn list(
    State(state): State<AppState>,
    Auth(user): Auth,
    OptBody(req): OptBody<wire::ListRunsRequest>,
) -> Result<Response, ApiError> {
    let generation = state.db.generation();
    let key = format!(
        "{}|{:?}|{}|{}|{:?}|{}|{:?}|{:?}",
        user.id,
        req.project_name,
        req.only_active,
        req.limit,
        req.job_submissions_limit,
        req.ascending,
        req.prev_submitted_at,
        req.prev_run_id
    );
    if let Some(body) = state.list_cache.get(generation, &key) {
        return Ok(json_bytes(body));
    }
    let _permit = state
        .list_cache
        .renders
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let generation = state.db.generation();
    if let Some(body) = state.list_cache.get(generation, &key) {
        return Ok(json_bytes(body));
    }
    let out = render_runs(&state, &user, &req).await?;
    let body =
        Bytes::from(serde_json::to_vec(&out).map_err(|e| ApiError::Internal(e.to_string()))?);
    state.list_cache.put(generation, key, body.clone());
    Ok(json_bytes(body))
}

fn json_bytes(body: Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn render_runs(
    state: &AppState,
    user: &crate::state::UserRow,
    req: &wire::ListRunsRequest,
) -> Result<Vec<wire::Run>, ApiError> {
    let member_of = state.db.memberships(&user.id).await?;
    let projects: Vec<project::Model> = state
        .db
        .projects()
        .await?
        .into_iter()
        .filter(|p| req.project_name.as_ref().is_none_or(|n| *n == p.name))
        .filter(|p| user.is_admin() || member_of.contains(&p.id))
        .collect();
    let runs = state
        .db
        .runs(&RunsQuery {
            project_ids: projects.iter().map(|p| p.id.clone()).collect(),
            only_active: req.only_active,
            limit: req.limit.clamp(1, 1000) as u64,
            ascending: req.ascending,
            after: req.prev_submitted_at.zip(req.prev_run_id.clone()),
        })
        .await?;
    let run_ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let jobs = state.db.jobs_of_runs(&run_ids).await?;
    let mut out = Vec::with_capacity(runs.len());
    for r in &runs {
        let project_name = projects
            .iter()
            .find(|p| p.id == r.project_id)
            .map_or("", |p| p.name.as_str());
        let first = jobs.partition_point(|j| j.run_id < r.id);
        let last = jobs.partition_point(|j| j.run_id <= r.id);
        out.push(views::run(
            r,
            project_name,
            req.job_submissions_limit,
            &jobs[first..last],
        )?);
    }
    Ok(out)
}

async fn find_run(
    state: &AppState,
    project: &project::Model,
    req: &wire::GetRunRequest,
) -> Result<RunRow, ApiError> {
    let found = match (&req.id, &req.run_name) {
        (Some(id), _) => state
            .db
            .run_by_id(id)
            .await?
            .filter(|r| r.project_id == project.id && !r.deleted),
        (None, Some(name)) => state.db.run_by_name(&project.id, name).await?,
        (None, None) => return Err(ApiError::client("run_name or id is required")),
    };
    found.ok_or_else(|| ApiError::not_exists("Run not found"))
}

pub(super) async fn get(
    State(state): State<AppState>,
    m: Member,
    OptBody(req): OptBody<wire::GetRunRequest>,
) -> ApiResult<wire::Run> {
    let r = find_run(&state, &m.project, &req).await?;
    Ok(Json(run_view(&state, &r, &m.project.name, None).await?))
}

pub(super) async fn stop(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<wire::StopRunsRequest>,
) -> ApiResult<Value> {
    let stop = if req.abort {
        StopRequest::Abort
    } else {
        StopRequest::Stop
    };
    for name in &req.runs_names {
        if let Some(r) = state.db.run_by_name(&m.project.id, name).await? {
            state.db.request_stop(&r.id, stop).await?;
        }
    }
    state.wake.notify_one();
    Ok(Json(Value::Null))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<wire::DeleteRunsRequest>,
) -> ApiResult<Value> {
    let mut runs = Vec::new();
    for name in &req.runs_names {
        let r = state
            .db
            .run_by_name(&m.project.id, name)
            .await?
            .ok_or_else(|| ApiError::not_exists(format!("Run {name} not found")))?;
        runs.push(r);
    }
    let active: Vec<String> = runs
        .iter()
        .filter(|r| !r.status.is_finished())
        .map(|r| format!("'{}'", r.run_name))
        .collect();
    if !active.is_empty() {
        return Err(ApiError::client(format!(
            "Cannot delete active runs: [{}]",
            active.join(", ")
        )));
    }
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    state.db.delete_runs(&ids).await?;
    let now = Utc::now();
    let log = runs
        .iter()
        .map(|r| {
            events::event(
                &m.project.id,
                Some(&m.user.username),
                Target::Run {
                    id: &r.id,
                    name: &r.run_name,
                },
                "Run deleted".into(),
                now,
            )
        })
        .collect();
    state.db.record_events(log).await?;
    Ok(Json(Value::Null))
}
