//! Hostile and heavy input: malformed bodies on every endpoint, a huge `env`, bodies over the
//! size limit, 1,000 concurrent `runs/list`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Body, Dstack, http_client, run_spec, task, wait_until};

/// Every API endpoint the server routes (`dstack-core/src/server/routes.rs`) plus the ones the
/// original's CLI calls that it does not route yet. `(method, path)`.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/api/server/get_info"),
    ("POST", "/api/users/get_my_user"),
    ("POST", "/api/users/list"),
    ("POST", "/api/users/get_user"),
    ("POST", "/api/users/create"),
    ("POST", "/api/users/refresh_token"),
    ("POST", "/api/users/delete"),
    ("POST", "/api/projects/list"),
    ("POST", "/api/projects/create"),
    ("POST", "/api/projects/main/get"),
    ("POST", "/api/projects/main/set_members"),
    ("POST", "/api/projects/main/add_members"),
    ("POST", "/api/projects/main/remove_members"),
    ("POST", "/api/runs/list"),
    ("POST", "/api/project/main/runs/get_plan"),
    ("POST", "/api/project/main/runs/apply"),
    ("POST", "/api/project/main/runs/get"),
    ("POST", "/api/project/main/runs/stop"),
    ("POST", "/api/project/main/runs/delete"),
    ("POST", "/api/project/main/logs/poll"),
    ("GET", "/api/project/main/metrics/job/some-run"),
    ("POST", "/api/project/main/repos/init"),
    ("POST", "/api/project/main/repos/upload_code"),
    ("POST", "/api/project/main/fleets/list"),
    ("POST", "/api/project/main/fleets/get"),
    ("POST", "/api/project/main/fleets/get_plan"),
    ("POST", "/api/project/main/fleets/apply"),
    ("POST", "/api/project/main/fleets/delete"),
    ("POST", "/api/project/main/gateways/list"),
    ("POST", "/api/project/main/gateways/get"),
    ("POST", "/api/project/main/gateways/get_plan"),
    ("POST", "/api/project/main/gateways/create"),
    ("POST", "/api/project/main/gateways/delete"),
    ("POST", "/api/project/main/volumes/list"),
    ("POST", "/api/project/main/volumes/get"),
    ("POST", "/api/project/main/volumes/create"),
    ("POST", "/api/project/main/volumes/delete"),
    ("POST", "/api/files/upload_archive"),
    ("POST", "/api/files/get_archive_by_hash"),
    ("POST", "/api/project/main/secrets/list"),
    ("POST", "/api/project/main/secrets/get"),
    ("POST", "/api/project/main/secrets/create_or_update"),
    ("POST", "/api/project/main/secrets/delete"),
    ("POST", "/api/events/list"),
    ("POST", "/api/project/main/exports/list"),
    ("POST", "/api/project/main/imports/list"),
    ("POST", "/api/project/main/gpus/list"),
];

fn bodies() -> Vec<(&'static str, Body)> {
    let json = |s: &str| Body::Raw(s.as_bytes().to_vec(), "application/json".into());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    vec![
        ("[]", json("[]")),
        ("\"x\"", json("\"x\"")),
        ("5", json("5")),
        ("null", json("null")),
        ("{}", json("{}")),
        ("{\"run_spec\": []}", json(r#"{"run_spec": []}"#)),
        ("{\"run_spec\": \"x\"}", json(r#"{"run_spec": "x"}"#)),
        ("{\"run_spec\": 5}", json(r#"{"run_spec": 5}"#)),
        (
            "{\"plan\": {\"run_spec\": 5}}",
            json(r#"{"plan": {"run_spec": 5}}"#),
        ),
        (
            "{\"plan\": {\"run_spec\": [], ...}, \"force\": false}",
            json(r#"{"plan": {"run_spec": [], "current_resource": null}, "force": false}"#),
        ),
        (
            "{\"plan\": {\"run_spec\": \"x\", ...}, \"force\": false}",
            json(r#"{"plan": {"run_spec": "x", "current_resource": null}, "force": false}"#),
        ),
        (
            "invalid UTF-8",
            Body::Raw(
                b"{\"run_name\": \"\xff\xfe\xfd\"}".to_vec(),
                "application/json".into(),
            ),
        ),
        ("10k-deep nested arrays", json(&deep)),
        ("empty body", Body::Empty),
    ]
}

/// Malformed bodies on every endpoint: never a 5xx, always a JSON body, and the server keeps
/// answering `/healthcheck`. `runs/apply` and `runs/get_plan` with a `run_spec` that is not an
/// object are client errors (4xx).
#[test]
fn malformed_bodies_never_break_any_endpoint() {
    let d = Dstack::start("malformed");
    let auth = format!("Bearer {}", d.token);
    let mut problems = Vec::new();
    for (method, path) in ENDPOINTS {
        for (label, body) in bodies() {
            let r = match d.try_call(method, path, Some(&auth), body) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("{method} {path} with {label}: no answer: {e}"));
                    continue;
                }
            };
            if r.status >= 500 || !r.is_json {
                problems.push(format!("{method} {path} with {label}: {r}"));
            }
            let spec_not_object = label.contains("run_spec");
            let plan_or_apply = path.ends_with("runs/apply") || path.ends_with("runs/get_plan");
            if spec_not_object && plan_or_apply && !(400..500).contains(&r.status) {
                problems.push(format!(
                    "{method} {path} with {label}: want 4xx, got {}",
                    r.status
                ));
            }
        }
        match d.try_call("GET", "/healthcheck", None, Body::Empty) {
            Ok(r) if r.status == 200 => {}
            other => {
                problems.push(format!("/healthcheck after {path}: {other:?}"));
                break;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\nthe server's last lines:\n{}",
        problems.len(),
        problems.join("\n"),
        d.output_tail(40)
    );
}

/// Env names `K` + three base-62 digits: short, so 200,000 of them stay near 2 MB.
fn env_keys(n: usize) -> serde_json::Map<String, Value> {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..n)
        .map(|i| {
            let name: String = [i / (62 * 62), (i / 62) % 62, i % 62]
                .iter()
                .map(|&d| DIGITS[d] as char)
                .collect();
            (format!("K{name}"), json!(""))
        })
        .collect()
}

/// `get_plan` of a task with a 200,000-key `env` (about 2 MB) answers, with a plan or a client
/// error, within 20 s.
#[test]
fn get_plan_with_a_200k_key_env_answers_within_20s() {
    let d = Dstack::start("huge-env");
    let mut conf = task("big-env", &["true"]);
    conf["env"] = Value::Object(env_keys(200_000));
    let body = serde_json::to_vec(&json!({"run_spec": run_spec(&conf)})).expect("json");
    let client = http_client(Duration::from_secs(20));
    let started = std::time::Instant::now();
    let answer = client
        .post(format!("{}/api/project/main/runs/get_plan", d.url))
        .header("Authorization", format!("Bearer {}", d.token))
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send();
    let resp = match answer {
        Ok(resp) => resp,
        Err(e) => panic!(
            "get_plan with {} bytes of env did not answer within 20 s ({:?}): {e}",
            body.len(),
            started.elapsed()
        ),
    };
    let status = resp.status().as_u16();
    let text: String = resp.text().unwrap_or_default().chars().take(500).collect();
    assert!(
        (200..300).contains(&status) || (400..500).contains(&status),
        "HTTP {status} {text}"
    );
}

/// A body over the server's request size limit (8 MiB against the API's 2 MiB) gets the
/// original's JSON error envelope, not a plain-text error.
#[test]
fn oversized_bodies_get_a_json_error_envelope() {
    let d = Dstack::start("oversized");
    let big = "a".repeat(8 * 1024 * 1024);
    let mut problems = Vec::new();
    for (path, body) in [
        (
            "/api/project/main/runs/get",
            json!({"run_name": big, "id": null}),
        ),
        (
            "/api/project/main/runs/get_plan",
            // Invalid whatever the limit: `bogus` is not a property of a task.
            json!({"run_spec": {"run_name": "big", "configuration": {"type": "task", "commands": ["true"], "bogus": big}}}),
        ),
    ] {
        let r = d.post(path, &d.token, &body);
        if !(400..500).contains(&r.status) || !r.is_json || r.json.get("detail").is_none() {
            problems.push(format!("{path}: {r}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// 1,000 concurrent `runs/list` answers of about 100 runs each: all 200, and the server's
/// resident memory settles within 150 MB of what it was before the load.
#[test]
fn concurrent_runs_list_keeps_memory_bounded() {
    let d = Dstack::start("list-load");
    let padding: serde_json::Map<String, Value> = (0..8)
        .map(|i| (format!("PAD_{i}"), json!("x".repeat(100))))
        .collect();
    for i in 0..200 {
        let mut conf = task(&format!("listed-{i}"), &["true"]);
        conf["env"] = Value::Object(padding.clone());
        d.submit("main", &d.token, &conf);
    }
    let list_body = json!({"project_name": "main", "repo_id": null, "username": null,
        "only_active": false, "include_jobs": true, "job_submissions_limit": 1,
        "prev_submitted_at": null, "prev_run_id": null, "limit": 100, "ascending": false});
    let active_body = json!({"project_name": "main", "only_active": true, "limit": 100});
    assert!(
        wait_until(Duration::from_secs(180), || d
            .admin("/api/runs/list", &active_body)
            .json
            .as_array()
            .is_some_and(Vec::is_empty)),
        "the 200 runs did not finish"
    );
    let one = d.admin("/api/runs/list", &list_body);
    assert_eq!(one.status, 200, "{one}");
    assert!(
        one.text.len() > 100_000,
        "one answer is only {} bytes",
        one.text.len()
    );
    let before = d.rss_kib();
    let url = format!("{}/api/runs/list", d.url);
    let token = d.token.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let results: Vec<Result<(u16, usize), String>> = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .no_proxy()
            .build()
            .expect("client");
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..1000 {
            let (client, url, token, body) = (
                client.clone(),
                url.clone(),
                token.clone(),
                list_body.clone(),
            );
            set.spawn(async move {
                let resp = client
                    .post(url)
                    .header("Authorization", format!("Bearer {token}"))
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
                Ok((status, bytes.len()))
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap_or_else(|e| Err(e.to_string())));
        }
        out
    });
    drop(rt);
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Ok((200, _)) => None,
            Ok((status, len)) => Some(format!("HTTP {status} ({len} bytes)")),
            Err(e) => Some(e.clone()),
        })
        .take(10)
        .collect();
    assert!(
        failed.is_empty(),
        "not all 1000 answers were 200, e.g.: {failed:?}"
    );
    let limit = before + 150 * 1024;
    let mut after = d.rss_kib();
    let settled = wait_until(Duration::from_secs(5), || {
        after = d.rss_kib();
        after <= limit
    });
    assert!(
        settled,
        "RSS {before} KiB before the load, still {after} KiB 5 s after it (limit {limit} KiB)"
    );
}
