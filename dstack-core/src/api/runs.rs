//! Wire types of runs, jobs, plans, offers and fleets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{serialize_opt_time, serialize_time};
use crate::jobspec::JobSpec;
use crate::lifecycle::{JobStatus, JobTerminationReason, RunStatus};

/// One attempt at running a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobSubmission {
    /// Id (UUID).
    pub id: String,
    /// Attempt number.
    pub submission_num: i64,
    /// Deployment.
    pub deployment_num: i64,
    /// Submission time.
    #[serde(serialize_with = "serialize_time")]
    pub submitted_at: DateTime<Utc>,
    /// Last processing time.
    #[serde(serialize_with = "serialize_time")]
    pub last_processed_at: DateTime<Utc>,
    /// End time.
    #[serde(serialize_with = "serialize_opt_time")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Inactivity.
    pub inactivity_secs: Option<i64>,
    /// Status.
    pub status: JobStatus,
    /// What `dstack ps` shows.
    pub status_message: String,
    /// Why it ended.
    pub termination_reason: Option<JobTerminationReason>,
    /// Details.
    pub termination_reason_message: Option<String>,
    /// Exit code.
    pub exit_status: Option<i64>,
    /// Where it runs.
    pub job_provisioning_data: Option<Value>,
    /// Runtime data.
    pub job_runtime_data: Option<Value>,
    /// Error.
    pub error: Option<String>,
    /// Probe states.
    pub probes: Vec<Value>,
    /// Image pull progress.
    pub image_pull_progress: Option<Value>,
}

/// A job with its submissions.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The spec (stored JSON, passed through).
    pub job_spec: Box<serde_json::value::RawValue>,
    /// Attempts, oldest first.
    pub job_submissions: Vec<JobSubmission>,
    /// Connection info.
    pub job_connection_info: Option<Value>,
}

/// `ServiceModelSpec`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceModelSpec {
    /// Model name.
    pub name: String,
    /// Base URL of the OpenAI-compatible API.
    pub base_url: String,
    /// `chat`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `ServiceSpec`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Service URL.
    pub url: String,
    /// The model, if the service declares one.
    pub model: Option<ServiceModelSpec>,
    /// Options.
    pub options: serde_json::Map<String, Value>,
}

/// A run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Id (UUID).
    pub id: String,
    /// Project.
    pub project_name: String,
    /// Submitting user.
    pub user: String,
    /// Fleet it runs on.
    pub fleet: Option<Value>,
    /// Submission time.
    #[serde(serialize_with = "serialize_time")]
    pub submitted_at: DateTime<Utc>,
    /// Last processing time.
    #[serde(serialize_with = "serialize_time")]
    pub last_processed_at: DateTime<Utc>,
    /// Status.
    pub status: RunStatus,
    /// What `dstack ps` shows.
    pub status_message: String,
    /// Why it ended (a plain string for clients).
    pub termination_reason: Option<String>,
    /// The spec as submitted (stored JSON, passed through).
    pub run_spec: Box<serde_json::value::RawValue>,
    /// Jobs.
    pub jobs: Vec<Job>,
    /// The newest submission.
    pub latest_job_submission: Option<JobSubmission>,
    /// Cost so far.
    pub cost: f64,
    /// Service endpoint.
    pub service: Option<ServiceSpec>,
    /// Deployment.
    pub deployment_num: i64,
    /// Error.
    pub error: Option<String>,
    /// Deleted.
    pub deleted: bool,
    /// Next scheduled start.
    pub next_triggered_at: Option<String>,
}

/// A GPU of an instance type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    /// Name.
    pub name: String,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Vendor.
    pub vendor: Option<String>,
}

/// Disk of an instance type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// Size, MiB.
    pub size_mib: u64,
}

/// What an instance type provides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPUs.
    pub cpus: u32,
    /// RAM, MiB.
    pub memory_mib: u64,
    /// GPUs.
    pub gpus: Vec<Gpu>,
    /// Spot.
    pub spot: bool,
    /// Disk.
    pub disk: Disk,
    /// CPU architecture.
    pub cpu_arch: Option<String>,
    /// Description.
    pub description: String,
}

/// An instance type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    /// Name.
    pub name: String,
    /// Resources.
    pub resources: Resources,
}

/// `InstanceOfferWithAvailability`
#[derive(Debug, Clone, Serialize)]
pub struct InstanceOffer {
    /// Backend type.
    pub backend: String,
    /// Instance type.
    pub instance: InstanceType,
    /// Region.
    pub region: String,
    /// Price per hour.
    pub price: f64,
    /// Backend data.
    pub backend_data: serde_json::Map<String, Value>,
    /// Availability.
    pub availability: String,
    /// Zones.
    pub availability_zones: Option<Vec<String>>,
    /// Runtime.
    pub instance_runtime: String,
    /// Blocks offered.
    pub blocks: u32,
    /// Blocks of the instance.
    pub total_blocks: u32,
}

/// A job's plan.
#[derive(Debug, Clone, Serialize)]
pub struct JobPlan {
    /// The job.
    pub job_spec: JobSpec,
    /// Offers that fit.
    pub offers: Vec<InstanceOffer>,
    /// How many fit in all.
    pub total_offers: usize,
    /// Highest price among them.
    pub max_price: Option<f64>,
}

/// `RunPlan`
#[derive(Debug, Clone, Serialize)]
pub struct RunPlan {
    /// Project.
    pub project_name: String,
    /// User.
    pub user: String,
    /// The spec as sent.
    pub run_spec: Value,
    /// The spec with the server's defaults.
    pub effective_run_spec: Value,
    /// Per-job plans.
    pub job_plans: Vec<JobPlan>,
    /// The active run with this name, if any.
    pub current_resource: Option<Run>,
    /// `create` or `update`.
    pub action: String,
}

/// One log line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEvent {
    /// When it was written.
    pub timestamp: String,
    /// `stdout` or `stderr`.
    pub log_source: String,
    /// Base64 of the bytes.
    pub message: String,
}

/// `JobSubmissionLogs`
#[derive(Debug, Clone, Serialize)]
pub struct JobSubmissionLogs {
    /// Events.
    pub logs: Vec<LogEvent>,
    /// External URL.
    pub external_url: Option<String>,
    /// Paging token.
    pub next_token: Option<String>,
}

/// `GetRunPlanRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct GetRunPlanRequest {
    /// The spec.
    pub run_spec: Value,
    /// Offers to return at most.
    #[serde(default)]
    pub max_offers: Option<usize>,
    /// Only offers are wanted (`dstack offer`).
    #[serde(default)]
    pub for_offers_only: bool,
}

/// `ApplyRunPlanInput`
#[derive(Debug, Clone, Deserialize)]
pub struct ApplyRunPlanInput {
    /// The spec.
    pub run_spec: Value,
}

/// `ApplyRunPlanRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct ApplyRunPlanRequest {
    /// The plan.
    pub plan: ApplyRunPlanInput,
    /// Replace an active run.
    #[serde(default)]
    pub force: bool,
}

/// `ListRunsRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct ListRunsRequest {
    /// Project filter.
    #[serde(default)]
    pub project_name: Option<String>,
    /// Only unfinished runs.
    #[serde(default)]
    pub only_active: bool,
    /// Submissions per job to include.
    #[serde(default)]
    pub job_submissions_limit: Option<usize>,
    /// Page size.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Oldest first.
    #[serde(default)]
    pub ascending: bool,
    /// Paging: the last run of the previous page.
    #[serde(default)]
    pub prev_submitted_at: Option<DateTime<Utc>>,
    /// Paging: the last run of the previous page.
    #[serde(default)]
    pub prev_run_id: Option<String>,
}

fn default_limit() -> usize {
    100
}

impl Default for ListRunsRequest {
    fn default() -> ListRunsRequest {
        ListRunsRequest {
            project_name: None,
            only_active: false,
            job_submissions_limit: None,
            limit: 100,
            ascending: false,
            prev_submitted_at: None,
            prev_run_id: None,
        }
    }
}

/// `GetRunRequest`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GetRunRequest {
    /// By name.
    #[serde(default)]
    pub run_name: Option<String>,
    /// By id.
    #[serde(default)]
    pub id: Option<String>,
}

/// `StopRunsRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct StopRunsRequest {
    /// Runs.
    pub runs_names: Vec<String>,
    /// Kill at once.
    #[serde(default)]
    pub abort: bool,
}

/// `DeleteRunsRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteRunsRequest {
    /// Runs.
    pub runs_names: Vec<String>,
}

/// `PollLogsRequest`
#[derive(Debug, Clone, Deserialize)]
pub struct PollLogsRequest {
    /// The run.
    pub run_name: String,
    /// The submission.
    pub job_submission_id: String,
    /// Paging token (a line offset).
    #[serde(default)]
    pub next_token: Option<String>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Newest first.
    #[serde(default)]
    pub descending: bool,
}
