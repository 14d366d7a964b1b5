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

/// A borderless table with uppercase headers, as the original prints them.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(headers.iter().map(|h| h.to_uppercase()));
    for row in rows {
        t.add_row(row);
    }
    t.to_string()
}

/// Key/value rows without a header (plans).
pub(crate) fn properties(rows: &[(&str, String)]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    for (k, v) in rows {
        t.add_row(vec![(*k).to_string(), v.clone()]);
    }
    t.to_string()
}

/// `now`, `5 sec ago`, `3 mins ago`, `2 hours ago`, `4 days ago`.
pub(crate) fn ago(timestamp: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(timestamp) else {
        return timestamp.to_string();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        0..=2 => "now".into(),
        3..=59 => format!("{secs} sec ago"),
        60..=3599 => plural(secs / 60, "min"),
        3600..=86_399 => plural(secs / 3600, "hour"),
        _ => plural(secs / 86_400, "day"),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// Asks a yes/no question on the terminal; `false` when there is no answer.
pub(crate) fn confirm(question: &str) -> bool {
    use std::io::Write;
    print!("{question} [y/n]: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
