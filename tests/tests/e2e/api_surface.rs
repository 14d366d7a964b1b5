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

/// What cannot exist is refused (400 `error`, naming the local fleet) or not found (400
/// `resource_not_exists`), as the original answers unknown names; deleting names that name
/// nothing is accepted, as the original does. The listings across projects show the built-in
/// fleet; events page by `(recorded_at, id)` and a user sees only the events of their projects.
#[test]
fn refusals_not_found_paging_and_visibility() {
    let d = Dstack::start("surface-rules");
    d.submit("main", &d.token, &task("first", &["true"]));
    d.wait_finished("main", &d.token, "first");
    let p = "/api/project/main";
    let mut problems = Vec::new();
    let refused: Vec<(String, Value)> = vec![
        (format!("{p}/fleets/delete"), json!({"names": ["local"]})),
        (
            format!("{p}/fleets/delete_instances"),
            json!({"name": "local", "instance_nums": [0]}),
        ),
        (
            format!("{p}/fleets/get_plan"),
            json!({"spec": {"configuration": {"type": "fleet", "name": "local"}, "profile": {}}}),
        ),
        (
            format!("{p}/volumes/create"),
            json!({"configuration": volume_configuration()}),
        ),
        (
            format!("{p}/gateways/apply"),
            json!({"plan": {"spec": {"configuration": gateway_configuration()}}, "force": false}),
        ),
    ];
    for (path, body) in &refused {
        let r = d.admin(path, body);
        if (r.status, r.error_code()) != (400, Some("error"))
            || !r.error_message().contains("local")
        {
            problems.push(format!(
                "{path}: want a 400 that names the local fleet: {r}"
            ));
        }
    }
    let missing: Vec<(String, Value)> = vec![
        (format!("{p}/fleets/get"), json!({"name": "nope"})),
        (format!("{p}/gateways/get"), json!({"name": "gw"})),
        (format!("{p}/volumes/get"), json!({"name": "vol"})),
        (
            format!("{p}/instances/get"),
            json!({"id": "00000000-0000-0000-0000-000000000000"}),
        ),
        (
            format!("{p}/repos/get"),
            json!({"repo_id": "none", "include_creds": false}),
        ),
    ];
    for (path, body) in &missing {
        let r = d.admin(path, body);
        if (r.status, r.error_code()) != (400, Some("resource_not_exists")) {
            problems.push(format!("{path}: want 400 resource_not_exists: {r}"));
        }
    }
    for (path, body) in [
        (format!("{p}/fleets/delete"), json!({"names": ["nope"]})),
        (format!("{p}/gateways/delete"), json!({"names": ["gw"]})),
        (format!("{p}/volumes/delete"), json!({"names": ["vol"]})),
    ] {
        let r = d.admin(&path, &body);
        if r.status != 200 || r.json != Value::Null {
            problems.push(format!("{path}: want 200 null: {r}"));
        }
    }
    // The built-in fleet across projects, and by id.
    let fleets = d.admin("/api/fleets/list", &json!({}));
    let fleet_id = fleets.json[0]["id"].clone();
    if fleets.status != 200 || fleets.json[0]["name"] != "local" {
        problems.push(format!("/api/fleets/list: want the local fleet: {fleets}"));
    }
    let by_id = d.admin(
        &format!("{p}/fleets/get"),
        &json!({"name": null, "id": fleet_id}),
    );
    if by_id.status != 200 || by_id.json["name"] != "local" {
        problems.push(format!("fleets/get by id: {by_id}"));
    }
    let instances = d.admin("/api/instances/list", &json!({"project_names": ["main"]}));
    if instances.status != 200 || instances.json[0]["fleet_name"] != "local" {
        problems.push(format!("/api/instances/list: {instances}"));
    }
    // Pages of two events, oldest first, cover every event once.
    let all = d.admin(
        "/api/events/list",
        &json!({"ascending": true, "limit": 100}),
    );
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect()
    };
    let all_ids = ids(all.json.as_array().map(Vec::as_slice).unwrap_or_default());
    let mut paged: Vec<String> = Vec::new();
    let (mut prev_at, mut prev_id) = (Value::Null, Value::Null);
    for _ in 0..50 {
        let r = d.admin(
            "/api/events/list",
            &json!({"ascending": true, "limit": 2, "prev_recorded_at": prev_at, "prev_id": prev_id}),
        );
        let page = r.json.as_array().cloned().unwrap_or_default();
        paged.extend(ids(&page));
        match page.last() {
            Some(last) if page.len() == 2 => {
                prev_at = last["recorded_at"].clone();
                prev_id = last["id"].clone();
            }
            _ => break,
        }
    }
    if all_ids.len() < 4 || paged != all_ids {
        problems.push(format!(
            "events paged by two: {paged:?}, all at once: {all_ids:?}"
        ));
    }
    // Another project's user sees none of main's events until they join it.
    let token = d.create_user("alice");
    d.create_project(&token, "alice-proj");
    let project_id = d.admin("/api/projects/main/get", &Value::Null).json["project_id"].clone();
    for body in [json!({}), json!({"within_projects": [project_id]})] {
        let r = d.post("/api/events/list", &token, &body);
        if r.status != 200 || r.json != json!([]) {
            problems.push(format!("events of main seen by a non-member: {r}"));
        }
    }
    d.add_member("main", "alice", "user");
    let r = d.post(
        "/api/events/list",
        &token,
        &json!({"within_projects": [project_id]}),
    );
    if r.status != 200
        || ids(r.json.as_array().map(Vec::as_slice).unwrap_or_default()) != {
            let mut newest_first = all_ids.clone();
            newest_first.reverse();
            newest_first
        }
    {
        problems.push(format!("events of main seen by a member: {r}"));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
