//! Run and job statuses, termination reasons and retry events: the original's wire values and
//! the mappings between them (`core/models/runs.py`), plus the status texts `dstack ps` shows.

use std::fmt;

/// A stored or received value that is not one of the enum's wire values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownValue {
    /// Which enum.
    pub kind: &'static str,
    /// The value.
    pub value: String,
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The wire value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// Reads a wire value.
            pub fn parse(value: &str) -> Result<$name, UnknownValue> {
                match value {
                    $($wire => Ok($name::$variant),)*
                    other => Err(UnknownValue { kind: $kind, value: other.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<$name, UnknownValue> {
                $name::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

wire_enum!(
    /// The status of one job submission.
    JobStatus, "job status" {
        /// Waiting to be started.
        Submitted = "submitted",
        /// Started on a backend; the process is not confirmed running yet.
        Provisioning = "provisioning",
        /// Pulling the image.
        Pulling = "pulling",
        /// Running.
        Running = "running",
        /// Being stopped.
        Terminating = "terminating",
        /// Stopped (by the user, the server, a limit).
        Terminated = "terminated",
        /// Killed at once by the user.
        Aborted = "aborted",
        /// Ended with an error.
        Failed = "failed",
        /// Exited with 0.
        Done = "done",
    }
);

wire_enum!(
    /// The status of a run.
    RunStatus, "run status" {
        /// Waiting to be resubmitted (retry back-off, or scaled to zero).
        Pending = "pending",
        /// Jobs submitted, none started.
        Submitted = "submitted",
        /// Some job is starting.
        Provisioning = "provisioning",
        /// Some job is running.
        Running = "running",
        /// Its jobs are being stopped.
        Terminating = "terminating",
        /// Stopped.
        Terminated = "terminated",
        /// Ended with an error.
        Failed = "failed",
        /// All jobs exited with 0.
        Done = "done",
    }
);

wire_enum!(
    /// Why a job submission ended (or is ending).
    JobTerminationReason, "job termination reason" {
        /// No offer could take the job.
        FailedToStartDueToNoCapacity = "failed_to_start_due_to_no_capacity",
        /// The instance went away (spot interruption).
        InterruptedByNoCapacity = "interrupted_by_no_capacity",
        /// The instance stopped answering.
        InstanceUnreachable = "instance_unreachable",
        /// The server lost access to the instance.
        InstanceAccessRevoked = "instance_access_revoked",
        /// Waited too long for an instance.
        WaitingInstanceLimitExceeded = "waiting_instance_limit_exceeded",
        /// Waited too long for the runner.
        WaitingRunnerLimitExceeded = "waiting_runner_limit_exceeded",
        /// Stopped by the user.
        TerminatedByUser = "terminated_by_user",
        /// A volume could not be attached.
        VolumeError = "volume_error",
        /// The gateway failed.
        GatewayError = "gateway_error",
        /// Removed by scaling down.
        ScaledDown = "scaled_down",
        /// The job's command exited with 0.
        DoneByRunner = "done_by_runner",
        /// Killed at once by the user.
        AbortedByUser = "aborted_by_user",
        /// Stopped by the server (a sibling failed, a retry, ...).
        TerminatedByServer = "terminated_by_server",
        /// `inactivity_duration` passed.
        InactivityDurationExceeded = "inactivity_duration_exceeded",
        /// `utilization_policy` was not met.
        TerminatedDueToUtilizationPolicy = "terminated_due_to_utilization_policy",
        /// The job's command exited with an error.
        ContainerExitedWithError = "container_exited_with_error",
        /// The job's ports could not be bound.
        PortsBindingFailed = "ports_binding_failed",
        /// The job's environment could not be created.
        CreatingContainerError = "creating_container_error",
        /// The job could not be run, or its process was lost.
        ExecutorError = "executor_error",
        /// `max_duration` passed.
        MaxDurationExceeded = "max_duration_exceeded",
        /// The job wrote more logs than allowed.
        LogQuotaExceeded = "log_quota_exceeded",
    }
);

wire_enum!(
    /// Why a run ended (or is ending).
    RunTerminationReason, "run termination reason" {
        /// Every job exited with 0.
        AllJobsDone = "all_jobs_done",
        /// A job failed and no retry applies.
        JobFailed = "job_failed",
        /// A job failed after the retry window closed.
        RetryLimitExceeded = "retry_limit_exceeded",
        /// The user stopped it.
        StoppedByUser = "stopped_by_user",
        /// The user aborted it.
        AbortedByUser = "aborted_by_user",
        /// The server failed.
        ServerError = "server_error",
        /// The gateway failed.
        GatewayError = "gateway_error",
        /// `max_duration` passed. Not one of the original's values: it records a job stopped by
        /// `max_duration` as `job_failed`, which reads as an error. Clients take the run's
        /// termination reason as a plain string.
        MaxDurationExceeded = "max_duration_exceeded",
    }
);

wire_enum!(
    /// What a retry policy reacts to.
    RetryEvent, "retry event" {
        /// No capacity to start.
        NoCapacity = "no-capacity",
        /// The instance was interrupted.
        Interruption = "interruption",
        /// The job failed.
        Error = "error",
    }
);

impl JobStatus {
    /// Whether the submission is over.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Terminated | JobStatus::Aborted | JobStatus::Failed | JobStatus::Done
        )
    }

    /// Whether the submission holds something on a backend (a process, an instance).
    pub fn is_started(self) -> bool {
        matches!(
            self,
            JobStatus::Provisioning
                | JobStatus::Pulling
                | JobStatus::Running
                | JobStatus::Terminating
        )
    }
}

impl RunStatus {
    /// Whether the run is over.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Terminated | RunStatus::Failed | RunStatus::Done
        )
    }
}

impl JobTerminationReason {
    /// The final status a job ending for this reason gets.
    pub fn to_status(self) -> JobStatus {
        use JobTerminationReason as R;
        match self {
            R::TerminatedByUser
            | R::ScaledDown
            | R::TerminatedByServer
            | R::InactivityDurationExceeded
            | R::TerminatedDueToUtilizationPolicy
            | R::MaxDurationExceeded => JobStatus::Terminated,
            R::DoneByRunner => JobStatus::Done,
            R::AbortedByUser => JobStatus::Aborted,
            R::FailedToStartDueToNoCapacity
            | R::InterruptedByNoCapacity
            | R::InstanceUnreachable
            | R::InstanceAccessRevoked
            | R::WaitingInstanceLimitExceeded
            | R::WaitingRunnerLimitExceeded
            | R::VolumeError
            | R::GatewayError
            | R::ContainerExitedWithError
            | R::PortsBindingFailed
            | R::CreatingContainerError
            | R::ExecutorError
            | R::LogQuotaExceeded => JobStatus::Failed,
        }
    }

    /// The retry event a job ending for this reason triggers, if any.
    pub fn to_retry_event(self) -> Option<RetryEvent> {
        match self {
            JobTerminationReason::FailedToStartDueToNoCapacity => Some(RetryEvent::NoCapacity),
            JobTerminationReason::InterruptedByNoCapacity => Some(RetryEvent::Interruption),
            other => (other.to_status() == JobStatus::Failed).then_some(RetryEvent::Error),
        }
    }

    /// The short error text the API shows beside the status, when the status text does not
    /// say it already.
    pub fn to_error(self) -> Option<&'static str> {
        use JobTerminationReason as R;
        Some(match self {
            R::InstanceUnreachable => "instance unreachable",
            R::InstanceAccessRevoked => "instance access revoked",
            R::WaitingInstanceLimitExceeded => "waiting instance limit exceeded",
            R::WaitingRunnerLimitExceeded => "waiting runner limit exceeded",
            R::VolumeError => "volume error",
            R::GatewayError => "gateway error",
            R::ScaledDown => "scaled down",
            R::InactivityDurationExceeded => "inactivity duration exceeded",
            R::TerminatedDueToUtilizationPolicy => "utilization policy",
            R::PortsBindingFailed => "ports binding failed",
            R::CreatingContainerError => "runner error",
            R::ExecutorError => "executor error",
            R::MaxDurationExceeded => "max duration exceeded",
            R::LogQuotaExceeded => "log quota exceeded",
            _ => return None,
        })
    }
}

impl RunTerminationReason {
    /// The final status of a run ending for this reason.
    pub fn to_status(self) -> RunStatus {
        use RunTerminationReason as R;
        match self {
            R::AllJobsDone => RunStatus::Done,
            R::JobFailed | R::RetryLimitExceeded | R::ServerError | R::GatewayError => {
                RunStatus::Failed
            }
            R::StoppedByUser | R::AbortedByUser | R::MaxDurationExceeded => RunStatus::Terminated,
        }
    }

    /// The reason given to the run's unfinished jobs when the run ends for this reason.
    pub fn to_job_termination_reason(self) -> JobTerminationReason {
        use JobTerminationReason as J;
        use RunTerminationReason as R;
        match self {
            R::AllJobsDone => J::DoneByRunner,
            R::JobFailed | R::RetryLimitExceeded | R::ServerError | R::GatewayError => {
                J::TerminatedByServer
            }
            R::StoppedByUser => J::TerminatedByUser,
            R::AbortedByUser => J::AbortedByUser,
            R::MaxDurationExceeded => J::MaxDurationExceeded,
        }
    }

    /// The short error text the API shows for a run ending for this reason.
    pub fn to_error(self) -> Option<&'static str> {
        match self {
            RunTerminationReason::RetryLimitExceeded => Some("retry limit exceeded"),
            RunTerminationReason::ServerError => Some("server error"),
            RunTerminationReason::GatewayError => Some("gateway error"),
            _ => None,
        }
    }
}

/// What `dstack ps` shows for a job submission (`_get_job_status_message` of the original).
pub fn job_status_message(
    status: JobStatus,
    reason: Option<JobTerminationReason>,
    reason_message: Option<&str>,
    exit_status: Option<i64>,
) -> String {
    use JobTerminationReason as R;
    match (status, reason) {
        (JobStatus::Done, _) => "exited (0)".into(),
        (JobStatus::Failed, Some(R::ContainerExitedWithError)) => match exit_status {
            Some(code) => format!("exited ({code})"),
            None => "exited (None)".into(),
        },
        (JobStatus::Failed, Some(R::FailedToStartDueToNoCapacity)) => {
            if reason_message.is_some_and(|m| m.contains("No matching fleet found")) {
                "no fleets".into()
            } else {
                "no capacity".into()
            }
        }
        (JobStatus::Failed, Some(R::InterruptedByNoCapacity)) => "interrupted".into(),
        (JobStatus::Failed, _) => "error".into(),
        (JobStatus::Terminated, Some(R::TerminatedByUser)) => "stopped".into(),
        (JobStatus::Terminated, Some(R::AbortedByUser)) => "aborted".into(),
        (other, _) => other.as_str().into(),
    }
}

/// One job's submissions, as [`run_status_message`] reads them: the latest submission's status,
/// the latest termination reason among its submissions, and its retry events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHistory<'a> {
    /// Status of the latest submission.
    pub latest_status: JobStatus,
    /// The termination reason of the newest submission that has one.
    pub last_termination_reason: Option<JobTerminationReason>,
    /// The retry events of the latest submission's spec.
    pub retry_on: &'a [RetryEvent],
}

/// What `dstack ps` shows for an active run (`_get_run_status_message` of the original):
/// `pulling` when every job pulls, `retrying` while a no-capacity failure is being retried, else
/// the status.
pub fn run_status_message(status: RunStatus, jobs: &[JobHistory<'_>]) -> String {
    if jobs.is_empty() {
        return status.as_str().into();
    }
    if jobs.iter().all(|j| j.latest_status == JobStatus::Pulling) {
        return "pulling".into();
    }
    if matches!(status, RunStatus::Submitted | RunStatus::Pending)
        && jobs.iter().any(|j| {
            j.last_termination_reason == Some(JobTerminationReason::FailedToStartDueToNoCapacity)
                && j.retry_on.contains(&RetryEvent::NoCapacity)
        })
    {
        return "retrying".into();
    }
    status.as_str().into()
}
