//! [`JobCommand`]: what a job's container runs, rendered for the base image or for a host that
//! provides the base image's environment itself.

/// What a job's container runs: a command line as it is (an `entrypoint` with arguments, the
/// image's own `ENTRYPOINT` and `CMD`), or a shell with a prelude that prepares the image and
/// the user's commands. Built by [`crate::spec::job_command_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// A command line run as it is.
    Exec(Vec<String>),
    /// `<shell> -i -c "<prelude> && <script>"`.
    Shell {
        /// Absolute path of the shell.
        shell: String,
        /// What prepares the environment.
        prelude: Prelude,
        /// The user's commands, in order.
        script: Vec<String>,
    },
}

/// What the base image runs before the user's commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prelude {
    /// Nothing (a custom image).
    None,
    /// Start the Docker daemon (`docker: true`).
    Dockerd,
    /// Create and activate a virtual environment with this Python version (the base image).
    PythonVenv(String),
}

impl JobCommand {
    /// The command line the original puts in the job spec.
    pub fn argv(&self) -> Vec<String> {
        match self {
            JobCommand::Exec(argv) => argv.clone(),
            JobCommand::Shell {
                shell,
                prelude,
                script,
            } => {
                let mut all = match prelude {
                    Prelude::None => Vec::new(),
                    Prelude::Dockerd => vec!["start-dockerd".to_string()],
                    Prelude::PythonVenv(python) => crate::spec::venv_prelude(python),
                };
                all.extend(script.iter().cloned());
                vec![
                    shell.clone(),
                    "-i".into(),
                    "-c".into(),
                    crate::spec::join_shell_commands(&all),
                ]
            }
        }
    }

    /// The command line for a host that provides the prelude itself (its Python on `PATH`
    /// rather than a virtual environment made with `sudo` in `/dstack`): the same shell, flags
    /// and script.
    pub fn host_argv(&self) -> Vec<String> {
        match self {
            JobCommand::Exec(argv) => argv.clone(),
            JobCommand::Shell { shell, script, .. } => vec![
                shell.clone(),
                "-i".into(),
                "-c".into(),
                crate::spec::join_shell_commands(script),
            ],
        }
    }
}
