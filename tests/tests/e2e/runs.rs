//! Run lifecycle under pressure: refused applies leave nothing behind, stop racing start,
//! concurrent applies of one name, multi-node tasks on a one-host fleet, `max_duration`,
//! and re-applying an unchanged configuration.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{
    Dstack, finished, free_port, processes_of_run, run_spec, small, task, upstream_cli,
    upstream_venv, wait_until,
};

/// Names of the runs `runs/list` shows in a project (all of them, finished too).
fn listed_names(d: &Dstack, project: &str, only_active: bool) -> Vec<String> {
    let r = d.admin(
        "/api/runs/list",
        &json!({"project_name": project, "only_active": only_active, "include_jobs": true,
                "job_submissions_limit": 1, "limit": 100, "ascending": false}),
    );
    assert_eq!(r.status, 200, "runs/list: {r}");
    r.json
        .as_array()
        .expect("a list")
        .iter()
        .filter(|run| run["deleted"] != true)
        .filter_map(|run| run["run_spec"]["run_name"].as_str().map(str::to_string))
        .collect()
}

/// Applies a task that does nothing and waits until it is done: the background processing has
/// made at least one full pass over everything submitted before it.
fn sentinel(d: &Dstack, name: &str) {
    d.submit("main", &d.token, &task(name, &["true"]));
    let run = d.wait_finished("main", &d.token, name);
    assert_eq!(run["status"], "done", "{run}");
}

/// `runs/apply` naming repo code that was never uploaded, or a file archive that does not
/// exist, is refused with 400 and creates no run.
#[test]
fn apply_with_missing_uploads_is_refused_and_leaves_no_run() {
    let d = Dstack::start("missing-uploads");
    let mut no_code = run_spec(&task("no-code", &["true"]));
    no_code["repo_code_hash"] = json!("ab".repeat(32));
    let mut no_archive = run_spec(&task("no-archive", &["true"]));
    no_archive["file_archives"] =
        json!([{"id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "path": "x.txt"}]);
    let mut problems = Vec::new();
    for spec in [&no_code, &no_archive] {
        let name = spec["run_name"].as_str().expect("name");
        let r = d.apply_spec("main", &d.token, spec);
        if r.status != 400 {
            problems.push(format!("{name}: apply: want 400, got {r}"));
        }
        let r = d.get_run("main", &d.token, name);
        if (r.status, r.error_code()) != (400, Some("resource_not_exists")) {
            problems.push(format!(
                "{name}: runs/get after the refused apply: want 400 resource_not_exists, got {r}"
            ));
        }
        if listed_names(&d, "main", false).iter().any(|n| n == name) {
            problems.push(format!("{name}: runs/list shows the refused run"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// 20 tasks stopped right after `apply` (and 5 aborted), before the server had time to start
/// them: once each run is finished, none of their processes is alive, also after the
/// background processing has made another full pass.
#[test]
fn stop_racing_start_leaves_no_process_behind() {
    let d = Dstack::start("stop-race");
    let command = "sleep 1000 & wait";
    let mut runs: Vec<(String, String)> = Vec::new();
    for (prefix, count, abort) in [("race", 20, false), ("abort", 5, true)] {
        for i in 0..count {
            let name = format!("{prefix}-{i}");
            let run = d.submit("main", &d.token, &task(&name, &[command]));
            let id = run["id"].as_str().unwrap_or_default().to_string();
            let r = d.stop("main", &d.token, &[&name], abort);
            assert_eq!(r.status, 200, "stop {name}: {r}");
            runs.push((name, id));
        }
    }
    let status_of = |name: &str| d.get_run("main", &d.token, name).json["status"].clone();
    let mut unfinished: Vec<String> = Vec::new();
    wait_until(Duration::from_secs(30), || {
        unfinished = runs
            .iter()
            .filter(|(n, _)| !finished(&status_of(n)))
            .map(|(n, _)| n.clone())
            .collect();
        unfinished.is_empty()
    });
    let alive = || -> Vec<String> {
        runs.iter()
            .flat_map(|(name, id)| {
                processes_of_run(id)
                    .into_iter()
                    .map(move |pid| format!("{name}: pid {pid}"))
            })
            .collect()
    };
    let now = alive();
    let report: Vec<String> = unfinished
        .iter()
        .map(|n| format!("{n}={}", status_of(n)))
        .collect();
    assert!(
        unfinished.is_empty() && now.is_empty(),
        "runs not finished 30 s after stop: {report:?}; processes alive: {now:?}"
    );
    for (name, _) in &runs {
        assert_ne!(status_of(name), "done", "{name} was stopped");
    }
    sentinel(&d, "after-race");
    let later = alive();
    let statuses: Vec<String> = runs
        .iter()
        .map(|(n, _)| {
            let r = d.get_run("main", &d.token, n);
            format!("{n}={}", r.json["status"])
        })
        .collect();
    assert!(
        later.is_empty(),
        "processes of stopped runs alive after another pass:\n{}\nrun statuses: {}",
        later.join("\n"),
        statuses.join(" ")
    );
}

/// 10 concurrent `runs/apply` of one run name, 5 rounds: exactly one succeeds each round
/// (the others get 400), exactly one run of that name is active, and stopping it by name
/// leaves none active.
#[test]
fn concurrent_applies_of_one_name_create_exactly_one_run() {
    let d = Dstack::start("concurrent-apply");
    let conf = task("dup", &["sleep 1000"]);
    for round in 0..5 {
        let barrier = std::sync::Barrier::new(10);
        let statuses: Vec<crate::util::Resp> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        d.apply("main", &d.token, &conf)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("apply thread"))
                .collect()
        });
        let ok = statuses.iter().filter(|r| r.status == 200).count();
        let others: Vec<String> = statuses
            .iter()
            .filter(|r| r.status != 200 && r.status != 400)
            .map(ToString::to_string)
            .collect();
        let active = listed_names(&d, "main", true)
            .iter()
            .filter(|n| *n == "dup")
            .count();
        assert!(
            ok == 1 && others.is_empty() && active == 1,
            "round {round}: {ok} of 10 applies succeeded (want 1), {active} active runs named dup (want 1), non-400 refusals: {others:?}"
        );
        let r = d.stop("main", &d.token, &["dup"], false);
        assert_eq!(r.status, 200, "{r}");
        d.wait_finished("main", &d.token, "dup");
        let active = listed_names(&d, "main", true)
            .iter()
            .filter(|n| *n == "dup")
            .count();
        assert_eq!(active, 0, "round {round}: stop by name left active runs");
    }
}

/// The local fleet is one host: a task with `nodes: 200` (or 100000) gets no offers in its
/// plan, `apply` is refused with 400 saying so, and nothing is started.
#[test]
fn multi_node_task_larger_than_the_local_fleet_is_refused() {
    let d = Dstack::start("nodes");
    let marks = d.home.dir("marks");
    // 100000 only after 200 was refused: a server that accepts it would start that many jobs.
    for nodes in [200, 100_000] {
        let name = format!("nodes-{nodes}");
        let mut conf = task(
            &name,
            &[r#"touch "$MARKS/$DSTACK_RUN_NAME-$DSTACK_NODE_RANK""#],
        );
        conf["nodes"] = json!(nodes);
        conf["env"] = json!({"MARKS": marks.display().to_string()});
        let plan = d.get_plan("main", &d.token, &conf);
        match plan.status {
            200 => assert_eq!(
                plan.json["job_plans"][0]["offers"],
                json!([]),
                "nodes: {nodes}: the plan offers the one-host fleet: {plan}"
            ),
            400 => {}
            _ => panic!("nodes: {nodes}: get_plan: {plan}"),
        }
        let r = d.apply("main", &d.token, &conf);
        assert_eq!(r.status, 400, "nodes: {nodes}: apply: {r}");
        let msg = r.error_message().to_lowercase();
        assert!(
            msg.contains("host"),
            "nodes: {nodes}: the message should say the local fleet is one host: {r}"
        );
        let r = d.get_run("main", &d.token, &name);
        assert_eq!(r.status, 400, "nodes: {nodes}: the refused run exists: {r}");
    }
    sentinel(&d, "after-nodes");
    let started: Vec<_> = std::fs::read_dir(&marks)
        .expect("marks")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(started.is_empty(), "jobs started: {started:?}");
}

/// `max_duration: 3s` on `sleep 100`: the job ends `terminated` with
/// `max_duration_exceeded`, and the run's termination reason is not `stopped_by_user`.
#[test]
fn max_duration_terminates_the_job_with_max_duration_exceeded() {
    let d = Dstack::start("max-duration");
    let mut conf = task("capped", &["sleep 100"]);
    conf["max_duration"] = json!("3s");
    let start = Instant::now();
    d.submit("main", &d.token, &conf);
    let run = d.wait_finished("main", &d.token, "capped");
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "took {:?}",
        start.elapsed()
    );
    let job = &run["latest_job_submission"];
    assert_eq!(
        (&job["status"], &job["termination_reason"]),
        (&json!("terminated"), &json!("max_duration_exceeded")),
        "the job: {job}"
    );
    // The brief asks for `max_duration_exceeded` on the run too; the original has no such
    // run termination reason and ends the run with `job_failed`. Either is right; what is
    // wrong is blaming the user.
    assert!(
        matches!(
            run["termination_reason"].as_str(),
            Some("max_duration_exceeded" | "job_failed")
        ),
        "the run's termination_reason: {} (run status {})",
        run["termination_reason"],
        run["status"]
    );
}

/// While a run is active, the plan of the same spec shows it as `current_resource`, and its
/// `effective_run_spec.configuration` equals `current_resource.run_spec.configuration`
/// (resources, priority, nodes and all defaults included), so a client sees no change.
#[test]
fn plan_of_an_unchanged_active_run_matches_the_stored_spec() {
    let d = Dstack::start("reapply-plan");
    let conf = json!({"type": "task", "name": "same", "commands": ["sleep 1000"],
                      "resources": small()});
    let plan = d.get_plan("main", &d.token, &conf);
    assert_eq!(plan.status, 200, "{plan}");
    let r = d.post(
        "/api/project/main/runs/apply",
        &d.token,
        &json!({"plan": {"run_spec": plan.json["run_spec"], "current_resource": null}, "force": false}),
    );
    assert_eq!(r.status, 200, "{r}");
    d.wait_running("main", &d.token, "same");
    let plan = d.get_plan("main", &d.token, &conf);
    assert_eq!(plan.status, 200, "{plan}");
    assert_eq!(plan.json["action"], "update", "{plan}");
    let current = &plan.json["current_resource"]["run_spec"]["configuration"];
    let effective = &plan.json["effective_run_spec"]["configuration"];
    assert!(current.is_object(), "no current_resource: {plan}");
    let differing: Vec<String> = effective
        .as_object()
        .into_iter()
        .flatten()
        .chain(current.as_object().into_iter().flatten())
        .map(|(k, _)| k.clone())
        .filter(|k| effective.get(k) != current.get(k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|k| {
            let show =
                |v: Option<&Value>| v.map_or_else(|| "(absent)".to_string(), Value::to_string);
            format!(
                "{k}: effective {} vs current {}",
                show(effective.get(&k)),
                show(current.get(&k))
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "the plan of an unchanged spec differs from the active run's:\n{}",
        differing.join("\n")
    );
}

/// The upstream CLI re-applying an unchanged task (`-y -d`) says the run exists and that it
/// detected no changes.
#[test]
fn upstream_reapply_of_an_unchanged_task_detects_no_changes() {
    let Some(venv) = upstream_venv("upstream_reapply_of_an_unchanged_task_detects_no_changes")
    else {
        return;
    };
    let d = Dstack::start("upstream-reapply");
    let cwd = d.home.dir("work");
    std::fs::write(
        cwd.join("task.dstack.yml"),
        "type: task\nname: idle\ncommands:\n  - sleep 1000\nresources:\n  cpu: 1..\n  memory: 0.1GB..\n  disk: 0.1GB..\n",
    )
    .expect("write");
    let args = ["apply", "-f", "task.dstack.yml", "-y", "-d"];
    let first = upstream_cli(&venv, &d.home, &cwd, &args, Duration::from_secs(120));
    assert_eq!(first.code, Some(0), "first apply: {first}");
    d.wait_run(
        "main",
        &d.token,
        "idle",
        Duration::from_secs(60),
        "running",
        |r| r["status"] == "running" || finished(&r["status"]),
    );
    let second = upstream_cli(&venv, &d.home, &cwd, &args, Duration::from_secs(120));
    let text = second.all();
    assert!(
        second.code == Some(0)
            && text.contains("already exists")
            && text.contains("Detected no changes"),
        "second apply: {second}"
    );
}

/// Where jobs share the host's network (no sandbox: the admin's jobs on a server started with
/// `--no-sandbox`), a service whose port another job holds waits for it (never started to fail
/// on "address in use"), then runs; two replicas of one service on one host are refused with
/// the reason. (Jobs with a network of their own share ports: see `network`.)
#[test]
fn a_held_port_makes_the_next_service_wait_then_run() {
    let d = Dstack::start_env("port-held", &[("DSTACK_SERVER_NO_SANDBOX", "true")]);
    let token = d.token.clone();
    let port = free_port();
    let service = |name: &str| {
        json!({"type": "service", "name": name, "port": port, "auth": false,
               "commands": [format!("python3 -m http.server {port}")], "resources": small()})
    };
    d.submit("main", &token, &service("first"));
    let first = d.wait_running("main", &token, "first");
    assert_eq!(first["status"], "running", "{first}");
    d.submit("main", &token, &service("second"));
    let second = d.get_run("main", &token, "second");
    assert_eq!(second.json["status"], "submitted", "{second}");
    d.stop("main", &token, &["first"], false);
    let second = d.wait_running("main", &token, "second");
    assert_eq!(second["status"], "running", "{second}");
    let mut two = service("pair");
    two["replicas"] = json!(2);
    let refused = d.apply("main", &token, &two);
    assert_eq!(refused.status, 400, "{refused}");
    assert!(
        refused.error_message().contains(&format!("port {port}")),
        "{refused}"
    );
    d.stop("main", &token, &["second"], false);
    d.wait_finished("main", &token, "second");
}
