//! Command-line syntax (clap derive types only).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// dstack: run AI workloads (services, tasks, dev environments) on your fleets.
#[derive(Debug, Parser)]
#[command(name = "dstack", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check configuration files without applying them.
    Validate(ValidateArgs),
    /// Start the dstack server.
    Server(ServerArgs),
    /// Plan and submit a run from a configuration file.
    Apply(ApplyArgs),
    /// List runs.
    Ps(PsArgs),
    /// Stop a run.
    Stop {
        #[command(flatten)]
        run: RunNameArgs,
        /// Kill at once instead of a graceful stop.
        #[arg(long, short = 'x')]
        abort: bool,
    },
    /// Delete a finished run.
    Delete(RunNameArgs),
    /// Show a run's output.
    Logs(LogsArgs),
    /// Show the offers that match resource requirements.
    Offer(OfferArgs),
    /// List fleets.
    Fleet {
        /// Project (the default project when omitted).
        #[arg(long)]
        project: Option<String>,
    },
    /// Manage the projects the CLI knows.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Run one job of the local fleet (started by the server).
    #[command(hide = true)]
    JobRunner {
        /// Run the job in this process (what the detached runner does).
        #[arg(long)]
        attached: bool,
        /// The job's directory.
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "DSTACK_SERVER_HOST", default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Port to listen on.
    #[arg(long, short = 'p', env = "DSTACK_SERVER_PORT", default_value_t = 3000)]
    pub(crate) port: u16,
    /// The admin user's token (created, or replaced if it differs).
    #[arg(long, env = "DSTACK_SERVER_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(
        long,
        short = 'l',
        env = "DSTACK_SERVER_LOG_LEVEL",
        default_value = "info"
    )]
    pub(crate) log_level: String,
    /// Server directory (state, logs, config.yml); `~/.dstack/server` by default.
    #[arg(long, env = "DSTACK_SERVER_DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// The largest accepted upload (`files:` archives) in bytes; 0 for no limit.
    #[arg(long, env = "DSTACK_SERVER_CODE_UPLOAD_LIMIT", default_value_t = dstack_core::server::DEFAULT_UPLOAD_LIMIT)]
    pub(crate) upload_limit: u64,
    /// Seconds the proxy waits for a replica between response chunks.
    #[arg(long, env = "DSTACK_SERVICE_CLIENT_TIMEOUT", default_value_t = 60)]
    pub(crate) service_timeout: u64,
    /// Largest request body the proxy passes to services, bytes.
    #[arg(long, env = "DSTACK_SERVER_PROXY_MAX_BODY", default_value_t = 64 * 1024 * 1024)]
    pub(crate) proxy_max_body: u64,
    /// Proxy threads, each serving its own connections; 0 for one per CPU.
    #[arg(long, env = "DSTACK_SERVER_PROXY_THREADS", default_value_t = 0)]
    pub(crate) proxy_threads: usize,
    /// Seconds a client has to send a complete request head (from the connection for its first
    /// request, from the first byte for later ones): 408 or close after it; 0 for no limit.
    #[arg(long, env = "DSTACK_SERVER_PROXY_HEADER_TIMEOUT", default_value_t = 10)]
    pub(crate) proxy_header_timeout: u64,
    /// Seconds a kept-alive client connection may wait for its next request; 0 for no limit.
    #[arg(long, env = "DSTACK_SERVER_PROXY_IDLE_TIMEOUT", default_value_t = 60)]
    pub(crate) proxy_idle_timeout: u64,
    /// Connections one client address may hold open at once (more get 429); 0 for no limit,
    /// e.g. behind a reverse proxy on the same host.
    #[arg(
        long,
        env = "DSTACK_SERVER_PROXY_MAX_CLIENT_CONNECTIONS",
        default_value_t = 1024
    )]
    pub(crate) proxy_max_client_connections: usize,
    /// Largest request head (request line and header fields), bytes (431 above; at most 1 MiB).
    #[arg(long, env = "DSTACK_SERVER_PROXY_MAX_HEADER_SIZE", default_value_t = 64 * 1024)]
    pub(crate) proxy_max_header_size: usize,
    /// Most header fields in one request (431 above; at most 256).
    #[arg(long, env = "DSTACK_SERVER_PROXY_MAX_HEADERS", default_value_t = 100)]
    pub(crate) proxy_max_headers: usize,
    /// Run jobs without the bubblewrap sandbox (only global admins may then run jobs, unless
    /// --allow-unsandboxed-jobs).
    #[arg(long, env = "DSTACK_SERVER_NO_SANDBOX")]
    pub(crate) no_sandbox: bool,
    /// Let every project member run jobs where they cannot be sandboxed (no bubblewrap, no user
    /// namespaces, or --no-sandbox). Such a job can read the server's files.
    #[arg(long, env = "DSTACK_SERVER_ALLOW_UNSANDBOXED_JOBS")]
    pub(crate) allow_unsandboxed_jobs: bool,
    /// Database URL; SQLite in the server directory by default, `postgres://...` for PostgreSQL.
    #[arg(long, env = "DSTACK_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Print each valid configuration, normalised, as one JSON document per line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Configuration files (`.dstack.yml`).
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The configuration file.
    #[arg(short = 'f', long = "file", default_value = ".dstack.yml")]
    pub(crate) file: PathBuf,
    /// Project (the default project when omitted).
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Run name (overrides `name` in the file).
    #[arg(short = 'n', long)]
    pub(crate) name: Option<String>,
    /// Environment variables: `KEY=VALUE`, or `KEY` to pass yours.
    #[arg(short = 'e', long = "env")]
    pub(crate) env: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,
    /// Return once the run is submitted.
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Arguments for `${{ run.args }}`.
    #[arg(last = true)]
    pub(crate) run_args: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Project (the default project when omitted).
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Show finished runs too.
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// More columns.
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunNameArgs {
    /// The run.
    pub(crate) name: String,
    /// Project (the default project when omitted).
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The run.
    pub(crate) name: String,
    /// Project (the default project when omitted).
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Keep printing new output until the run finishes.
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OfferArgs {
    /// Project (the default project when omitted).
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// CPUs, e.g. `8`, `4..`, `arm:8`.
    #[arg(long)]
    pub(crate) cpu: Option<String>,
    /// Memory, e.g. `16GB..`.
    #[arg(long)]
    pub(crate) memory: Option<String>,
    /// Disk, e.g. `100GB..`.
    #[arg(long)]
    pub(crate) disk: Option<String>,
    /// GPUs, e.g. `A100:80GB:2`.
    #[arg(long)]
    pub(crate) gpu: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Add (or replace) a project.
    Add {
        /// Project name.
        #[arg(long)]
        name: String,
        /// Server URL.
        #[arg(long)]
        url: String,
        /// User token.
        #[arg(long)]
        token: String,
        /// Do not ask before replacing.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Do not make it the default project.
        #[arg(long)]
        no_default: bool,
    },
    /// List configured projects.
    List,
    /// Make a project the default.
    SetDefault {
        /// Project name.
        name: String,
    },
}
