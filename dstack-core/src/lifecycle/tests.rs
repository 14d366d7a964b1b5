//! Table tests of the lifecycle: every job and run transition, every retry event and window,
//! `max_duration`, `stop_duration`, and the pending back-off.

use chrono::{Duration, TimeZone, Utc};

use super::*;

fn t(secs: i64) -> Time {
    Utc.timestamp_opt(1_800_000_000, 0)
        .single()
        .unwrap_or_default()
        + Duration::seconds(secs)
}

fn retry(events: &[RetryEvent], duration: i64) -> JobPolicy {
    JobPolicy {
        retry: Some(RetryPolicy {
            on_events: events.to_vec(),
            duration,
        }),
        max_duration: None,
        stop_duration: Some(300),
    }
}

fn job(status: JobStatus) -> Job {
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

fn with(mut j: Job, f: impl FnOnce(&mut Job)) -> Job {
    f(&mut j);
    j
}

fn finished(status: JobStatus, reason: JobTerminationReason) -> Job {
    with(job(status), |j| {
        j.fields.termination_reason = Some(reason);
        j.fields.finished_at = Some(t(0));
        j.started_at = Some(t(0));
    })
}

fn run(status: RunStatus, jobs: Vec<Job>) -> Run {
    Run {
        status,
        termination_reason: None,
        stop: None,
        submitted_at: t(0),
        resubmission_attempt: 0,
        jobs,
    }
}

fn exited(code: i32) -> Observed {
    Observed::Exited(ExitStatus {
        code: Some(code),
        signal: None,
    })
}

fn job_update(actions: &[Action], index: usize) -> Option<&JobFields> {
    actions.iter().find_map(|a| match a {
        Action::UpdateJob { job, fields } if *job == index => Some(fields),
        _ => None,
    })
}

fn run_update(actions: &[Action]) -> Option<&RunUpdate> {
    actions.iter().find_map(|a| match a {
        Action::UpdateRun(u) => Some(u),
        _ => None,
    })
}

fn signals(actions: &[Action]) -> Vec<(usize, Signal)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal { job, signal } => Some((*job, *signal)),
            _ => None,
        })
        .collect()
}

fn has(actions: &[Action], wanted: &Action) -> bool {
    actions.contains(wanted)
}

/// (job before, what was observed, expected job status and reason after one pass).
#[test]
fn job_transitions_from_observations() {
    use JobStatus as S;
    use JobTerminationReason as R;
    let cases: Vec<(
        JobStatus,
        Option<R>,
        Observed,
        JobStatus,
        Option<R>,
        Option<i64>,
    )> = vec![
        (
            S::Provisioning,
            None,
            Observed::Starting,
            S::Provisioning,
            None,
            None,
        ),
        (
            S::Provisioning,
            None,
            Observed::Running,
            S::Running,
            None,
            None,
        ),
        (
            S::Provisioning,
            None,
            Observed::Unknown,
            S::Provisioning,
            None,
            None,
        ),
        (S::Pulling, None, Observed::Running, S::Running, None, None),
        (S::Running, None, Observed::Running, S::Running, None, None),
        (S::Running, None, Observed::Unknown, S::Running, None, None),
        (S::Running, None, Observed::Nothing, S::Running, None, None),
        (
            S::Running,
            None,
            exited(0),
            S::Done,
            Some(R::DoneByRunner),
            Some(0),
        ),
        (
            S::Provisioning,
            None,
            exited(0),
            S::Done,
            Some(R::DoneByRunner),
            Some(0),
        ),
        (
            S::Running,
            None,
            exited(3),
            S::Failed,
            Some(R::ContainerExitedWithError),
            Some(3),
        ),
        (
            S::Running,
            None,
            Observed::Exited(ExitStatus {
                code: None,
                signal: Some(9),
            }),
            S::Failed,
            Some(R::ContainerExitedWithError),
            Some(137),
        ),
        (
            S::Running,
            None,
            Observed::Lost("gone".into()),
            S::Failed,
            Some(R::ExecutorError),
            None,
        ),
        (
            S::Terminating,
            Some(R::TerminatedByUser),
            exited(143),
            S::Terminated,
            Some(R::TerminatedByUser),
            Some(143),
        ),
        (
            S::Terminating,
            Some(R::AbortedByUser),
            Observed::Exited(ExitStatus {
                code: None,
                signal: Some(9),
            }),
            S::Aborted,
            Some(R::AbortedByUser),
            Some(137),
        ),
        (
            S::Terminating,
            Some(R::MaxDurationExceeded),
            exited(0),
            S::Terminated,
            Some(R::MaxDurationExceeded),
            Some(0),
        ),
        (
            S::Terminating,
            Some(R::TerminatedByServer),
            Observed::Lost("gone".into()),
            S::Terminated,
            Some(R::TerminatedByServer),
            None,
        ),
        (
            S::Terminating,
            Some(R::TerminatedByUser),
            Observed::Unknown,
            S::Terminating,
            Some(R::TerminatedByUser),
            None,
        ),
    ];
    for (before, reason, observed, after, after_reason, exit) in cases {
        let j = with(job(before), |j| {
            j.fields.termination_reason = reason;
            j.observed = observed.clone();
        });
        let mut r = run(RunStatus::Running, vec![j]);
        if before == S::Terminating {
            r.status = RunStatus::Terminating;
            r.termination_reason = Some(RunTerminationReason::StoppedByUser);
        }
        let actions = decide(&r, t(10));
        let fields = job_update(&actions, 0)
            .cloned()
            .unwrap_or(r.jobs[0].fields.clone());
        assert_eq!(
            (fields.status, fields.termination_reason),
            (after, after_reason),
            "{before:?} {observed:?}"
        );
        if after.is_finished() {
            assert_eq!(fields.exit_status, exit, "{before:?} {observed:?}");
            assert_eq!(fields.finished_at, Some(t(10)));
            assert!(
                has(&actions, &Action::Release { job: 0 }),
                "{before:?} {observed:?}"
            );
        } else {
            assert!(!has(&actions, &Action::Release { job: 0 }));
        }
    }
}

#[test]
fn an_error_while_observing_is_never_evidence() {
    for (status, run_status) in [
        (JobStatus::Provisioning, RunStatus::Provisioning),
        (JobStatus::Running, RunStatus::Running),
        (JobStatus::Terminating, RunStatus::Terminating),
    ] {
        let j = with(job(status), |j| {
            j.observed = Observed::Unknown;
            j.fields.term_sent_at = Some(t(0));
            j.fields.stop_requested_at = Some(t(0));
            j.fields.termination_reason = (status == JobStatus::Terminating)
                .then_some(JobTerminationReason::TerminatedByUser);
        });
        let r = Run {
            termination_reason: (run_status == RunStatus::Terminating)
                .then_some(RunTerminationReason::StoppedByUser),
            ..run(run_status, vec![j])
        };
        let actions = decide(&r, t(5));
        assert!(job_update(&actions, 0).is_none(), "{status:?}");
        assert!(run_update(&actions).is_none(), "{status:?}");
    }
}

#[test]
fn start_outcomes() {
    let fields = JobFields::submitted();
    let started = on_start(&fields, &StartOutcome::Started, t(1));
    assert_eq!(started.map(|f| f.status), Some(JobStatus::Provisioning));
    assert_eq!(on_start(&fields, &StartOutcome::Busy, t(1)), None);
    let none = on_start(&fields, &StartOutcome::NoOffers("no".into()), t(1));
    assert_eq!(
        none.as_ref().map(|f| (f.status, f.termination_reason)),
        Some((
            JobStatus::Failed,
            Some(JobTerminationReason::FailedToStartDueToNoCapacity)
        ))
    );
    assert_eq!(none.and_then(|f| f.finished_at), Some(t(1)));
    let failed = on_start(&fields, &StartOutcome::Failed("boom".into()), t(1));
    assert_eq!(
        failed.map(|f| (f.termination_reason, f.termination_message)),
        Some((
            Some(JobTerminationReason::ExecutorError),
            Some("boom".to_string())
        ))
    );
}

#[test]
fn submitted_jobs_are_started_only_while_the_run_is_active() {
    let r = run(RunStatus::Submitted, vec![job(JobStatus::Submitted)]);
    assert!(has(&decide(&r, t(1)), &Action::Start { job: 0 }));
    let mut stopping = r.clone();
    stopping.stop = Some(StopRequest::Stop);
    assert!(!has(&decide(&stopping, t(1)), &Action::Start { job: 0 }));
    let mut pending = r;
    pending.status = RunStatus::Pending;
    pending.resubmission_attempt = 1;
    assert!(!has(&decide(&pending, t(1)), &Action::Start { job: 0 }));
}

/// (latest job statuses of a one-job-per-replica run, expected run status and reason).
#[test]
fn run_status_from_replicas_by_priority() {
    use JobStatus as S;
    use RunStatus as R;
    let failed = || finished(S::Failed, JobTerminationReason::ContainerExitedWithError);
    let done = || finished(S::Done, JobTerminationReason::DoneByRunner);
    let cases: Vec<(Vec<Job>, RunStatus, Option<RunTerminationReason>)> = vec![
        (vec![job(S::Submitted)], R::Submitted, None),
        (vec![job(S::Provisioning)], R::Provisioning, None),
        (vec![job(S::Pulling)], R::Provisioning, None),
        (vec![job(S::Running)], R::Running, None),
        (
            vec![job(S::Running), job(S::Provisioning)],
            R::Running,
            None,
        ),
        (
            vec![job(S::Submitted), job(S::Provisioning)],
            R::Provisioning,
            None,
        ),
        (vec![done(), job(S::Running)], R::Running, None),
        (vec![done(), job(S::Submitted)], R::Submitted, None),
        (
            vec![done()],
            R::Terminating,
            Some(RunTerminationReason::AllJobsDone),
        ),
        (
            vec![done(), done()],
            R::Terminating,
            Some(RunTerminationReason::AllJobsDone),
        ),
        (
            vec![failed(), job(S::Running)],
            R::Terminating,
            Some(RunTerminationReason::JobFailed),
        ),
        (
            vec![failed(), done()],
            R::Terminating,
            Some(RunTerminationReason::JobFailed),
        ),
        (
            vec![finished(S::Aborted, JobTerminationReason::AbortedByUser)],
            R::Terminating,
            Some(RunTerminationReason::JobFailed),
        ),
        (
            vec![
                finished(S::Terminated, JobTerminationReason::ScaledDown),
                job(S::Running),
            ],
            R::Running,
            None,
        ),
    ];
    for (jobs, status, reason) in cases {
        let jobs: Vec<Job> = jobs
            .into_iter()
            .enumerate()
            .map(|(i, j)| with(j, |j| j.replica_num = i as i64))
            .collect();
        let statuses: Vec<JobStatus> = jobs.iter().map(|j| j.fields.status).collect();
        let r = run(RunStatus::Submitted, jobs);
        let actions = decide(&r, t(1));
        let got = run_update(&actions)
            .map(|u| (u.status, u.termination_reason))
            .unwrap_or((r.status, r.termination_reason));
        // A terminating run whose jobs are all finished ends in the same pass.
        let expected = match reason {
            Some(reason) if statuses.iter().all(|s| s.is_finished()) => {
                (reason.to_status(), Some(reason))
            }
            _ => (status, reason),
        };
        assert_eq!(got, expected, "{statuses:?}");
    }
}

#[test]
fn a_failed_job_stops_its_siblings_then_the_run_fails() {
    let failed = with(
        finished(
            JobStatus::Failed,
            JobTerminationReason::ContainerExitedWithError,
        ),
        |j| j.job_num = 0,
    );
    let sibling = with(job(JobStatus::Running), |j| j.job_num = 1);
    let r = run(RunStatus::Running, vec![failed, sibling]);
    let actions = decide(&r, t(2));
    assert_eq!(
        run_update(&actions).map(|u| (u.status, u.termination_reason)),
        Some((
            RunStatus::Terminating,
            Some(RunTerminationReason::JobFailed)
        ))
    );
    let s = job_update(&actions, 1).cloned();
    assert_eq!(
        s.as_ref().map(|f| (f.status, f.termination_reason)),
        Some((
            JobStatus::Terminating,
            Some(JobTerminationReason::TerminatedByServer)
        ))
    );
    assert_eq!(signals(&actions), vec![(1, Signal::Term)]);

    // Next pass: the sibling exits; the run ends `failed`.
    let mut r2 = r.clone();
    r2.status = RunStatus::Terminating;
    r2.termination_reason = Some(RunTerminationReason::JobFailed);
    r2.jobs[1].fields = s.unwrap_or_else(JobFields::submitted);
    r2.jobs[1].observed = exited(143);
    let actions = decide(&r2, t(3));
    assert_eq!(
        run_update(&actions).map(|u| u.status),
        Some(RunStatus::Failed)
    );
    assert_eq!(
        job_update(&actions, 1).map(|f| f.status),
        Some(JobStatus::Terminated)
    );
}

#[test]
fn stop_and_abort_requests() {
    use JobStatus as S;
    for (stop, run_reason, job_reason, signal, final_status) in [
        (
            StopRequest::Stop,
            RunTerminationReason::StoppedByUser,
            JobTerminationReason::TerminatedByUser,
            Signal::Term,
            S::Terminated,
        ),
        (
            StopRequest::Abort,
            RunTerminationReason::AbortedByUser,
            JobTerminationReason::AbortedByUser,
            Signal::Kill,
            S::Aborted,
        ),
    ] {
        let r = Run {
            stop: Some(stop),
            ..run(
                RunStatus::Running,
                vec![
                    job(S::Running),
                    with(job(S::Submitted), |j| j.replica_num = 1),
                    with(job(S::Provisioning), |j| j.replica_num = 2),
                ],
            )
        };
        let actions = decide(&r, t(4));
        assert_eq!(
            run_update(&actions).map(|u| (u.status, u.termination_reason)),
            Some((RunStatus::Terminating, Some(run_reason)))
        );
        let running = job_update(&actions, 0)
            .cloned()
            .unwrap_or(JobFields::submitted());
        assert_eq!(running.status, S::Terminating);
        assert_eq!(running.termination_reason, Some(job_reason));
        assert_eq!(running.stop_requested_at, Some(t(4)));
        // A job that never started ends at once, without a signal.
        let submitted = job_update(&actions, 1)
            .cloned()
            .unwrap_or(JobFields::submitted());
        assert_eq!(submitted.status, final_status);
        assert_eq!(submitted.termination_reason, Some(job_reason));
        assert_eq!(signals(&actions), vec![(0, signal), (2, signal)]);
        assert!(!actions.iter().any(|a| matches!(a, Action::Start { .. })));
    }
}

#[test]
fn stop_while_everything_is_finished_ends_the_run_at_once() {
    let r = Run {
        stop: Some(StopRequest::Stop),
        ..run(RunStatus::Submitted, vec![job(JobStatus::Submitted)])
    };
    let actions = decide(&r, t(1));
    assert_eq!(
        run_update(&actions).map(|u| (u.status, u.termination_reason)),
        Some((
            RunStatus::Terminated,
            Some(RunTerminationReason::StoppedByUser)
        ))
    );
    assert_eq!(
        job_update(&actions, 0).map(|f| f.status),
        Some(JobStatus::Terminated)
    );
}

#[test]
fn stop_duration_then_kill() {
    let terminating = |term_at: Option<i64>, kill_sent: bool, stop_duration: Option<i64>| {
        let j = with(job(JobStatus::Terminating), |j| {
            j.fields.termination_reason = Some(JobTerminationReason::TerminatedByUser);
            j.fields.stop_requested_at = Some(t(0));
            j.fields.term_sent_at = term_at.map(t);
            j.fields.kill_sent = kill_sent;
            j.policy.stop_duration = stop_duration;
            j.observed = Observed::Running;
        });
        Run {
            termination_reason: Some(RunTerminationReason::StoppedByUser),
            ..run(RunStatus::Terminating, vec![j])
        }
    };
    // (last SIGTERM, kill sent, stop_duration, seconds since the stop, expected signal)
    for (term, kill, grace, at, expected) in [
        (None, false, Some(300), 0, Some(Signal::Term)),
        (Some(0), false, Some(300), 9, None),
        // SIGTERM again every TERM_REPEAT seconds until the grace ends.
        (Some(0), false, Some(300), TERM_REPEAT, Some(Signal::Term)),
        (Some(290), false, Some(300), 299, None),
        (Some(290), false, Some(300), 300, Some(Signal::Kill)),
        (Some(0), false, Some(0), 1, Some(Signal::Kill)),
        (Some(0), true, Some(300), 1000, None),
        (Some(99_995), false, None, 100_000, None),
        (Some(0), false, None, 100_000, Some(Signal::Term)),
    ] {
        let actions = decide(&terminating(term, kill, grace), t(at));
        let got = signals(&actions).first().map(|(_, s)| *s);
        assert_eq!(
            got, expected,
            "term={term:?} kill={kill} grace={grace:?} at={at}"
        );
        if let Some(s) = got {
            let f = job_update(&actions, 0)
                .cloned()
                .unwrap_or(JobFields::submitted());
            match s {
                Signal::Term => assert_eq!(f.term_sent_at, Some(t(at))),
                Signal::Kill => assert!(f.kill_sent),
            }
        }
    }
}

#[test]
fn abort_during_a_graceful_stop_kills_at_once() {
    let j = with(job(JobStatus::Terminating), |j| {
        j.fields.termination_reason = Some(JobTerminationReason::TerminatedByUser);
        j.fields.term_sent_at = Some(t(0));
        j.fields.stop_requested_at = Some(t(0));
    });
    let r = Run {
        stop: Some(StopRequest::Abort),
        termination_reason: Some(RunTerminationReason::StoppedByUser),
        ..run(RunStatus::Terminating, vec![j])
    };
    let actions = decide(&r, t(1));
    assert_eq!(signals(&actions), vec![(0, Signal::Kill)]);
    assert_eq!(
        run_update(&actions).and_then(|u| u.termination_reason),
        Some(RunTerminationReason::AbortedByUser)
    );
}

#[test]
fn max_duration_stops_the_job_and_names_the_run_reason() {
    let j = with(job(JobStatus::Running), |j| {
        j.policy.max_duration = Some(60);
        j.started_at = Some(t(0));
        j.observed = Observed::Running;
    });
    let r = run(RunStatus::Running, vec![j]);
    assert!(decide(&r, t(59)).is_empty());
    let actions = decide(&r, t(60));
    let f = job_update(&actions, 0)
        .cloned()
        .unwrap_or(JobFields::submitted());
    assert_eq!(
        (f.status, f.termination_reason),
        (
            JobStatus::Terminating,
            Some(JobTerminationReason::MaxDurationExceeded)
        )
    );
    assert_eq!(signals(&actions), vec![(0, Signal::Term)]);
    assert_eq!(
        run_update(&actions).map(|u| (u.status, u.termination_reason)),
        Some((
            RunStatus::Terminating,
            Some(RunTerminationReason::MaxDurationExceeded)
        ))
    );
    // The job exits: the job is `terminated`, the run too, both for `max_duration_exceeded`.
    let mut r2 = r.clone();
    r2.status = RunStatus::Terminating;
    r2.termination_reason = Some(RunTerminationReason::MaxDurationExceeded);
    r2.jobs[0].fields = f;
    r2.jobs[0].observed = exited(143);
    let actions = decide(&r2, t(61));
    assert_eq!(
        job_update(&actions, 0).map(|f| (f.status, f.termination_reason)),
        Some((
            JobStatus::Terminated,
            Some(JobTerminationReason::MaxDurationExceeded)
        ))
    );
    assert_eq!(
        run_update(&actions).map(|u| (u.status, u.termination_reason)),
        Some((
            RunStatus::Terminated,
            Some(RunTerminationReason::MaxDurationExceeded)
        ))
    );
}

#[test]
fn retry_events_map_from_termination_reasons() {
    use JobTerminationReason as R;
    for reason in R::ALL {
        let expected = match reason {
            R::FailedToStartDueToNoCapacity => Some(RetryEvent::NoCapacity),
            R::InterruptedByNoCapacity => Some(RetryEvent::Interruption),
            r if r.to_status() == JobStatus::Failed => Some(RetryEvent::Error),
            _ => None,
        };
        assert_eq!(reason.to_retry_event(), expected, "{reason}");
    }
    assert_eq!(R::MaxDurationExceeded.to_retry_event(), None);
    assert_eq!(R::TerminatedByUser.to_retry_event(), None);
    assert_eq!(R::ExecutorError.to_retry_event(), Some(RetryEvent::Error));
}

/// (policy events, how the job ended, started before?, seconds since the window start,
/// expected: retried (`None`) or the run's failure reason).
#[test]
fn retry_windows_per_event() {
    use JobTerminationReason as J;
    use RetryEvent as E;
    use RunTerminationReason as R;
    let all = [E::NoCapacity, E::Interruption, E::Error];
    let cases: Vec<(Option<Vec<E>>, J, bool, i64, Option<R>)> = vec![
        // No retry policy: any failure fails the run.
        (
            None,
            J::ContainerExitedWithError,
            true,
            0,
            Some(R::JobFailed),
        ),
        (
            None,
            J::FailedToStartDueToNoCapacity,
            false,
            0,
            Some(R::JobFailed),
        ),
        // no-capacity before anything ran: the window starts at the run's submission.
        (
            Some(all.to_vec()),
            J::FailedToStartDueToNoCapacity,
            false,
            3600,
            None,
        ),
        (
            Some(all.to_vec()),
            J::FailedToStartDueToNoCapacity,
            false,
            3601,
            Some(R::RetryLimitExceeded),
        ),
        (
            Some(vec![E::Error]),
            J::FailedToStartDueToNoCapacity,
            false,
            10,
            Some(R::JobFailed),
        ),
        // Errors after the job ran: the window starts when that submission was last changed.
        (
            Some(all.to_vec()),
            J::ContainerExitedWithError,
            true,
            10,
            None,
        ),
        (
            Some(all.to_vec()),
            J::ExecutorError,
            true,
            3601,
            Some(R::RetryLimitExceeded),
        ),
        (
            Some(vec![E::NoCapacity]),
            J::ContainerExitedWithError,
            true,
            10,
            Some(R::JobFailed),
        ),
        (
            Some(vec![E::Interruption]),
            J::InterruptedByNoCapacity,
            true,
            10,
            None,
        ),
        (
            Some(vec![E::Error]),
            J::InterruptedByNoCapacity,
            true,
            10,
            Some(R::JobFailed),
        ),
        // An error that never ran (the backend failed to start it): no provisioned submission,
        // so only no-capacity can be retried.
        (
            Some(all.to_vec()),
            J::ExecutorError,
            false,
            10,
            Some(R::JobFailed),
        ),
    ];
    for (events, reason, started, elapsed, expected) in cases {
        let j = with(finished(reason.to_status(), reason), |j| {
            j.policy = match &events {
                Some(e) => retry(e, 3600),
                None => JobPolicy::default(),
            };
            j.started_at = started.then(|| t(0));
            j.last_processed_at = t(0);
            j.fields.finished_at = Some(t(0));
        });
        let r = run(RunStatus::Running, vec![j]);
        let actions = decide(&r, t(elapsed));
        let update = run_update(&actions);
        match expected {
            Some(failure) => assert_eq!(
                update.map(|u| u.termination_reason),
                Some(Some(failure)),
                "{events:?} {reason} {elapsed}"
            ),
            None => {
                // The only replica retries: the run goes pending with a first back-off.
                assert_eq!(
                    update.map(|u| (u.status, u.resubmission_attempt)),
                    Some((RunStatus::Pending, 1)),
                    "{events:?} {reason} {elapsed}"
                );
            }
        }
    }
}

#[test]
fn a_retry_window_counts_from_an_earlier_provisioned_submission() {
    let j = with(
        finished(
            JobStatus::Failed,
            JobTerminationReason::FailedToStartDueToNoCapacity,
        ),
        |j| {
            j.policy = retry(&[RetryEvent::NoCapacity], 100);
            j.started_at = None;
            j.submission_num = 1;
            j.earlier_provisioned_at = Some(t(50));
        },
    );
    let r = run(RunStatus::Running, vec![j]);
    // Measured from t=50, not from the run's submission at t=0.
    assert_eq!(
        run_update(&decide(&r, t(150))).map(|u| u.status),
        Some(RunStatus::Pending)
    );
    assert_eq!(
        run_update(&decide(&r, t(151))).and_then(|u| u.termination_reason),
        Some(RunTerminationReason::RetryLimitExceeded)
    );
}

#[test]
fn a_failed_replica_is_resubmitted_while_others_serve() {
    let failed = with(
        finished(
            JobStatus::Failed,
            JobTerminationReason::ContainerExitedWithError,
        ),
        |j| {
            j.policy = retry(&[RetryEvent::Error], 600);
            j.replica_num = 1;
        },
    );
    let r = run(RunStatus::Running, vec![job(JobStatus::Running), failed]);
    let actions = decide(&r, t(5));
    assert!(has(&actions, &Action::Resubmit { job: 1 }));
    assert!(!has(&actions, &Action::Resubmit { job: 0 }));
    assert!(run_update(&actions).is_none(), "the run keeps running");
}

#[test]
fn a_retrying_multinode_replica_stops_its_running_siblings() {
    let failed = with(
        finished(
            JobStatus::Failed,
            JobTerminationReason::ContainerExitedWithError,
        ),
        |j| j.policy = retry(&[RetryEvent::Error], 600),
    );
    let sibling = with(job(JobStatus::Running), |j| {
        j.job_num = 1;
        j.policy = retry(&[RetryEvent::Error], 600);
    });
    let r = run(RunStatus::Running, vec![failed, sibling]);
    let actions = decide(&r, t(5));
    let s = job_update(&actions, 1)
        .cloned()
        .unwrap_or(JobFields::submitted());
    assert_eq!(
        (
            s.status,
            s.termination_reason,
            s.termination_message.as_deref()
        ),
        (
            JobStatus::Terminating,
            Some(JobTerminationReason::TerminatedByServer),
            Some("Run is to be resubmitted")
        )
    );
    assert_eq!(signals(&actions), vec![(1, Signal::Term)]);
    assert_eq!(
        run_update(&actions).map(|u| u.status),
        Some(RunStatus::Pending)
    );
}

#[test]
fn pending_back_off() {
    assert_eq!(
        (1..=8).map(pending_retry_delay).collect::<Vec<_>>(),
        vec![15, 30, 60, 120, 300, 600, 600, 600]
    );
    for (attempt, elapsed, resubmits) in [
        (1, 14, false),
        (1, 15, true),
        (2, 29, false),
        (2, 30, true),
        (3, 60, true),
        (6, 599, false),
        (9, 600, true),
    ] {
        let j = finished(
            JobStatus::Failed,
            JobTerminationReason::ContainerExitedWithError,
        );
        let r = Run {
            resubmission_attempt: attempt,
            ..run(RunStatus::Pending, vec![j])
        };
        let actions = decide(&r, t(elapsed));
        assert_eq!(
            has(&actions, &Action::Resubmit { job: 0 }),
            resubmits,
            "attempt {attempt} after {elapsed}s"
        );
        if resubmits {
            assert_eq!(
                run_update(&actions).map(|u| (u.status, u.resubmission_attempt)),
                Some((RunStatus::Submitted, attempt))
            );
        } else {
            assert!(actions.is_empty());
        }
    }
}

#[test]
fn provisioning_resets_the_resubmission_attempts() {
    let r = Run {
        resubmission_attempt: 3,
        ..run(
            RunStatus::Submitted,
            vec![with(job(JobStatus::Provisioning), |j| {
                j.observed = Observed::Starting
            })],
        )
    };
    assert_eq!(
        run_update(&decide(&r, t(1))).map(|u| (u.status, u.resubmission_attempt)),
        Some((RunStatus::Provisioning, 0))
    );
}

#[test]
fn older_unfinished_submissions_are_still_stopped() {
    let old = with(job(JobStatus::Terminating), |j| {
        j.latest = false;
        j.fields.termination_reason = Some(JobTerminationReason::TerminatedByServer);
        j.fields.term_sent_at = Some(t(0));
        j.fields.stop_requested_at = Some(t(0));
        j.observed = exited(143);
    });
    let new = with(job(JobStatus::Running), |j| j.submission_num = 1);
    let r = run(RunStatus::Running, vec![old, new]);
    let actions = decide(&r, t(1));
    assert_eq!(
        job_update(&actions, 0).map(|f| f.status),
        Some(JobStatus::Terminated)
    );
    assert!(has(&actions, &Action::Release { job: 0 }));
    assert!(run_update(&actions).is_none());
}

#[test]
fn finished_runs_are_left_alone() {
    for status in [RunStatus::Done, RunStatus::Failed, RunStatus::Terminated] {
        let r = run(status, vec![job(JobStatus::Running)]);
        assert!(decide(&r, t(1)).is_empty());
    }
}

#[test]
fn status_mappings() {
    for reason in JobTerminationReason::ALL {
        assert!(reason.to_status().is_finished(), "{reason}");
        assert_eq!(JobTerminationReason::parse(reason.as_str()), Ok(*reason));
    }
    for reason in RunTerminationReason::ALL {
        assert!(reason.to_status().is_finished(), "{reason}");
        let job = reason.to_job_termination_reason();
        assert!(job.to_status().is_finished());
    }
    assert!(JobStatus::parse("nope").is_err());
    assert_eq!(
        serde_json::to_string(&JobStatus::Running).ok().as_deref(),
        Some("\"running\"")
    );
}

#[test]
fn status_messages() {
    use JobStatus as S;
    use JobTerminationReason as R;
    let cases = [
        (S::Done, None, None, Some(0), "exited (0)"),
        (
            S::Failed,
            Some(R::ContainerExitedWithError),
            None,
            Some(3),
            "exited (3)",
        ),
        (
            S::Failed,
            Some(R::FailedToStartDueToNoCapacity),
            Some("No matching fleet found."),
            None,
            "no fleets",
        ),
        (
            S::Failed,
            Some(R::FailedToStartDueToNoCapacity),
            Some("nothing fits"),
            None,
            "no capacity",
        ),
        (
            S::Failed,
            Some(R::InterruptedByNoCapacity),
            None,
            None,
            "interrupted",
        ),
        (S::Failed, Some(R::ExecutorError), None, None, "error"),
        (
            S::Terminated,
            Some(R::TerminatedByUser),
            None,
            None,
            "stopped",
        ),
        (S::Terminated, Some(R::AbortedByUser), None, None, "aborted"),
        (
            S::Terminated,
            Some(R::MaxDurationExceeded),
            None,
            None,
            "terminated",
        ),
        (S::Aborted, Some(R::AbortedByUser), None, None, "aborted"),
        (S::Running, None, None, None, "running"),
    ];
    for (status, reason, message, exit, expected) in cases {
        assert_eq!(job_status_message(status, reason, message, exit), expected);
    }
    let retry_on = [RetryEvent::NoCapacity];
    let retrying = JobHistory {
        latest_status: S::Submitted,
        last_termination_reason: Some(R::FailedToStartDueToNoCapacity),
        retry_on: &retry_on,
    };
    assert_eq!(
        run_status_message(RunStatus::Pending, &[retrying.clone()]),
        "retrying"
    );
    assert_eq!(
        run_status_message(RunStatus::Running, &[retrying]),
        "running"
    );
    let pulling = JobHistory {
        latest_status: S::Pulling,
        last_termination_reason: None,
        retry_on: &[],
    };
    assert_eq!(
        run_status_message(RunStatus::Provisioning, &[pulling]),
        "pulling"
    );
    assert_eq!(run_status_message(RunStatus::Submitted, &[]), "submitted");
}
