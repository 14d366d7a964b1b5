//! `dstack ps`, `stop`, `delete`, `logs`, `offer`, `fleet`.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::CliError;
use crate::cli::{LogsArgs, OfferArgs, PsArgs, RunNameArgs};
use crate::client::Client;
use crate::render;

fn backend_label(sub: &Value) -> String {
    match sub["job_provisioning_data"]["backend"].as_str() {
        Some("remote") => format!(
            "ssh ({})",
            sub["job_provisioning_data"]["region"]
                .as_str()
                .unwrap_or("remote")
        ),
        Some(b) => format!(
            "{b} ({})",
            sub["job_provisioning_data"]["region"]
                .as_str()
                .unwrap_or("")
        ),
        None => "-".into(),
    }
}

fn gpu_label(sub: &Value) -> String {
    let gpus = sub["job_provisioning_data"]["instance_type"]["resources"]["gpus"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match gpus.first() {
        Some(g) => format!(
            "{}:{}GB:{}",
            g["name"].as_str().unwrap_or("?"),
            g["memory_mib"].as_u64().unwrap_or(0) / 1024,
            gpus.len()
        ),
        None => "-".into(),
    }
}

/// The status column: the run's status while it is active, the job's reason once finished.
fn status_label(run: &Value) -> String {
    let status = run["status"].as_str().unwrap_or("");
    if matches!(status, "terminated" | "failed" | "done")
        && let Some(msg) = run["latest_job_submission"]["status_message"].as_str()
    {
        return msg.to_string();
    }
    run["status_message"].as_str().unwrap_or(status).to_string()
}

pub(crate) fn ps(args: &PsArgs) -> Result<(), CliError> {
    let client = Client::for_project(args.project.as_deref())?;
    let list = |only_active: bool, limit: u32| {
        client.post(
            "/api/runs/list",
            json!({"project_name": client.project.name, "only_active": only_active, "include_jobs": true,
                   "job_submissions_limit": 1, "limit": limit, "ascending": false}),
        )
    };
    let mut runs = list(!args.all, 100)?;
    if !args.all && runs.as_array().is_some_and(Vec::is_empty) {
        runs = list(false, 1)?;
    }
    let runs: Vec<Value> = runs
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| args.all || r["deleted"] != json!(true))
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"project": client.project.name, "runs": runs}))
                .unwrap_or_default()
        );
        return Ok(());
    }
    let mut rows = Vec::new();
    for run in &runs {
        let sub = &run["latest_job_submission"];
        let mut row = vec![
            run["run_spec"]["run_name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            backend_label(sub),
        ];
        if args.verbose {
            row.push(
                run["jobs"][0]["job_spec"]["requirements"]["resources"]["cpu"]["count"]["min"]
                    .to_string(),
            );
        }
        row.push(gpu_label(sub));
        row.push("$0".into());
        row.push(status_label(run));
        row.push(render::ago(run["submitted_at"].as_str().unwrap_or("")));
        if args.verbose {
            row.push(
                sub["termination_reason_message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        rows.push(row);
    }
    let headers: Vec<&str> = if args.verbose {
        vec![
            "name",
            "backend",
            "cpus",
            "gpu",
            "price",
            "status",
            "submitted",
            "error",
        ]
    } else {
        vec!["name", "backend", "gpu", "price", "status", "submitted"]
    };
    println!("{}", render::table(&headers, rows));
    Ok(())
}

pub(crate) fn stop(args: &RunNameArgs, abort: bool) -> Result<(), CliError> {
    let client = Client::for_project(args.project.as_deref())?;
    if client.get_run(&args.name)?.is_none() {
        return Err(CliError::Failed(format!("Run {} not found", args.name)));
    }
    let verb = if abort { "Abort" } else { "Stop" };
    if !args.yes && !render::confirm(&format!("{verb} the run {}?", args.name)) {
        println!("Cancelled");
        return Ok(());
    }
    client.project_post(
        "runs/stop",
        json!({"runs_names": [args.name], "abort": abort}),
    )?;
    println!("{}", if abort { "Aborted" } else { "Stopped" });
    Ok(())
}

pub(crate) fn delete(args: &RunNameArgs) -> Result<(), CliError> {
    let client = Client::for_project(args.project.as_deref())?;
    if client.get_run(&args.name)?.is_none() {
        return Err(CliError::Failed(format!(
            "Run {} does not exist",
            args.name
        )));
    }
    if !args.yes && !render::confirm(&format!("Delete the run {}?", args.name)) {
        println!("Cancelled");
        return Ok(());
    }
    client.project_post("runs/delete", json!({"runs_names": [args.name]}))?;
    println!("Run {} deleted", args.name);
    Ok(())
}

/// Where to continue a log: the paging token of the last full page, and how many events after
/// it were printed already (the server ends a log without a token).
#[derive(Debug, Clone, Default)]
pub(crate) struct LogPosition {
    token: Option<String>,
    seen: usize,
}

/// Prints new log events of a job submission; returns where to continue from.
pub(crate) fn print_logs(
    client: &Client,
    run_name: &str,
    submission: &str,
    mut at: LogPosition,
) -> Result<LogPosition, CliError> {
    let stdout = std::io::stdout();
    loop {
        let page = client.project_post(
            "logs/poll",
            json!({"run_name": run_name, "job_submission_id": submission, "start_time": null, "end_time": null,
                   "descending": false, "next_token": at.token, "limit": 1000, "diagnose": false}),
        )?;
        let events = page["logs"].as_array().cloned().unwrap_or_default();
        let mut out = stdout.lock();
        for e in events.iter().skip(at.seen) {
            if let Some(bytes) = e["message"]
                .as_str()
                .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
            {
                let _ = out.write_all(&bytes);
            }
        }
        let _ = out.flush();
        match page["next_token"].as_str() {
            Some(n) => {
                at = LogPosition {
                    token: Some(n.to_string()),
                    seen: 0,
                }
            }
            None => {
                at.seen = at.seen.max(events.len());
                return Ok(at);
            }
        }
    }
}

/// The id of the newest submission of the run's first job, whose logs the CLI shows.
pub(crate) fn latest_submission_id(run: &Value) -> Option<String> {
    run["jobs"][0]["job_submissions"].as_array()?.last()?["id"]
        .as_str()
        .map(str::to_string)
}

pub(crate) fn logs(args: &LogsArgs) -> Result<(), CliError> {
    let client = Client::for_project(args.project.as_deref())?;
    let run = client
        .get_run(&args.name)?
        .ok_or_else(|| CliError::Failed(format!("Run {} not found", args.name)))?;
    let Some(submission) = latest_submission_id(&run) else {
        return Ok(());
    };
    let mut token = print_logs(&client, &args.name, &submission, LogPosition::default())?;
    if !args.follow {
        return Ok(());
    }
    loop {
        let run = client.get_run(&args.name)?;
        let finished = run
            .as_ref()
            .is_none_or(|r| matches!(r["status"].as_str(), Some("terminated" | "failed" | "done")));
        token = print_logs(&client, &args.name, &submission, token)?;
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

fn offer_resources(offer: &Value) -> String {
    let r = &offer["instance"]["resources"];
    let mut s = format!(
        "cpu={}{} mem={}GB",
        r["cpu_arch"]
            .as_str()
            .map(|a| format!("{a}:"))
            .unwrap_or_default(),
        r["cpus"],
        r["memory_mib"].as_u64().unwrap_or(0) / 1024
    );
    if let Some(disk) = r["disk"]["size_mib"].as_u64() {
        s.push_str(&format!(" disk={}GB", disk / 1024));
    }
    if let Some(g) = r["gpus"].as_array().and_then(|g| g.first()) {
        s.push_str(&format!(
            " gpu={}:{}GB:{}",
            g["name"].as_str().unwrap_or("?"),
            g["memory_mib"].as_u64().unwrap_or(0) / 1024,
            r["gpus"].as_array().map_or(0, Vec::len)
        ));
    }
    s
}

/// The offers table of a plan.
pub(crate) fn offers_table(plan: &Value) -> String {
    let offers = plan["job_plans"][0]["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rows = offers
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let backend = match o["backend"].as_str() {
                Some("remote") => format!("ssh ({})", o["region"].as_str().unwrap_or("")),
                Some(b) => format!("{b} ({})", o["region"].as_str().unwrap_or("")),
                None => "?".into(),
            };
            vec![
                (i + 1).to_string(),
                backend,
                offer_resources(o),
                o["instance"]["name"].as_str().unwrap_or("").to_string(),
                format!("${}", o["price"].as_f64().unwrap_or(0.0)),
                o["availability"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    render::table(
        &["#", "backend", "resources", "instance type", "price", ""],
        rows,
    )
}

pub(crate) fn offer(args: &OfferArgs) -> Result<(), CliError> {
    let client = Client::for_project(args.project.as_deref())?;
    let mut resources = serde_json::Map::new();
    for (key, value) in [
        ("cpu", &args.cpu),
        ("memory", &args.memory),
        ("disk", &args.disk),
        ("gpu", &args.gpu),
    ] {
        if let Some(v) = value {
            resources.insert(key.into(), json!(v));
        }
    }
    let configuration = json!({"type": "task", "commands": [":"], "resources": resources});
    let run_spec =
        json!({"run_name": null, "repo_id": null, "configuration": configuration, "profile": null});
    let plan = client.project_post(
        "runs/get_plan",
        json!({"run_spec": run_spec, "max_offers": 50, "full_offers": false, "unallocated_resources": false, "for_offers_only": true}),
    )?;
    if args.json {
        let out = json!({
            "project": plan["project_name"],
            "user": plan["user"],
            "requirements": plan["job_plans"][0]["job_spec"]["requirements"],
            "offers": plan["job_plans"][0]["offers"],
            "total_offers": plan["job_plans"][0]["total_offers"],
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    let res = &plan["effective_run_spec"]["configuration"]["resources"];
    println!(
        "{}\n",
        render::properties(&[
            ("Project", client.project.name.clone()),
            ("Resources", resources_label(res))
        ])
    );
    println!("{}", offers_table(&plan));
    Ok(())
}

/// `cpu=2.. mem=8GB.. disk=100GB.. gpu=...` from a resources spec in JSON.
pub(crate) fn resources_label(res: &Value) -> String {
    let node = dstack_core::config::Node::from_json(res);
    let mut cx = dstack_core::config::decode::Cx::new();
    match dstack_core::config::resources::resources(&mut cx, &node) {
        Ok(spec) => spec.to_string(),
        Err(_) => res.to_string(),
    }
}

pub(crate) fn fleet(project: Option<&str>) -> Result<(), CliError> {
    let client = Client::for_project(project)?;
    let fleets = client.project_post("fleets/list", json!({"include_imported": true}))?;
    let mut rows = Vec::new();
    for f in fleets.as_array().cloned().unwrap_or_default() {
        let instances = f["instances"].as_array().cloned().unwrap_or_default();
        rows.push(vec![
            f["name"].as_str().unwrap_or("").to_string(),
            instances.len().to_string(),
            String::new(),
            f["status"].as_str().unwrap_or("").to_string(),
            render::ago(f["created_at"].as_str().unwrap_or("")),
        ]);
        for i in instances {
            rows.push(vec![
                format!("  instance={}", i["instance_num"]),
                String::new(),
                offer_resources(&json!({"instance": i["instance_type"]})),
                i["status"].as_str().unwrap_or("").to_string(),
                render::ago(i["created"].as_str().unwrap_or("")),
            ]);
        }
    }
    println!(
        "{}",
        render::table(&["name", "nodes", "resources", "status", "created"], rows)
    );
    Ok(())
}
