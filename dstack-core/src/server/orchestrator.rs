//! The orchestrator: the only writer of job statuses. Each pass loads the active runs and their
//! jobs, observes started jobs through the backend, asks the lifecycle model what to do, does it
//! (start, signal, release through the backend) and saves each run's changes in one
//! transaction. It runs when something is written (API handlers wake it) and every second.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::events::{self, Target};
use super::{AppState, storage};
use crate::backends::{Launch, StartError};
use crate::jobspec::{self, JobSpec};
use crate::lifecycle::{self, Action, Job, JobFields, Observed, Run, RunUpdate, StartOutcome};
use crate::state::{JobRow, RunRow, StateError, event};

/// Runs passes until the server stops.
pub(crate) async fn run(state: AppState) {
    match state.db.started_jobs().await {
        Ok(jobs) => {
            let handles: Vec<_> = jobs.into_iter().filter_map(|j| j.runtime.handle).collect();
            state.backend.restore(&handles).await;
        }
        Err(e) => tracing::error!(error = %e, "cannot read the started jobs"),
    }
    if let Err(e) = recover_starts(&state).await {
        tracing::error!(error = %e, "cannot recover interrupted starts");
    }
    let mut routes_generation = u64::MAX;
    loop {
        if let Err(e) = pass(&state).await {
            tracing::error!(error = %e, "orchestrator pass failed");
        }
        let generation = state.db.generation();
        if generation != routes_generation {
            super::route_table::refresh(&state).await;
            routes_generation = generation;
        }
        tokio::select! {
            () = state.wake.notified() => {},
            () = tokio::time::sleep(Duration::from_secs(1)) => {},
        }
    }
}

/// One pass over every active run.
pub(crate) async fn pass(state: &AppState) -> Result<(), StateError> {
    let started = std::time::Instant::now();
    let runs = state.db.active_runs().await?;
    if runs.is_empty() {
        return Ok(());
    }
    let count = runs.len();
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let mut by_run: HashMap<String, Vec<JobRow>> = HashMap::new();
    for j in state.db.jobs_of_runs(&ids).await? {
        by_run.entry(j.run_id.clone()).or_default().push(j);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for r in runs {
        let jobs = by_run.remove(&r.id).unwrap_or_default();
        let state = state.clone();
        tasks.spawn(async move { process_run(&state, r, jobs).await });
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => tracing::error!(error = %e, "a run's processing failed"),
        }
    }
    tracing::debug!(
        runs = count,
        micros = started.elapsed().as_micros() as u64,
        "orchestrator pass"
    );
    result
}

/// The submissions the model sees: the latest of each job, and older unfinished ones.
fn relevant(jobs: &[JobRow]) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for (i, j) in jobs.iter().enumerate() {
        let latest = jobs
            .get(i + 1)
            .is_none_or(|n| (n.replica_num, n.job_num) != (j.replica_num, j.job_num));
        if latest || !j.status.is_finished() {
            out.push((i, latest));
        }
    }
    out
}

fn fields_of(j: &JobRow) -> JobFields {
    JobFields {
        status: j.status,
        termination_reason: j.termination_reason,
        termination_message: j.termination_message.clone(),
        exit_status: j.exit_status,
        finished_at: j.finished_at,
        stop_requested_at: j.runtime.stop_requested_at,
        term_sent_at: j.runtime.term_sent_at,
        kill_sent: j.runtime.kill_sent,
    }
}

fn apply_fields(j: &mut JobRow, f: &JobFields, now: DateTime<Utc>) {
    j.status = f.status;
    j.termination_reason = f.termination_reason;
    j.termination_message = f.termination_message.clone();
    j.exit_status = f.exit_status;
    j.finished_at = f.finished_at;
    j.runtime.stop_requested_at = f.stop_requested_at;
    j.runtime.term_sent_at = f.term_sent_at;
    j.runtime.kill_sent = f.kill_sent;
    j.last_processed_at = now;
}

fn job_name(j: &JobRow) -> String {
    serde_json::from_str::<serde_json::Value>(&j.job_spec)
        .ok()
        .and_then(|v| v["job_name"].as_str().map(str::to_string))
        .unwrap_or_else(|| j.id.clone())
}

async fn process_run(
    state: &AppState,
    mut r: RunRow,
    mut rows: Vec<JobRow>,
) -> Result<(), StateError> {
    let now = Utc::now();
    let picked = relevant(&rows);
    let mut model_jobs = Vec::with_capacity(picked.len());
    for (i, latest) in &picked {
        let j = &rows[*i];
        let spec: Option<JobSpec> = serde_json::from_str(&j.job_spec).ok();
        let earlier_provisioned_at = rows[..*i]
            .iter()
            .rev()
            .take_while(|o| (o.replica_num, o.job_num) == (j.replica_num, j.job_num))
            .find(|o| o.runtime.started_at.is_some())
            .map(|o| o.last_processed_at);
        let observed = match (&j.runtime.handle, j.status.is_started()) {
            (Some(h), true) => match state.backend.observe(h).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(job = %j.id, error = %e, "cannot observe a job");
                    Observed::Unknown
                }
            },
            _ => Observed::Nothing,
        };
        model_jobs.push(Job {
            replica_num: j.replica_num,
            job_num: j.job_num,
            submission_num: j.submission_num,
            latest: *latest,
            policy: spec.map(|s| s.policy()).unwrap_or_default(),
            last_processed_at: j.last_processed_at,
            started_at: j.runtime.started_at,
            earlier_provisioned_at,
            observed,
            fields: fields_of(j),
        });
    }
    let model = Run {
        status: r.status,
        termination_reason: r.termination_reason,
        stop: r.stop,
        submitted_at: r.submitted_at,
        resubmission_attempt: r.resubmission_attempt,
        jobs: model_jobs,
    };
    let actions = lifecycle::decide(&model, now);
    if actions.is_empty() {
        return Ok(());
    }
    let mut changed: Vec<usize> = Vec::new();
    let mut new_jobs: Vec<JobRow> = Vec::new();
    let mut events: Vec<event::Model> = Vec::new();
    let mut run_changed = false;
    let old_status = r.status;
    let old_statuses: Vec<_> = rows.iter().map(|j| j.status).collect();
    for action in actions {
        match action {
            Action::UpdateJob { job, fields } => {
                let i = picked[job].0;
                apply_fields(&mut rows[i], &fields, now);
                changed.push(i);
            }
            Action::Signal { job, signal } => {
                if let Some(h) = &rows[picked[job].0].runtime.handle
                    && let Err(e) = state.backend.signal(h, signal).await
                {
                    tracing::warn!(error = %e, "cannot signal a job");
                }
            }
            Action::Release { job } => {
                if let Some(h) = &rows[picked[job].0].runtime.handle
                    && let Err(e) = state.backend.release(h).await
                {
                    tracing::warn!(error = %e, "cannot release a job");
                }
            }
            Action::Start { job } => {
                let i = picked[job].0;
                if start(state, &r, &mut rows[i], now).await? {
                    changed.push(i);
                }
            }
            Action::Resubmit { job } => {
                let old = &rows[picked[job].0];
                let next = JobRow::submitted(
                    &r.id,
                    old.replica_num,
                    old.job_num,
                    old.submission_num + 1,
                    old.job_spec.clone(),
                    now,
                );
                events.push(events::event(
                    &r.project_id,
                    None,
                    Target::Job {
                        id: &next.id,
                        name: &job_name(&next),
                    },
                    events::job_created("retry", next.status),
                    now,
                ));
                new_jobs.push(next);
            }
            Action::UpdateRun(RunUpdate {
                status,
                termination_reason,
                resubmission_attempt,
            }) => {
                r.status = status;
                r.termination_reason = termination_reason;
                r.resubmission_attempt = resubmission_attempt;
                r.last_processed_at = now;
                run_changed = true;
            }
        }
    }
    changed.sort_unstable();
    changed.dedup();
    for &i in &changed {
        let j = &rows[i];
        if old_statuses[i] != j.status {
            events.push(events::event(
                &r.project_id,
                None,
                Target::Job {
                    id: &j.id,
                    name: &job_name(j),
                },
                events::job_status_changed(
                    old_statuses[i],
                    j.status,
                    j.termination_reason,
                    j.termination_message.as_deref(),
                ),
                now,
            ));
        }
    }
    if run_changed && old_status != r.status {
        events.push(events::event(
            &r.project_id,
            None,
            Target::Run {
                id: &r.id,
                name: &r.run_name,
            },
            events::run_status_changed(old_status, r.status, r.termination_reason),
            now,
        ));
    }
    let changed_rows: Vec<JobRow> = changed.into_iter().map(|i| rows[i].clone()).collect();
    state
        .db
        .save_pass(&r, run_changed, changed_rows, new_jobs)
        .await?;
    state.db.record_events(events).await?;
    Ok(())
}

/// At start-up: jobs whose start was attempted by an earlier server process but whose outcome
/// was not saved (a crash in between). The backend says whether it started them. While the
/// server runs, a start that was not saved is simply tried again: starts are idempotent.
async fn recover_starts(state: &AppState) -> Result<(), StateError> {
    let runs = state.db.active_runs().await?;
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let now = Utc::now();
    for mut j in state.db.jobs_of_runs(&ids).await? {
        if j.status.is_started() && j.runtime.handle.is_none() {
            // Started by a server before job handles existed: nothing can observe or stop it.
            tracing::warn!(job = %j.id, "a job started by an earlier server version cannot be tracked");
            j.status = lifecycle::JobStatus::Failed;
            j.termination_reason = Some(lifecycle::JobTerminationReason::ExecutorError);
            j.termination_message = Some(
                "The job was started by an earlier version of the server, which cannot track it; stop its processes by hand if they still run".into(),
            );
            j.finished_at = Some(now);
            j.last_processed_at = now;
            state.db.save_job(&j).await?;
            continue;
        }
        if !(j.runtime.starting && j.runtime.handle.is_none()) {
            continue;
        }
        match state.backend.find(&j.id).await {
            Ok(Some(handle)) => {
                j.runtime.handle = Some(handle);
                j.runtime.started_at.get_or_insert(now);
                j.runtime.starting = false;
                if j.status == lifecycle::JobStatus::Submitted {
                    j.status = lifecycle::JobStatus::Provisioning;
                }
                j.last_processed_at = now;
                state.db.save_job(&j).await?;
            }
            Ok(None) => {
                j.runtime.starting = false;
                state.db.save_job(&j).await?;
            }
            Err(e) => tracing::warn!(job = %j.id, error = %e, "cannot look a job up"),
        }
    }
    Ok(())
}

/// Starts a submitted job; returns whether the row changed.
async fn start(
    state: &AppState,
    r: &RunRow,
    j: &mut JobRow,
    now: DateTime<Utc>,
) -> Result<bool, StateError> {
    let outcome = match launch(state, r, j).await {
        Err(message) => StartOutcome::Failed(message),
        Ok(launch) => {
            // Recorded first: a crash while starting is recovered through `find`, never by
            // starting the job twice.
            if !j.runtime.starting {
                j.runtime.starting = true;
                state.db.save_job(j).await?;
            }
            match state.backend.start(launch).await {
                Ok(handle) => {
                    j.runtime.handle = Some(handle);
                    j.runtime.started_at = Some(now);
                    StartOutcome::Started
                }
                Err(StartError::Busy(why)) => {
                    tracing::debug!(job = %j.id, %why, "waiting for capacity");
                    StartOutcome::Busy
                }
                Err(StartError::NoOffers(why)) => {
                    StartOutcome::NoOffers(format!("No offers: {why}"))
                }
                Err(StartError::Failed(why)) => StartOutcome::Failed(why),
            }
        }
    };
    match lifecycle::on_start(&fields_of(j), &outcome, now) {
        Some(fields) => {
            j.runtime.starting = false;
            apply_fields(j, &fields, now);
            Ok(true)
        }
        // It waits for capacity; `starting` stays recorded until a start goes through (no
        // write per pass while it waits).
        None => Ok(false),
    }
}

/// What the backend needs to start a job: its spec and command, its environment with secrets
/// resolved, its files, where its log goes.
async fn launch(state: &AppState, r: &RunRow, j: &JobRow) -> Result<Launch, String> {
    let spec: JobSpec = serde_json::from_str(&j.job_spec)
        .map_err(|e| format!("the stored job spec is invalid: {e}"))?;
    let run_spec: serde_json::Value = serde_json::from_str(&r.run_spec)
        .map_err(|e| format!("the stored run spec is invalid: {e}"))?;
    let sub = super::submit::parse(&run_spec).map_err(|e| e.to_string())?;
    let input = sub.input(&r.run_name, &state.default_python);
    let command = jobspec::command_of(&input, &spec).map_err(|e| e.0)?;
    // Values as stored; only those the environment refers to are decrypted.
    let secrets: Vec<(String, String)> = state
        .db
        .secrets(&r.project_id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    let mut env = Vec::with_capacity(spec.env.0.len() + 8);
    {
        let undecryptable = std::cell::RefCell::new(None);
        let lookup = |ns: &str, name: &str| {
            let (_, stored) = secrets.iter().find(|(n, _)| ns == "secrets" && n == name)?;
            state
                .db
                .decrypt(stored)
                .map_err(|e| *undecryptable.borrow_mut() = Some(format!("secret {name}: {e}")))
                .ok()
        };
        for (key, value) in &spec.env.0 {
            let value = if value.contains("${{") {
                crate::config::interpolate::interpolate_or_error(value, &lookup, &["groups"])
                    .map_err(|e| match undecryptable.take() {
                        Some(why) => format!("Secrets decryption error: {why}"),
                        None => format!("Secrets interpolation error: {}", e.0),
                    })?
            } else {
                value.clone()
            };
            env.push((key.clone(), value));
        }
    }
    env.extend([
        ("DSTACK_RUN_NAME".to_string(), r.run_name.clone()),
        ("DSTACK_RUN_ID".into(), r.id.clone()),
        ("DSTACK_JOB_ID".into(), j.id.clone()),
        ("DSTACK_REPO_ID".into(), "none".into()),
        ("DSTACK_NODES_NUM".into(), spec.jobs_per_replica.to_string()),
        ("DSTACK_NODE_RANK".into(), spec.job_num.to_string()),
        ("DSTACK_REPLICA_NUM".into(), spec.replica_num.to_string()),
    ]);
    let files = spec
        .file_archives
        .iter()
        .map(|a| {
            storage::archive_path(&state.dir, &a.id)
                .map(|p| (p, a.path.clone()))
                .ok_or_else(|| format!("invalid file archive id {:?}", a.id))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let code = match &spec.repo_code_hash {
        Some(hash) => Some((
            storage::code_path(&state.dir, &r.project_id, hash)
                .ok_or_else(|| format!("invalid repo code hash {hash:?}"))?,
            spec.repo_dir.clone(),
        )),
        None => None,
    };
    let log_file = state
        .logs
        .path(&r.project_id, &r.id, &j.id)
        .ok_or_else(|| "invalid ids for the log file".to_string())?;
    Ok(Launch {
        job_id: j.id.clone(),
        spec,
        command,
        env,
        files,
        code,
        log_file,
    })
}
