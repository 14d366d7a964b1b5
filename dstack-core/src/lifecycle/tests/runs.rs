//! Runs: status from replicas, stop and abort, `stop_duration`, `max_duration`.

use super::*;

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
fn finished_runs_are_left_alone() {
    for status in [RunStatus::Done, RunStatus::Failed, RunStatus::Terminated] {
        let r = run(status, vec![job(JobStatus::Running)]);
        assert!(decide(&r, t(1)).is_empty());
    }
}
