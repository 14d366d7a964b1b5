//! Where jobs run: the [`Backend`] trait, and the local fleet that implements it.
//!
//! A backend offers capacity for a job's requirements, starts a job from a typed [`Launch`]
//! and hands back a [`JobHandle`] (stored with the job, so a restarted server finds the job
//! again), observes it, signals it, and releases what it held. The server and the proxy see only
//! this trait and the handle's addresses: nothing above it names the host a job runs on.

pub mod local;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::api::runs::InstanceType;
use crate::jobspec::{JobCommand, JobSpec};
use crate::lifecycle::{Observed, Signal};

/// A backend operation failed. Never evidence that a job ended.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A file, process or network operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A stored handle does not belong to this backend or cannot be read.
    #[error("invalid job handle: {0}")]
    Handle(String),
}

/// Why a job could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// It fits the backend, but what it needs is held by other jobs now.
    #[error("busy: {0}")]
    Busy(String),
    /// Nothing this backend has can take it.
    #[error("{0}")]
    NoOffers(String),
    /// Starting failed.
    #[error("{0}")]
    Failed(String),
}

/// Where an instance of a backend is, as the API shows it (`JobProvisioningData`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// `BackendType` value (`remote` for hosts the server does not provision).
    pub backend: String,
    /// Instance id.
    pub instance_id: String,
    /// Instance type.
    pub instance_type: InstanceType,
    /// Host name or address.
    pub hostname: String,
    /// Address inside the cluster.
    pub internal_ip: String,
    /// Region.
    pub region: String,
    /// Price per hour.
    pub price: f64,
    /// The Unix user jobs run as.
    pub username: String,
    /// SSH port, when the host has one for jobs.
    pub ssh_port: Option<u16>,
    /// Whether jobs run in containers.
    pub dockerized: bool,
}

/// A port of a job and the address it is reachable at from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// The port the job listens on.
    pub container_port: u16,
    /// Where the server reaches it.
    pub addr: SocketAddr,
}

/// A started job, as its backend knows it. Stored with the job submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHandle {
    /// The backend's name ([`Backend::name`]).
    pub backend: String,
    /// Where it runs.
    pub instance: InstanceInfo,
    /// Its ports.
    pub ports: Vec<PortBinding>,
    /// The GPUs it holds (indexes on its host).
    pub gpus: Vec<u32>,
    /// Backend-private data.
    pub data: serde_json::Value,
}

impl JobHandle {
    /// The address of a job port, if the job has it.
    pub fn port(&self, container_port: u16) -> Option<SocketAddr> {
        self.ports
            .iter()
            .find(|p| p.container_port == container_port)
            .map(|p| p.addr)
    }
}

/// What to start: the job spec, its command, its resolved environment and files.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The job submission's id (a UUID the server made).
    pub job_id: String,
    /// The spec.
    pub spec: JobSpec,
    /// The command, for the backend to render for its environment.
    pub command: JobCommand,
    /// The environment: the spec's `env` with secrets resolved, and the run's `DSTACK_*`
    /// variables. The backend adds what depends on where the job lands.
    pub env: Vec<(String, String)>,
    /// Uploaded archives and where they go.
    pub files: Vec<(PathBuf, String)>,
    /// The uploaded code of a local repo, and where it goes.
    pub code: Option<(PathBuf, String)>,
    /// Where the job's output goes (the server's log store).
    pub log_file: PathBuf,
}

/// An offer of a backend for a job (`InstanceOfferWithAvailability` in the API).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendOffer {
    /// `BackendType` value.
    pub backend: String,
    /// Region.
    pub region: String,
    /// Instance type.
    pub instance: InstanceType,
    /// Price per hour.
    pub price: f64,
    /// Whether it is busy now.
    pub busy: bool,
    /// What matching sees.
    pub offer: crate::offers::Offer,
}

/// Somewhere jobs run.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The backend's name, stored in its handles.
    fn name(&self) -> &str;

    /// Offers for one job: every instance that fits its requirements, busy or idle. `Err`
    /// explains why nothing fits.
    fn offers(&self, spec: &JobSpec) -> Result<Vec<BackendOffer>, String>;

    /// Why this backend cannot run the job as specified (a property it cannot honour), if so.
    fn refuses(&self, spec: &JobSpec, command: &JobCommand) -> Option<String>;

    /// Why jobs are not isolated from each other and from the server (`None`: they are).
    fn isolation_problem(&self) -> Option<String>;

    /// How many jobs of one replica (nodes) it can place at most.
    fn max_nodes(&self) -> u32;

    /// Whether `count` jobs like `spec` (the replicas of a service) can run at the same time;
    /// `Err` says why not.
    fn can_place(&self, count: usize, spec: &JobSpec) -> Result<(), String>;

    /// The instances it has, for fleet views.
    fn instances(&self) -> Vec<InstanceInfo>;

    /// Starts a job. Idempotent per job id: a job that was started already is not started
    /// again, its handle comes back.
    async fn start(&self, launch: Launch) -> Result<JobHandle, StartError>;

    /// The handle of a job that was started under this id, if it was (after a crash between
    /// starting it and saving its handle).
    async fn find(&self, job_id: &str) -> Result<Option<JobHandle>, BackendError>;

    /// What the job is doing. An error says nothing about the job.
    async fn observe(&self, handle: &JobHandle) -> Result<Observed, BackendError>;

    /// Sends a signal to the job's processes.
    async fn signal(&self, handle: &JobHandle, signal: Signal) -> Result<(), BackendError>;

    /// Releases what the finished job held.
    async fn release(&self, handle: &JobHandle) -> Result<(), BackendError>;

    /// Takes back the allocations of started jobs after a restart.
    async fn restore(&self, handles: &[JobHandle]);
}
