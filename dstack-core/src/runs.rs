//! Run and job statuses, termination reasons and the status texts `dstack ps` shows, as pure
//! functions of the stored values.

/// Statuses of a job in which it is over.
pub const JOB_FINISHED: &[&str] = &["terminated", "aborted", "failed", "done"];
/// Statuses of a run in which it is over.
pub const RUN_FINISHED: &[&str] = &["terminated", "failed", "done"];

/// Whether a job status is final.
pub fn job_finished(status: &str) -> bool {
    JOB_FINISHED.contains(&status)
}

/// Whether a run status is final.
pub fn run_finished(status: &str) -> bool {
    RUN_FINISHED.contains(&status)
}

/// What `dstack ps` shows for a job submission.
pub fn job_status_message(
    status: &str,
    reason: Option<&str>,
    reason_message: Option<&str>,
    exit: Option<i64>,
) -> String {
    match (status, reason) {
        ("done", _) => "exited (0)".into(),
        ("failed", Some("container_exited_with_error")) => {
            format!("exited ({})", exit.unwrap_or(1))
        }
        ("failed", Some("failed_to_start_due_to_no_capacity")) => {
            if reason_message.is_some_and(|m| m.contains("No matching fleet found")) {
                "no fleets".into()
            } else {
                "no offers".into()
            }
        }
        ("failed", Some("interrupted_by_no_capacity")) => "interrupted".into(),
        ("failed", _) => "error".into(),
        ("terminated", Some("terminated_by_user")) => "stopped".into(),
        ("terminated", Some("aborted_by_user")) | ("aborted", _) => "aborted".into(),
        (other, _) => other.into(),
    }
}

/// What `dstack ps` shows for a run.
pub fn run_status_message(status: &str, retrying: bool) -> String {
    if retrying && status == "pending" {
        "retrying".into()
    } else {
        status.into()
    }
}

/// The run status that follows from its jobs' statuses, for a run that is not stopping.
/// `jobs` holds the latest submission of each job: (status, termination reason).
pub fn run_status_from_jobs(jobs: &[(&str, Option<&str>)]) -> (&'static str, Option<&'static str>) {
    if jobs.is_empty() {
        return ("submitted", None);
    }
    if jobs.iter().all(|(s, _)| *s == "done") {
        return ("done", Some("all_jobs_done"));
    }
    if jobs.iter().any(|(s, _)| matches!(*s, "failed" | "aborted")) {
        return ("failed", Some("job_failed"));
    }
    if jobs.iter().all(|(s, _)| job_finished(s)) {
        return ("terminated", Some("stopped_by_user"));
    }
    if jobs.iter().any(|(s, _)| *s == "running") {
        return ("running", None);
    }
    if jobs
        .iter()
        .any(|(s, _)| *s == "provisioning" || *s == "pulling")
    {
        return ("provisioning", None);
    }
    ("submitted", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            job_status_message("done", None, None, Some(0)),
            "exited (0)"
        );
        assert_eq!(
            job_status_message("failed", Some("container_exited_with_error"), None, Some(3)),
            "exited (3)"
        );
        assert_eq!(
            job_status_message(
                "failed",
                Some("failed_to_start_due_to_no_capacity"),
                Some("No matching fleet found."),
                None
            ),
            "no fleets"
        );
        assert_eq!(
            job_status_message("terminated", Some("terminated_by_user"), None, None),
            "stopped"
        );
        assert_eq!(job_status_message("running", None, None, None), "running");
    }

    #[test]
    fn run_status() {
        assert_eq!(
            run_status_from_jobs(&[("running", None), ("done", None)]).0,
            "running"
        );
        assert_eq!(
            run_status_from_jobs(&[("done", None), ("done", None)]),
            ("done", Some("all_jobs_done"))
        );
        assert_eq!(
            run_status_from_jobs(&[("failed", Some("container_exited_with_error"))]).0,
            "failed"
        );
    }
}
