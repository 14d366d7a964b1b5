//! The `dstack` command-line interface: a thin layer over `dstack-core`.
//!
//! This is the only place that prints errors: commands return [`CliError`]s and [`main`]
//! reports them and picks the exit code.

mod cli;
mod client;
mod commands;
mod render;

use std::process::ExitCode;

use clap::Parser;

/// A command failed; the message has already been shaped for the user.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad input (a configuration, a flag): exit code 2. The details were printed already.
    #[error("{0}")]
    Invalid(String),
    /// The operation failed: exit code 1.
    #[error("{0}")]
    Failed(String),
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        cli::Command::Validate(v) => commands::validate::run(&v),
        cli::Command::Server(s) => commands::server::run(&s),
        cli::Command::Apply(a) => commands::apply::run(&a),
        cli::Command::Ps(a) => commands::runs::ps(&a),
        cli::Command::Stop { run, abort } => commands::runs::stop(&run, abort),
        cli::Command::Delete(a) => commands::runs::delete(&a),
        cli::Command::Logs(a) => commands::runs::logs(&a),
        cli::Command::Offer(a) => commands::runs::offer(&a),
        cli::Command::Fleet { project } => commands::runs::fleet(project.as_deref()),
        cli::Command::Project { command } => commands::project::run(&command),
        cli::Command::JobRunner { attached, dir } => {
            let code = dstack_core::backends::local::runner::main(&dir, attached);
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Invalid(message)) => {
            if !message.is_empty() {
                render::error_line(&message);
            }
            ExitCode::from(2)
        }
        Err(CliError::Failed(message)) => {
            render::error_line(&message);
            ExitCode::from(1)
        }
    }
}
