//! Retries: events, windows, resubmission of replicas, the pending back-off.

use super::*;

/// (policy events, how the job ended, started before, seconds into the window, failure).
type RetryCase = (
    Option<Vec<RetryEvent>>,
    JobTerminationReason,
    bool,
    i64,
    Option<RunTerminationReason>,
);

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
    let cases: Vec<RetryCase> = vec![
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
