//! `dstack project add|list|set-default`.

use serde_json::{Value, json};

use crate::CliError;
use crate::cli::ProjectCommand;
use crate::client::{self, Client, ProjectEntry};
use crate::render;

pub(crate) fn run(cmd: &ProjectCommand) -> Result<(), CliError> {
    match cmd {
        ProjectCommand::Add {
            name,
            url,
            token,
            yes,
            no_default,
        } => add(name, url, token, *yes, *no_default),
        ProjectCommand::List => list(),
        ProjectCommand::SetDefault { name } => set_default(name),
    }
}

fn add(name: &str, url: &str, token: &str, yes: bool, no_default: bool) -> Result<(), CliError> {
    let entry = ProjectEntry {
        name: name.to_string(),
        url: url.trim_end_matches('/').to_string(),
        token: token.to_string(),
        default: !no_default,
    };
    Client::new(entry.clone())?.post(&format!("/api/projects/{name}/get"), Value::Null)?;
    let mut config = client::read_config()?;
    let exists = client::projects(&config).iter().any(|p| p.name == name);
    if exists
        && !yes
        && !render::confirm(&format!(
            "The project `{name}` is configured already. Override it?"
        ))
    {
        return Ok(());
    }
    let list = config["projects"].as_array().cloned().unwrap_or_default();
    let mut list: Vec<Value> = list.into_iter().filter(|p| p["name"] != name).collect();
    if entry.default {
        for p in &mut list {
            p["default"] = json!(false);
        }
    }
    list.push(json!({"default": entry.default, "name": name, "token": token, "url": entry.url}));
    config["projects"] = json!(list);
    client::write_config(&config)?;
    println!(
        "Configuration is updated at {}",
        client::config_path().display()
    );
    Ok(())
}

fn list() -> Result<(), CliError> {
    let config = client::read_config()?;
    let rows = client::projects(&config)
        .into_iter()
        .map(|p| {
            vec![
                p.name,
                p.url,
                if p.default {
                    "✓".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    println!("{}", render::table(&["project", "url", "default"], rows));
    Ok(())
}

fn set_default(name: &str) -> Result<(), CliError> {
    let mut config = client::read_config()?;
    if !client::projects(&config).iter().any(|p| p.name == name) {
        return Err(CliError::Invalid(format!(
            "project `{name}` is not configured"
        )));
    }
    if let Some(list) = config["projects"].as_array_mut() {
        for p in list {
            p["default"] = json!(p["name"] == name);
        }
    }
    client::write_config(&config)?;
    println!("Default project is set to {name}");
    Ok(())
}
