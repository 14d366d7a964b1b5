//! The API the original's CLI calls answers: real data where the local fleet has it (the
//! `local` fleet, events, GPUs from offers), otherwise a 400 envelope saying what is not
//! supported; never 405. And the upstream CLI commands on top of it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{CliOutput, Dstack, Resp, run_spec, small, task, upstream_cli, upstream_venv};

fn fleet_spec() -> Value {
    json!({"configuration": {"type": "fleet", "name": "cloud-fleet", "nodes": 1,
                             "placement": null, "resources": null, "backends": null},
           "configuration_path": "fleet.dstack.yml",
           "profile": {"name": "default", "default": false}})
}

fn gateway_configuration() -> Value {
    json!({"type": "gateway", "name": "gw", "backend": "aws", "region": "us-east-1",
           "instance_type": null, "domain": "example.com", "public_ip": true,
           "certificate": {"type": "lets-encrypt"}, "replicas": null, "tags": null})
}

fn volume_configuration() -> Value {
    json!({"type": "volume", "name": "vol", "backend": "aws", "region": "us-east-1",
           "size": "10GB", "volume_id": null})
}

/// 200 with a JSON body, or a 400 envelope with a known code and a message.
fn data_or_clear_400(r: &Resp) -> bool {
    const CODES: &[&str] = &[
        "error",
        "resource_exists",
        "resource_not_exists",
        "invalid_credentials",
        "backend_not_available",
        "repo_does_not_exist",
        "gateway_error",
    ];
    match r.status {
        200 => r.is_json,
        400 => {
            r.json["detail"].as_array().map(Vec::len) == Some(1)
                && r.error_code().is_some_and(|c| CODES.contains(&c))
                && !r.error_message().trim().is_empty()
        }
        _ => false,
    }
}

/// The endpoints of fleets, gateways, volumes, events, exports, imports and GPUs answer (not
/// 405); `fleets/get local`, `gpus/list` and `events/list` with real data; after a task has
/// run, `events/list` has the original's events for it.
#[test]
fn endpoints_the_original_cli_calls_answer() {
    let d = Dstack::start("surface");
    d.submit("main", &d.token, &task("evented", &["echo hi"]));
    let run = d.wait_finished("main", &d.token, "evented");
    assert_eq!(run["status"], "done", "{run}");
    let p = "/api/project/main";
    let offer_spec = run_spec(
        &json!({"type": "task", "commands": [":"], "image": "scratch",
                                      "resources": small()}),
    );
    let calls: Vec<(String, Value)> = vec![
        (
            format!("{p}/fleets/get"),
            json!({"name": "local", "id": null}),
        ),
        (
            format!("{p}/fleets/get_plan"),
            json!({"spec": fleet_spec()}),
        ),
        (
            format!("{p}/fleets/apply"),
            json!({"plan": {"spec": fleet_spec(), "current_resource": null}, "force": false}),
        ),
        (
            format!("{p}/fleets/delete"),
            json!({"names": ["cloud-fleet"]}),
        ),
        (format!("{p}/gateways/get"), json!({"name": "gw"})),
        (
            format!("{p}/gateways/get_plan"),
            json!({"spec": {"configuration": gateway_configuration(),
                            "configuration_path": "gateway.dstack.yml"}}),
        ),
        (
            format!("{p}/gateways/create"),
            json!({"configuration": gateway_configuration()}),
        ),
        (format!("{p}/gateways/delete"), json!({"names": ["gw"]})),
        (format!("{p}/volumes/get"), json!({"name": "vol"})),
        (
            format!("{p}/volumes/create"),
            json!({"configuration": volume_configuration()}),
        ),
        (format!("{p}/volumes/delete"), json!({"names": ["vol"]})),
        (
            "/api/events/list".into(),
            json!({"limit": 100, "ascending": false}),
        ),
        (format!("{p}/exports/list"), Value::Null),
        (format!("{p}/imports/list"), Value::Null),
        (
            format!("{p}/gpus/list"),
            json!({"run_spec": offer_spec, "group_by": ["backend"]}),
        ),
    ];
    let mut problems = Vec::new();
    for (path, body) in &calls {
        let r = d.admin(path, body);
        if !data_or_clear_400(&r) {
            problems.push(format!("{path}: {r}"));
        }
    }
    // Real data where there is some.
    let r = d.admin(
        &format!("{p}/fleets/get"),
        &json!({"name": "local", "id": null}),
    );
    if r.status != 200 || r.json["name"] != "local" {
        problems.push(format!("fleets/get local: want the local fleet, got {r}"));
    }
    let r = d.admin(
        &format!("{p}/gpus/list"),
        &json!({"run_spec": run_spec(&json!({"type": "task", "commands": [":"], "resources": small()})),
                "group_by": ["backend"]}),
    );
    if r.status != 200 || !r.json["gpus"].is_array() {
        problems.push(format!("gpus/list: want {{\"gpus\": [...]}}, got {r}"));
    }
    // The original's events for a task that ran to `done`.
    let project_id = d.admin("/api/projects/main/get", &Value::Null).json["project_id"].clone();
    let r = d.admin(
        "/api/events/list",
        &json!({"within_projects": [project_id], "limit": 100, "ascending": false}),
    );
    let run_id = run["id"].as_str().unwrap_or_default();
    let job_id = run["jobs"][0]["job_submissions"][0]["id"]
        .as_str()
        .unwrap_or_default();
    let messages_for = |id: &str| -> Vec<String> {
        r.json
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["targets"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["id"] == id))
            })
            .filter_map(|e| e["message"].as_str().map(str::to_string))
            .collect()
    };
    let run_events = messages_for(run_id);
    let job_events = messages_for(job_id);
    if r.status != 200
        || !run_events
            .iter()
            .any(|m| m == "Run submitted. Status: SUBMITTED")
        || !run_events
            .iter()
            .any(|m| m.starts_with("Run status changed ") && m.contains("-> DONE"))
        || !job_events
            .iter()
            .any(|m| m == "Job created on run submission. Status: SUBMITTED")
    {
        problems.push(format!(
            "events/list for the run: run events {run_events:?}, job events {job_events:?}: {r}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Output of the upstream CLI that means it hit an endpoint we do not serve, or crashed.
fn broken(out: &CliOutput) -> bool {
    let all = out.all();
    all.contains("405")
        || all.contains("Method Not Allowed")
        || all.contains("MethodNotAllowed")
        || all.contains("Traceback")
        || out.code.is_none()
        || (out.code != Some(0) && all.trim().is_empty())
}

/// The upstream CLI's commands around fleets, events, GPU offers, gateways and volumes work
/// or fail with a clear message; none hits a 405 or crashes.
#[test]
fn upstream_cli_fleet_event_offer_and_apply_commands_answer() {
    let Some(venv) = upstream_venv("upstream_cli_fleet_event_offer_and_apply_commands_answer")
    else {
        return;
    };
    let d = Dstack::start("upstream-surface");
    d.submit("main", &d.token, &task("evented", &["echo hi"]));
    d.wait_finished("main", &d.token, "evented");
    let cwd = d.home.dir("work");
    std::fs::write(
        cwd.join("fleet.dstack.yml"),
        "type: fleet\nname: cloud-fleet\nnodes: 1\n",
    )
    .expect("write");
    std::fs::write(
        cwd.join("gateway.dstack.yml"),
        "type: gateway\nname: gw\nbackend: aws\nregion: us-east-1\ndomain: example.com\n",
    )
    .expect("write");
    std::fs::write(
        cwd.join("volume.dstack.yml"),
        "type: volume\nname: vol\nbackend: aws\nregion: us-east-1\nsize: 10GB\n",
    )
    .expect("write");
    let commands: &[&[&str]] = &[
        &["fleet", "get", "local", "--json"],
        &["event"],
        &["offer", "--group-by", "gpu"],
        &["apply", "-f", "fleet.dstack.yml", "-y", "-d"],
        &["apply", "-f", "gateway.dstack.yml", "-y", "-d"],
        &["apply", "-f", "volume.dstack.yml", "-y", "-d"],
    ];
    let mut problems = Vec::new();
    for args in commands {
        let out = upstream_cli(&venv, &d.home, &cwd, args, Duration::from_secs(90));
        let line = args.join(" ");
        if broken(&out) {
            problems.push(format!("dstack {line}: {out}"));
        } else if line.starts_with("fleet get")
            && (out.code != Some(0) || !out.stdout.contains("\"local\""))
        {
            problems.push(format!("dstack {line}: want the local fleet: {out}"));
        } else if line == "event" && (out.code != Some(0) || !out.stdout.contains("Run submitted"))
        {
            problems.push(format!("dstack {line}: want the run's events: {out}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
