//! How errors look on the terminal: miette reports for configuration errors, one line for the
//! rest. Colour only on a terminal and without `NO_COLOR`.

use std::io::IsTerminal;

use dstack_core::config::ConfigError;
use miette::{GraphicalReportHandler, GraphicalTheme};

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints `error: message`.
pub(crate) fn error_line(message: &str) {
    if color() {
        eprintln!("\x1b[1;31merror\x1b[0m: {message}");
    } else {
        eprintln!("error: {message}");
    }
}

/// Prints every issue of a configuration error with its source line, then a summary.
pub(crate) fn config_error(err: &ConfigError) {
    let theme = if color() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut text = String::new();
    for diagnostic in err.diagnostics() {
        if handler.render_report(&mut text, &diagnostic).is_err() {
            text.push_str(&diagnostic.to_string());
        }
        text.push('\n');
    }
    let n = err.issues.len();
    eprint!("{text}");
    error_line(&format!(
        "{}: {n} error{}",
        err.source_name,
        if n == 1 { "" } else { "s" }
    ));
}
