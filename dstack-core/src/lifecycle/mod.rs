//! The lifecycle of runs and jobs as a pure model: given a run, its jobs with what was
//! observed of them, and the time, [`decide`] says what to do next.
//!
//! The model owns the status machine of the original (`core/models/runs.py` and the run and job
//! pipelines of its server): job and run statuses, termination reasons and what they end in,
//! the run status derived from its replicas (FAILED > RUNNING > PROVISIONING > SUBMITTED > DONE),
//! retry windows per event, `max_duration`, `stop_duration`, and the `pending` back-off
//! (15 s, 30 s, 1 m, 2 m, 5 m, then 10 m).
//!
//! It does no I/O and reads no clock: the orchestrator loads the rows, observes the jobs through
//! a backend, calls [`decide`] with `now`, and carries the actions out.

mod decide;
mod status;

pub use decide::{decide, on_start};
pub use status::{
    JobHistory, JobStatus, JobTerminationReason, RetryEvent, RunStatus, RunTerminationReason,
    UnknownValue, job_status_message, run_status_message,
};

use chrono::{DateTime, Utc};

/// A point in time.
pub type Time = DateTime<Utc>;

/// The retry policy of a job (`Retry` in the original's job spec).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// Events that trigger a retry.
    pub on_events: Vec<RetryEvent>,
    /// How long retries may go on, seconds.
    pub duration: i64,
}

/// The time limits and retry policy a job runs under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobPolicy {
    /// Retries, if any.
    pub retry: Option<RetryPolicy>,
    /// The longest the job may run, seconds.
    pub max_duration: Option<i64>,
    /// How long a graceful stop may take before the job is killed, seconds (`None`: no limit).
    pub stop_duration: Option<i64>,
}

/// How a job's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitStatus {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal, when it was killed.
    pub signal: Option<i32>,
}

/// What the backend says of a started job this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Not observed: the job was not started, or not asked about.
    Nothing,
    /// The backend could not tell (an error while observing). Never evidence of anything.
    Unknown,
    /// Started, its process not yet running.
    Starting,
    /// Its process runs.
    Running,
    /// Its process ended.
    Exited(ExitStatus),
    /// It is gone and left no exit status.
    Lost(String),
}

/// A signal for a job's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ask to stop (SIGTERM).
    Term,
    /// Kill (SIGKILL).
    Kill,
}

/// What the user asked of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// Stop gracefully.
    Stop,
    /// Kill at once.
    Abort,
}

/// The fields of a job submission that the lifecycle changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFields {
    /// Status.
    pub status: JobStatus,
    /// Why it ended or is ending.
    pub termination_reason: Option<JobTerminationReason>,
    /// Details for the user.
    pub termination_message: Option<String>,
    /// The exit code the API shows.
    pub exit_status: Option<i64>,
    /// When it finished.
    pub finished_at: Option<Time>,
    /// When stopping began.
    pub stop_requested_at: Option<Time>,
    /// When SIGTERM was last sent.
    pub term_sent_at: Option<Time>,
    /// SIGKILL was sent.
    pub kill_sent: bool,
}

impl JobFields {
    /// A fresh submission.
    pub fn submitted() -> JobFields {
        JobFields {
            status: JobStatus::Submitted,
            termination_reason: None,
            termination_message: None,
            exit_status: None,
            finished_at: None,
            stop_requested_at: None,
            term_sent_at: None,
            kill_sent: false,
        }
    }
}

/// One job submission as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Replica number.
    pub replica_num: i64,
    /// Job number within the replica.
    pub job_num: i64,
    /// Attempt number.
    pub submission_num: i64,
    /// Whether this is the newest submission of its job.
    pub latest: bool,
    /// Limits and retries.
    pub policy: JobPolicy,
    /// When it was last changed.
    pub last_processed_at: Time,
    /// When a backend started it (`None`: never started).
    pub started_at: Option<Time>,
    /// When the newest earlier submission of the same job that was started was last changed:
    /// the retry window of a job that ran before starts there.
    pub earlier_provisioned_at: Option<Time>,
    /// What the backend says this pass.
    pub observed: Observed,
    /// The fields the model changes.
    pub fields: JobFields,
}

/// A run as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Status.
    pub status: RunStatus,
    /// Why it ended or is ending.
    pub termination_reason: Option<RunTerminationReason>,
    /// What the user asked, if anything.
    pub stop: Option<StopRequest>,
    /// Submission time.
    pub submitted_at: Time,
    /// How many times it went `pending` in a row.
    pub resubmission_attempt: u32,
    /// Its job submissions: the latest of every job, and older ones that are not finished.
    pub jobs: Vec<Job>,
}

/// A change to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUpdate {
    /// New status.
    pub status: RunStatus,
    /// New termination reason.
    pub termination_reason: Option<RunTerminationReason>,
    /// New resubmission attempt count.
    pub resubmission_attempt: u32,
}

/// What to do; `job` indexes [`Run::jobs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the submitted job on a backend, then apply [`on_start`] to the outcome.
    Start {
        /// The job.
        job: usize,
    },
    /// Store new fields for the job.
    UpdateJob {
        /// The job.
        job: usize,
        /// Its fields.
        fields: JobFields,
    },
    /// Signal the job's processes.
    Signal {
        /// The job.
        job: usize,
        /// The signal.
        signal: Signal,
    },
    /// The job finished: release what it held on its backend.
    Release {
        /// The job.
        job: usize,
    },
    /// Submit the job again (`submission_num + 1`).
    Resubmit {
        /// The job.
        job: usize,
    },
    /// Store the run's new status.
    UpdateRun(RunUpdate),
}

/// How starting a job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// It started.
    Started,
    /// It fits, but not now (resources held by other jobs): try again later.
    Busy,
    /// Nothing can ever take it.
    NoOffers(String),
    /// The backend failed to start it.
    Failed(String),
}

/// How often SIGTERM is sent again while a job stops gracefully, seconds: a shell with job
/// control ignores it, and a process started after the first one would miss it.
pub const TERM_REPEAT: i64 = 10;

/// Back-off before a `pending` run is resubmitted, by attempt (1-based).
pub const PENDING_RETRY_DELAYS: [i64; 6] = [15, 30, 60, 120, 300, 600];

/// The back-off for a resubmission attempt.
pub fn pending_retry_delay(attempt: u32) -> i64 {
    let index = (attempt.max(1) as usize - 1).min(PENDING_RETRY_DELAYS.len() - 1);
    PENDING_RETRY_DELAYS[index]
}

#[cfg(test)]
mod tests;
