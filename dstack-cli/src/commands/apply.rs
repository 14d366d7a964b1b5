//! `dstack apply -f FILE [-y] [-d]`: plan, confirm, submit, then follow the run.

use std::time::{Duration, Instant};

use dstack_core::config::apply::{self, ApplyArgs as EnvArgs};
use dstack_core::config::{self, Configuration};
use serde_json::{Value, json};

use crate::CliError;
use crate::cli::ApplyArgs;
use crate::client::Client;
use crate::commands::runs;
use crate::render;

pub(crate) fn run(args: &ApplyArgs) -> Result<(), CliError> {
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| CliError::Invalid(format!("cannot read {path}: {e}")))?;
    let parsed = match config::parse_str(&path, &text) {
        Ok(c) => c,
        Err(e) => {
            render::config_error(&e);
            return Err(CliError::Invalid(String::new()));
        }
    };
    let env_args = EnvArgs {
        env: args.env.clone(),
        ports: Vec::new(),
        run_args: args.run_args.clone(),
    };
    let configuration = apply::apply(&parsed, &env_args, &|k| std::env::var(k).ok())
        .map_err(|e| CliError::Invalid(format!("{path}: {e}")))?;
    if configuration.run_common().is_none() {
        return Err(CliError::Invalid(format!(
            "{path}: `type: {}` is not supported by this server yet; it runs dev environments, tasks and services",
            configuration.type_name()
        )));
    }
    let client = Client::for_project(args.project.as_deref())?;
    let file_archives = upload_files(&client, &configuration, &args.file)?;
    let (repo_data, repo_code_hash) = upload_repo(&client, &configuration, &args.file)?;
    let run_name = args
        .name
        .clone()
        .or_else(|| configuration.name().map(str::to_string));
    let run_spec = json!({
        "run_name": run_name,
        "repo_id": "none",
        "repo_data": repo_data,
        "repo_code_hash": repo_code_hash,
        "repo_dir": null,
        "file_archives": file_archives,
        "working_dir": null,
        "configuration_path": path,
        "configuration": configuration.to_json(),
        "profile": null,
        "ssh_key_pub": null,
    });
    client.project_post(
        "repos/init",
        json!({"repo_id": "none", "repo_info": {"repo_type": "virtual"}, "repo_creds": null}),
    )?;
    let spinner = spinner("Getting apply plan...");
    let plan = client.project_post(
        "runs/get_plan",
        json!({"run_spec": run_spec, "max_offers": 3, "full_offers": false, "unallocated_resources": false, "for_offers_only": false}),
    );
    spinner.finish_and_clear();
    let plan = plan?;
    print_plan(&plan, &configuration);
    let offers = plan["job_plans"][0]["offers"]
        .as_array()
        .map_or(0, Vec::len);
    if offers == 0 {
        println!(
            "No offers match the requirements: the run's jobs will fail to start unless resources free up."
        );
    }
    let shown = run_name.clone().unwrap_or_else(|| "a new run".into());
    let question = if plan["action"] == "update" {
        format!("Active run {shown} already exists. Stop and override the run?")
    } else {
        format!("Submit the run {shown}?")
    };
    if !args.yes && !render::confirm(&question) {
        println!("Run is not submitted");
        return Ok(());
    }
    if plan["action"] == "update"
        && let Some(name) = &run_name
    {
        client.project_post("runs/stop", json!({"runs_names": [name], "abort": false}))?;
        wait_finished(&client, name, Duration::from_secs(600))?;
    }
    let run = client.project_post(
        "runs/apply",
        json!({"plan": {"run_spec": plan["run_spec"], "current_resource": null}, "force": false}),
    )?;
    let name = run["run_spec"]["run_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if args.detach {
        println!("Run {name} submitted, detaching...");
        return Ok(());
    }
    follow(&client, &name, &run)
}

fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

fn print_plan(plan: &Value, configuration: &Configuration) {
    let effective = &plan["effective_run_spec"]["configuration"];
    let or_off = |v: &Value| match v {
        Value::Null => "off".to_string(),
        Value::String(s) => s.clone(),
        other => format!("{other}s"),
    };
    let rows = vec![
        (
            "Project",
            plan["project_name"].as_str().unwrap_or("").to_string(),
        ),
        ("User", plan["user"].as_str().unwrap_or("").to_string()),
        ("Type", configuration.type_name().to_string()),
        ("Resources", runs::resources_label(&effective["resources"])),
        (
            "Spot policy",
            effective["spot_policy"]
                .as_str()
                .unwrap_or("on-demand")
                .to_string(),
        ),
        ("Max price", or_off(&effective["max_price"])),
        (
            "Retry policy",
            if effective["retry"].is_null() || effective["retry"] == json!(false) {
                "off".into()
            } else {
                "on".into()
            },
        ),
        ("Max duration", or_off(&effective["max_duration"])),
    ];
    println!("{}\n", render::properties(&rows));
    println!("{}\n", runs::offers_table(plan));
}

fn wait_finished(client: &Client, name: &str, timeout: Duration) -> Result<(), CliError> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        match client.get_run(name)? {
            Some(r) if !matches!(r["status"].as_str(), Some("terminated" | "failed" | "done")) => {}
            _ => return Ok(()),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(CliError::Failed(format!(
        "the run {name} did not stop in time"
    )))
}

/// Waits for the run to start, prints the service URL, then its logs until it finishes.
fn follow(client: &Client, name: &str, run: &Value) -> Result<(), CliError> {
    let spinner = spinner(&format!("Launching {name}..."));
    let mut current = run.clone();
    loop {
        let status = current["status"].as_str().unwrap_or("");
        if matches!(status, "running" | "terminated" | "failed" | "done") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        current = client
            .get_run(name)?
            .ok_or_else(|| CliError::Failed(format!("Run {name} disappeared")))?;
    }
    spinner.finish_and_clear();
    if let Some(url) = current["service"]["url"].as_str() {
        let full = if url.starts_with('/') {
            format!("{}{url}", client.project.url)
        } else {
            url.to_string()
        };
        println!("Service is published at:\n  {full}");
        if let Some(model) = current["service"]["model"].as_object() {
            println!(
                "Model {} is published at:\n  {}{}",
                model["name"].as_str().unwrap_or(""),
                client.project.url,
                model["base_url"].as_str().unwrap_or("")
            );
        }
    }
    let Some(submission) = runs::latest_submission_id(&current) else {
        return Ok(());
    };
    let mut token = runs::LogPosition::default();
    loop {
        token = runs::print_logs(client, name, &submission, token)?;
        let run = client.get_run(name)?;
        let status = run
            .as_ref()
            .and_then(|r| r["status"].as_str().map(str::to_string))
            .unwrap_or_default();
        if matches!(status.as_str(), "terminated" | "failed" | "done") {
            runs::print_logs(client, name, &submission, token)?;
            let message = run
                .as_ref()
                .and_then(|r| {
                    r["latest_job_submission"]["status_message"]
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            println!("Run {name} {status} ({message})");
            return if status == "done" {
                Ok(())
            } else {
                Err(CliError::Failed(format!("Run {name} {status}: {message}")))
            };
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Packs every `files` entry as a tar archive (paths relative to the configuration file) and
/// uploads it; returns the run spec's `file_archives`.
fn upload_files(
    client: &Client,
    configuration: &Configuration,
    config_file: &std::path::Path,
) -> Result<Value, CliError> {
    use sha2::Digest;
    let Some(common) = configuration.run_common() else {
        return Ok(json!([]));
    };
    let base = config_file.parent().map_or_else(
        || std::path::PathBuf::from("."),
        std::path::Path::to_path_buf,
    );
    let mut out = Vec::new();
    for mapping in &common.files {
        let local = match mapping.local_path.strip_prefix("~/") {
            Some(rest) => {
                std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest)
            }
            None => base.join(&mapping.local_path),
        };
        let local = local.canonicalize().map_err(|e| {
            CliError::Invalid(format!("files: cannot read {}: {e}", local.display()))
        })?;
        let (Some(parent), Some(name)) = (local.parent(), local.file_name()) else {
            return Err(CliError::Invalid(format!(
                "files: cannot archive {}",
                local.display()
            )));
        };
        let tar = std::process::Command::new("tar")
            .arg("-cf")
            .arg("-")
            .arg("-C")
            .arg(parent)
            .arg(name)
            .output()
            .map_err(|e| CliError::Failed(format!("cannot run tar: {e}")))?;
        if !tar.status.success() {
            return Err(CliError::Failed(format!(
                "files: cannot archive {}: {}",
                local.display(),
                String::from_utf8_lossy(&tar.stderr).trim()
            )));
        }
        let hash: String = sha2::Sha256::digest(&tar.stdout)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let id = client.upload_archive(&hash, tar.stdout)?;
        out.push(json!({"id": id, "path": mapping.path}));
    }
    Ok(Value::Array(out))
}

/// A local directory in `repos` is packed (its contents, relative to it) and uploaded.
fn upload_repo(
    client: &Client,
    configuration: &Configuration,
    config_file: &std::path::Path,
) -> Result<(Value, Value), CliError> {
    use sha2::Digest;
    let Some(repo) = configuration.run_common().and_then(|c| c.repos.first()) else {
        return Ok((json!({"repo_type": "virtual"}), Value::Null));
    };
    let Some(local) = &repo.local_path else {
        return Err(CliError::Invalid(
            "remote `repos` URLs are not supported by this server yet; use a local directory"
                .into(),
        ));
    };
    let base = config_file.parent().map_or_else(
        || std::path::PathBuf::from("."),
        std::path::Path::to_path_buf,
    );
    let dir = base
        .join(local)
        .canonicalize()
        .map_err(|e| CliError::Invalid(format!("repos: cannot read {local}: {e}")))?;
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("--exclude=.git")
        .arg("-C")
        .arg(&dir)
        .arg(".")
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run tar: {e}")))?;
    if !tar.status.success() {
        return Err(CliError::Failed(format!(
            "repos: cannot archive {}",
            dir.display()
        )));
    }
    let hash: String = sha2::Sha256::digest(&tar.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    client.upload_code(&hash, tar.stdout)?;
    Ok((
        json!({"repo_type": "local", "repo_dir": dir.display().to_string()}),
        json!(hash),
    ))
}
