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
    /// Run one job of the local fleet (started by the server).
    #[command(hide = true)]
    JobRunner {
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
