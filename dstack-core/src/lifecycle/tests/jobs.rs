//! Jobs: what observations and start outcomes do, statuses and their texts.

use super::*;

/// (job before, its reason, what was observed, status after, reason after, exit code).
type ObservationCase = (
    JobStatus,
    Option<JobTerminationReason>,
    Observed,
    JobStatus,
    Option<JobTerminationReason>,
    Option<i64>,
);

/// (job before, what was observed, expected job status and reason after one pass).
#[test]
fn job_transitions_from_observations() {
    use JobStatus as S;
    use JobTerminationReason as R;
    let cases: Vec<ObservationCase> = vec![
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
        run_status_message(RunStatus::Pending, std::slice::from_ref(&retrying)),
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
