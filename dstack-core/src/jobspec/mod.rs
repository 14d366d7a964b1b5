//! The typed job spec: what one job of a run runs, built by one pure function from the run spec
//! and used by the plan, the submission, the orchestrator and the runner alike.
//!
//! [`job_specs`] follows the original's job configurators (`services/jobs/configurators`):
//! one job per replica for services and dev environments, one per node for tasks (node groups
//! in order), each with its group's commands, resources, image and spot policy, the merged
//! profile's limits and retry policy, and the container command line of [`JobCommand`].

mod build;
mod command;
mod wire;

pub use build::{RunInput, command_of, job_specs, plan_job_spec, retry_policy};
pub use command::{JobCommand, Prelude};
pub use wire::{AppSpec, EnvVars, FileArchiveMapping, JobSpec, Requirements};

/// A job spec could not be built from the run spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JobSpecError(pub String);

/// The default graceful stop time, seconds (`DEFAULT_STOP_DURATION`).
pub const DEFAULT_STOP_DURATION: i64 = 300;
/// The default retry window, seconds (`DEFAULT_RETRY_DURATION`).
pub const DEFAULT_RETRY_DURATION: i64 = 3600;
/// The replica or node group name used when there are no groups.
pub const DEFAULT_GROUP_NAME: &str = "0";
/// The repo directory used when a run names none.
pub const LEGACY_REPO_DIR: &str = "/workflow";
/// The default image (`dstackai/base`) tag prefix.
pub const BASE_IMAGE: &str = "dstackai/base";
/// The version of the base image the original 0.22 server uses.
pub const BASE_IMAGE_VERSION: &str = "0.16";
/// The Docker-in-Docker image for `docker: true`.
pub const DIND_IMAGE: &str = "dstackai/dind";
