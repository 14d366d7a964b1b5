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
