//! Logs and metrics of a run's jobs.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::super::http::{Body, Member};
use super::super::{ApiError, AppState, log_store};
use crate::api::runs::{self as wire};

/// `logs/poll`: a page of a job submission's log. The submission must belong to a run of the
/// project in the path, with the name the request gives; the file is found from ids the
/// server made, never from the request.
pub(super) async fn poll(
    State(state): State<AppState>,
    m: Member,
    Body(req): Body<wire::PollLogsRequest>,
) -> Result<Json<wire::JobSubmissionLogs>, ApiError> {
    let not_found = || ApiError::not_exists("Job submission not found");
    if uuid::Uuid::parse_str(&req.job_submission_id).is_err() {
        return Err(not_found());
    }
    let job = state
        .db
        .job_by_id(&req.job_submission_id)
        .await?
        .ok_or_else(not_found)?;
    let run = state
        .db
        .run_by_id(&job.run_id)
        .await?
        .filter(|r| r.project_id == m.project.id && r.run_name == req.run_name)
        .ok_or_else(not_found)?;
    let start = match req.next_token.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<u64>()
                .map_err(|_| ApiError::client("Invalid next_token"))?,
        ),
    };
    let limit = req.limit.unwrap_or(1000).clamp(1, 10_000);
    let path = state
        .logs
        .path(&m.project.id, &run.id, &job.id)
        .ok_or_else(not_found)?;
    let legacy = state
        .logs
        .legacy_path(&m.project.name, &run.run_name, &job.id);
    let descending = req.descending;
    let page = tokio::task::spawn_blocking(move || {
        let path = match legacy {
            Some(l) if !path.exists() && l.exists() => l,
            _ => path,
        };
        log_store::read_page(&path, start, limit, descending)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(format!("cannot read the log: {e}")))?;
    Ok(Json(wire::JobSubmissionLogs {
        logs: page.events,
        external_url: None,
        next_token: page.next.map(|n| n.to_string()),
    }))
}

/// `GET metrics/job/{run}`: no metrics are collected yet; the run must exist.
pub(super) async fn job_metrics(
    State(state): State<AppState>,
    m: Member,
    Path((_, run_name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state
        .db
        .run_by_name(&m.project.id, &run_name)
        .await?
        .ok_or_else(|| ApiError::not_exists("Run not found"))?;
    Ok(Json(json!({"metrics": []})))
}
