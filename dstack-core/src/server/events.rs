//! Run and job events with the original's texts (`dstack event`).

use chrono::{DateTime, Utc};

use crate::lifecycle::{JobStatus, JobTerminationReason, RunStatus, RunTerminationReason};
use crate::state::event;

/// What an event is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Run { id: &'a str, name: &'a str },
    Job { id: &'a str, name: &'a str },
}

pub(crate) fn event(
    project_id: &str,
    actor: Option<&str>,
    target: Target<'_>,
    message: String,
    now: DateTime<Utc>,
) -> event::Model {
    let (kind, id, name) = match target {
        Target::Run { id, name } => ("run", id, name),
        Target::Job { id, name } => ("job", id, name),
    };
    event::Model {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project_id.to_string(),
        recorded_at: now,
        actor: actor.map(str::to_string),
        target_type: kind.into(),
        target_id: id.to_string(),
        target_name: name.to_string(),
        message,
    }
}

pub(crate) fn run_submitted(status: RunStatus) -> String {
    format!("Run submitted. Status: {}", status.as_str().to_uppercase())
}

pub(crate) fn job_created(how: &str, status: JobStatus) -> String {
    format!(
        "Job created on {how}. Status: {}",
        status.as_str().to_uppercase()
    )
}

pub(crate) fn run_status_changed(
    old: RunStatus,
    new: RunStatus,
    reason: Option<RunTerminationReason>,
) -> String {
    let mut msg = format!(
        "Run status changed {} -> {}",
        old.as_str().to_uppercase(),
        new.as_str().to_uppercase()
    );
    if let (RunStatus::Terminating, Some(r)) = (new, reason) {
        msg.push_str(&format!(
            ". Termination reason: {}",
            r.as_str().to_uppercase()
        ));
    }
    msg
}

pub(crate) fn job_status_changed(
    old: JobStatus,
    new: JobStatus,
    reason: Option<JobTerminationReason>,
    message: Option<&str>,
) -> String {
    let mut msg = format!(
        "Job status changed {} -> {}",
        old.as_str().to_uppercase(),
        new.as_str().to_uppercase()
    );
    if let (JobStatus::Terminating, Some(r)) = (new, reason) {
        msg.push_str(&format!(
            ". Termination reason: {}",
            r.as_str().to_uppercase()
        ));
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            msg.push_str(&format!(" ({m})"));
        }
    }
    msg
}
