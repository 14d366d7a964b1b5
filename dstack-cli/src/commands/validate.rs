//! `dstack validate [--json] FILE...`: parse each file, print `FILE: OK` (or its JSON) for valid
//! ones and every error of the invalid ones. Exit 0 only when all files are valid.

use std::io::Write;

use dstack_core::config;

use crate::CliError;
use crate::cli::ValidateArgs;
use crate::render;

pub(crate) fn run(args: &ValidateArgs) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut invalid = 0usize;
    for path in &args.files {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                render::error_line(&format!("cannot read {name}: {e}"));
                invalid += 1;
                continue;
            }
        };
        match config::parse_str(&name, &text) {
            Ok(c) if args.json => {
                let json = serde_json::to_string(&c).unwrap_or_default();
                let _ = writeln!(out, "{json}");
            }
            Ok(_) => {
                let _ = writeln!(out, "{name}: OK");
            }
            Err(e) => {
                let _ = out.flush();
                render::config_error(&e);
                invalid += 1;
            }
        }
    }
    let _ = out.flush();
    match invalid {
        0 => Ok(()),
        1 if args.files.len() == 1 => Err(CliError::Invalid(String::new())),
        n => Err(CliError::Invalid(format!(
            "{n} of {} files are invalid",
            args.files.len()
        ))),
    }
}
