//! Table tests of the lifecycle: every job and run transition, every retry event and window,
//! `max_duration`, `stop_duration`, and the pending back-off. The shared builders are here.

use chrono::{Duration, TimeZone, Utc};

use super::*;

mod jobs;
mod retry;
mod runs;

pub(super) fn t(secs: i64) -> Time {
    Utc.timestamp_opt(1_800_000_000, 0)
        .single()
        .unwrap_or_default()
        + Duration::seconds(secs)
}

pub(super) fn retry(events: &[RetryEvent], duration: i64) -> JobPolicy {
    JobPolicy {
        retry: Some(RetryPolicy {
            on_events: events.to_vec(),
            duration,
        }),
        max_duration: None,
        stop_duration: Some(300),
    }
}

pub(super) fn job(status: JobStatus) -> Job {
    let mut fields = JobFields::submitted();
    fields.status = status;
    Job {
        replica_num: 0,
        job_num: 0,
        submission_num: 0,
        latest: true,
        policy: JobPolicy {
            retry: None,
            max_duration: None,
            stop_duration: Some(300),
        },
        last_processed_at: t(0),
        started_at: status.is_started().then(|| t(0)),
        earlier_provisioned_at: None,
        observed: Observed::Nothing,
        fields,
    }
}

pub(super) fn with(mut j: Job, f: impl FnOnce(&mut Job)) -> Job {
    f(&mut j);
    j
}

pub(super) fn finished(status: JobStatus, reason: JobTerminationReason) -> Job {
    with(job(status), |j| {
        j.fields.termination_reason = Some(reason);
        j.fields.finished_at = Some(t(0));
        j.started_at = Some(t(0));
    })
}

pub(super) fn run(status: RunStatus, jobs: Vec<Job>) -> Run {
    Run {
        status,
        termination_reason: None,
        stop: None,
        submitted_at: t(0),
        resubmission_attempt: 0,
        jobs,
    }
}

pub(super) fn exited(code: i32) -> Observed {
    Observed::Exited(ExitStatus {
        code: Some(code),
        signal: None,
    })
}

pub(super) fn job_update(actions: &[Action], index: usize) -> Option<&JobFields> {
    actions.iter().find_map(|a| match a {
        Action::UpdateJob { job, fields } if *job == index => Some(fields),
        _ => None,
    })
}

pub(super) fn run_update(actions: &[Action]) -> Option<&RunUpdate> {
    actions.iter().find_map(|a| match a {
        Action::UpdateRun(u) => Some(u),
        _ => None,
    })
}

pub(super) fn signals(actions: &[Action]) -> Vec<(usize, Signal)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal { job, signal } => Some((*job, *signal)),
            _ => None,
        })
        .collect()
}

pub(super) fn has(actions: &[Action], wanted: &Action) -> bool {
    actions.contains(wanted)
}
