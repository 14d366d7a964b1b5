//! [`decide`]: one step of a run's lifecycle.

use std::collections::BTreeMap;

use super::{
    Action, ExitStatus, Job, JobFields, JobStatus, JobTerminationReason, Observed, RetryEvent, Run,
    RunStatus, RunTerminationReason, RunUpdate, Signal, StartOutcome, StopRequest, TERM_REPEAT,
    Time, pending_retry_delay,
};

/// What to do for `run` at `now`. Jobs are never changed behind the model's back: every change
/// of a job's fields comes back as [`Action::UpdateJob`], in job order, before the run's update.
pub fn decide(run: &Run, now: Time) -> Vec<Action> {
    if run.status.is_finished() {
        return Vec::new();
    }
    let mut next: Vec<JobFields> = run.jobs.iter().map(|j| j.fields.clone()).collect();
    for (job, fields) in run.jobs.iter().zip(next.iter_mut()) {
        observe(job, fields, now);
    }

    let mut status = run.status;
    let mut reason = run.termination_reason;
    let mut attempt = run.resubmission_attempt;
    let mut resubmit: Vec<usize> = Vec::new();

    if status != RunStatus::Terminating {
        if let Some(stop) = run.stop {
            status = RunStatus::Terminating;
            reason = Some(match stop {
                StopRequest::Stop => RunTerminationReason::StoppedByUser,
                StopRequest::Abort => RunTerminationReason::AbortedByUser,
            });
        }
    } else if run.stop == Some(StopRequest::Abort)
        && reason != Some(RunTerminationReason::AbortedByUser)
    {
        // An abort while a graceful stop is under way kills at once.
        reason = Some(RunTerminationReason::AbortedByUser);
    }

    if status == RunStatus::Pending {
        if ready_for_resubmission(run, now) {
            resubmit.extend((0..run.jobs.len()).filter(|&i| run.jobs[i].latest));
            status = RunStatus::Submitted;
        }
    } else if status != RunStatus::Terminating {
        let analysis = analyze(run, &next, now);
        match transition(&analysis) {
            Transition::Terminate(r) => {
                status = RunStatus::Terminating;
                reason = Some(r);
            }
            Transition::Pending => {
                terminate_for_retry(run, &mut next, &analysis.replicas_to_retry, now);
                status = RunStatus::Pending;
                reason = None;
                attempt += 1;
            }
            Transition::Active(s) => {
                if !analysis.replicas_to_retry.is_empty() {
                    terminate_for_retry(run, &mut next, &analysis.replicas_to_retry, now);
                    resubmit.extend(jobs_of_replicas(run, &analysis.replicas_to_retry));
                }
                if s == RunStatus::Provisioning && status != RunStatus::Provisioning {
                    attempt = 0;
                }
                status = s;
            }
        }
    }

    if status == RunStatus::Terminating {
        let run_reason = reason.unwrap_or(RunTerminationReason::ServerError);
        stop_jobs(&mut next, run_reason, now);
        if next.iter().all(|f| f.status.is_finished()) {
            status = run_reason.to_status();
        }
    }

    let mut actions = Vec::new();
    let mut signals = Vec::new();
    for (i, (job, fields)) in run.jobs.iter().zip(next.iter_mut()).enumerate() {
        if let Some(signal) = signal_for(job, fields, now) {
            signals.push(Action::Signal { job: i, signal });
        }
    }
    for (i, (job, fields)) in run.jobs.iter().zip(next.iter()).enumerate() {
        if *fields != job.fields {
            actions.push(Action::UpdateJob {
                job: i,
                fields: fields.clone(),
            });
        }
        if fields.status.is_finished() && !job.fields.status.is_finished() && job.was_started() {
            actions.push(Action::Release { job: i });
        }
    }
    actions.extend(signals);
    if !matches!(status, RunStatus::Terminating | RunStatus::Pending) && !status.is_finished() {
        for (i, (job, fields)) in run.jobs.iter().zip(next.iter()).enumerate() {
            if job.latest && fields.status == JobStatus::Submitted && !resubmit.contains(&i) {
                actions.push(Action::Start { job: i });
            }
        }
    }
    actions.extend(resubmit.into_iter().map(|job| Action::Resubmit { job }));
    if status != run.status
        || reason != run.termination_reason
        || attempt != run.resubmission_attempt
    {
        actions.push(Action::UpdateRun(RunUpdate {
            status,
            termination_reason: reason,
            resubmission_attempt: attempt,
        }));
    }
    actions
}

/// The fields of a submitted job after a start attempt; `None` when nothing changes (it waits).
pub fn on_start(fields: &JobFields, outcome: &StartOutcome, now: Time) -> Option<JobFields> {
    let mut next = fields.clone();
    match outcome {
        StartOutcome::Started => next.status = JobStatus::Provisioning,
        StartOutcome::Busy => return None,
        StartOutcome::NoOffers(message) => fail(
            &mut next,
            JobTerminationReason::FailedToStartDueToNoCapacity,
            Some(message.clone()),
            now,
        ),
        StartOutcome::Failed(message) => fail(
            &mut next,
            JobTerminationReason::ExecutorError,
            Some(message.clone()),
            now,
        ),
    }
    Some(next)
}

impl Job {
    fn was_started(&self) -> bool {
        self.started_at.is_some()
    }

    /// When the newest started submission of this job was last changed (the retry window of a
    /// job that ran starts there).
    fn last_provisioned_at(&self, fields: &JobFields) -> Option<Time> {
        if self.was_started() {
            Some(fields.finished_at.unwrap_or(self.last_processed_at))
        } else {
            self.earlier_provisioned_at
        }
    }
}

fn fail(fields: &mut JobFields, reason: JobTerminationReason, message: Option<String>, now: Time) {
    fields.status = reason.to_status();
    fields.termination_reason = Some(reason);
    fields.termination_message = message;
    fields.finished_at = Some(now);
}

/// The exit code the API shows for an exit status (a signal `n` reads as `128 + n`).
fn exit_code(exit: ExitStatus) -> Option<i64> {
    match (exit.code, exit.signal) {
        (Some(code), _) => Some(i64::from(code)),
        (None, Some(signal)) => Some(128 + i64::from(signal)),
        (None, None) => None,
    }
}

/// Applies what was observed of a started job, and its `max_duration`.
fn observe(job: &Job, fields: &mut JobFields, now: Time) {
    match fields.status {
        JobStatus::Provisioning | JobStatus::Pulling | JobStatus::Running => {
            match &job.observed {
                Observed::Exited(exit) => {
                    fields.exit_status = exit_code(*exit);
                    if exit.code == Some(0) {
                        fail(fields, JobTerminationReason::DoneByRunner, None, now);
                    } else {
                        fail(
                            fields,
                            JobTerminationReason::ContainerExitedWithError,
                            None,
                            now,
                        );
                    }
                    return;
                }
                Observed::Lost(message) => {
                    fail(
                        fields,
                        JobTerminationReason::ExecutorError,
                        Some(message.clone()),
                        now,
                    );
                    return;
                }
                Observed::Running => fields.status = JobStatus::Running,
                Observed::Nothing | Observed::Unknown | Observed::Starting => {}
            }
            if let (Some(max), Some(started)) = (job.policy.max_duration, job.started_at)
                && (now - started).num_seconds() >= max
            {
                fields.status = JobStatus::Terminating;
                fields.termination_reason = Some(JobTerminationReason::MaxDurationExceeded);
                fields.stop_requested_at = Some(now);
            }
        }
        JobStatus::Terminating => {
            let exit = match &job.observed {
                Observed::Exited(exit) => Some(*exit),
                Observed::Lost(_) => None,
                _ => return,
            };
            let reason = fields
                .termination_reason
                .unwrap_or(JobTerminationReason::TerminatedByServer);
            fields.status = reason.to_status();
            fields.termination_reason = Some(reason);
            fields.exit_status = exit.and_then(exit_code);
            fields.finished_at = Some(now);
        }
        _ => {}
    }
}

/// What one replica contributes to the run's status.
#[derive(Debug, Default)]
struct Analysis {
    contributed: Vec<RunStatus>,
    failure: Option<RunTerminationReason>,
    replicas_to_retry: Vec<i64>,
    max_duration: bool,
}

fn analyze(run: &Run, next: &[JobFields], now: Time) -> Analysis {
    let mut replicas: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, job) in run.jobs.iter().enumerate() {
        if job.latest {
            replicas.entry(job.replica_num).or_default().push(i);
        }
    }
    let mut analysis = Analysis::default();
    for (replica, jobs) in replicas {
        let mut contributed = Vec::new();
        let mut failure: Option<RunTerminationReason> = None;
        let mut needs_retry = false;
        for i in jobs {
            let (job, fields) = (&run.jobs[i], &next[i]);
            let reason = fields.termination_reason;
            if fields.status == JobStatus::Done
                || (fields.status == JobStatus::Terminating
                    && reason == Some(JobTerminationReason::DoneByRunner))
            {
                contributed.push(RunStatus::Done);
                continue;
            }
            if reason == Some(JobTerminationReason::ScaledDown) {
                continue;
            }
            match fields.status {
                JobStatus::Running => {
                    contributed.push(RunStatus::Running);
                    continue;
                }
                JobStatus::Provisioning | JobStatus::Pulling => {
                    contributed.push(RunStatus::Provisioning);
                    continue;
                }
                JobStatus::Submitted => {
                    contributed.push(RunStatus::Submitted);
                    continue;
                }
                _ => {}
            }
            if reason == Some(JobTerminationReason::MaxDurationExceeded) {
                analysis.max_duration = true;
                continue;
            }
            // Failed, or stopping/stopped for a reason other than done or scaled down.
            match retry_elapsed(run, job, fields, now) {
                None => {
                    failure = Some(RunTerminationReason::JobFailed);
                }
                Some(elapsed) => {
                    let limit = job.policy.retry.as_ref().map_or(0, |r| r.duration);
                    if elapsed > limit {
                        failure.get_or_insert(RunTerminationReason::RetryLimitExceeded);
                    } else {
                        needs_retry = true;
                    }
                }
            }
        }
        if let Some(f) = failure {
            analysis.contributed.push(RunStatus::Failed);
            if analysis.failure != Some(RunTerminationReason::JobFailed) {
                analysis.failure = Some(f);
            }
        } else if needs_retry {
            analysis.replicas_to_retry.push(replica);
        } else {
            analysis.contributed.extend(contributed);
        }
    }
    analysis
}

/// Seconds the job's retry window has run, or `None` when no retry applies to how it ended.
fn retry_elapsed(run: &Run, job: &Job, fields: &JobFields, now: Time) -> Option<i64> {
    let retry = job.policy.retry.as_ref()?;
    let event = fields.termination_reason?.to_retry_event()?;
    let provisioned = job.last_provisioned_at(fields);
    if event == RetryEvent::NoCapacity
        && provisioned.is_none()
        && retry.on_events.contains(&RetryEvent::NoCapacity)
    {
        return Some((now - run.submitted_at).num_seconds());
    }
    match provisioned {
        Some(at) if retry.on_events.contains(&event) => Some((now - at).num_seconds()),
        _ => None,
    }
}

enum Transition {
    Terminate(RunTerminationReason),
    Pending,
    Active(RunStatus),
}

/// The run's next status from what its replicas contribute, by priority: FAILED > RUNNING >
/// PROVISIONING > SUBMITTED > DONE.
fn transition(a: &Analysis) -> Transition {
    let has = |s: RunStatus| a.contributed.contains(&s);
    if has(RunStatus::Failed) {
        return Transition::Terminate(a.failure.unwrap_or(RunTerminationReason::JobFailed));
    }
    if a.max_duration {
        return Transition::Terminate(RunTerminationReason::MaxDurationExceeded);
    }
    for s in [
        RunStatus::Running,
        RunStatus::Provisioning,
        RunStatus::Submitted,
    ] {
        if has(s) {
            return Transition::Active(s);
        }
    }
    if has(RunStatus::Done) && a.replicas_to_retry.is_empty() {
        return Transition::Terminate(RunTerminationReason::AllJobsDone);
    }
    Transition::Pending
}

fn jobs_of_replicas<'a>(run: &'a Run, replicas: &'a [i64]) -> impl Iterator<Item = usize> + 'a {
    (0..run.jobs.len())
        .filter(move |&i| run.jobs[i].latest && replicas.contains(&run.jobs[i].replica_num))
}

/// Stops the unfinished jobs of replicas that are about to be submitted again.
fn terminate_for_retry(run: &Run, next: &mut [JobFields], replicas: &[i64], now: Time) {
    for i in jobs_of_replicas(run, replicas).collect::<Vec<_>>() {
        let fields = &mut next[i];
        if fields.status.is_finished() || fields.status == JobStatus::Terminating {
            continue;
        }
        begin_stop(
            run.jobs[i].was_started(),
            fields,
            JobTerminationReason::TerminatedByServer,
            Some("Run is to be resubmitted".into()),
            now,
        );
    }
}

/// Stops every unfinished job of a terminating run.
fn stop_jobs(next: &mut [JobFields], run_reason: RunTerminationReason, now: Time) {
    let reason = run_reason.to_job_termination_reason();
    for fields in next.iter_mut() {
        match fields.status {
            s if s.is_finished() => {}
            JobStatus::Terminating => {
                if reason == JobTerminationReason::AbortedByUser {
                    fields.termination_reason = Some(reason);
                }
            }
            JobStatus::Submitted => {
                begin_stop(false, fields, reason, None, now);
            }
            _ => begin_stop(true, fields, reason, None, now),
        }
    }
}

/// A job that never started ends at once; a started one goes `terminating`.
fn begin_stop(
    started: bool,
    fields: &mut JobFields,
    reason: JobTerminationReason,
    message: Option<String>,
    now: Time,
) {
    if started {
        fields.status = JobStatus::Terminating;
        fields.termination_reason = Some(reason);
        fields.termination_message = message;
        fields.stop_requested_at = Some(now);
    } else {
        fail(fields, reason, message, now);
    }
}

/// The signal a terminating job needs now: SIGTERM (again every [`TERM_REPEAT`] seconds),
/// SIGKILL once `stop_duration` has passed, or at once for an abort.
fn signal_for(job: &Job, fields: &mut JobFields, now: Time) -> Option<Signal> {
    if fields.status != JobStatus::Terminating || !job.was_started() {
        return None;
    }
    if fields.kill_sent {
        return None;
    }
    if fields.termination_reason == Some(JobTerminationReason::AbortedByUser) {
        fields.kill_sent = true;
        return Some(Signal::Kill);
    }
    let since = fields.stop_requested_at.unwrap_or(job.last_processed_at);
    if job
        .policy
        .stop_duration
        .is_some_and(|grace| (now - since).num_seconds() >= grace)
    {
        fields.kill_sent = true;
        return Some(Signal::Kill);
    }
    if fields
        .term_sent_at
        .is_none_or(|at| (now - at).num_seconds() >= TERM_REPEAT)
    {
        fields.term_sent_at = Some(now);
        return Some(Signal::Term);
    }
    None
}

fn ready_for_resubmission(run: &Run, now: Time) -> bool {
    if run.resubmission_attempt == 0 {
        return true;
    }
    let Some(last) = run.jobs.iter().map(|j| j.last_processed_at).max() else {
        return true;
    };
    (now - last).num_seconds() >= pending_retry_delay(run.resubmission_attempt)
}
