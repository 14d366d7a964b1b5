//! The JSON of parsed configurations has the original's shape: every configuration the
//! upstream CLI sent in the recorded API exchanges parses, and serialises back to the same
//! object (plus the keys that client leaves out when they are null); after the server's
//! defaults it equals the `effective_run_spec` the original server answered with.
//! Reads `../shared/conformance/upstream-api-transcripts/` and skips (loudly) when absent.

use std::path::PathBuf;

use dstack_core::config::{Configuration, parse_str};
use dstack_core::spec;
use serde_json::{Value, json};

fn transcripts() -> Option<Vec<Value>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/upstream-api-transcripts");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "SKIPPED: {} is absent; the transcripts were not checked",
            dir.display()
        );
        return None;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut exchanges = Vec::new();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
    {
        let text = std::fs::read_to_string(path).expect("readable transcript");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            exchanges.push(serde_json::from_str(line).expect("valid JSON line"));
        }
    }
    Some(exchanges)
}

/// Keys the 0.22.5 client omits from a configuration when they are unset.
fn client_omitted(kind: &str) -> &'static [&'static str] {
    match kind {
        "service" => &["groups"],
        "task" => &["nodes", "groups"],
        "gateway" => &["default"],
        _ => &[],
    }
}

#[test]
fn request_configurations_round_trip() {
    let Some(exchanges) = transcripts() else {
        return;
    };
    let mut checked = 0;
    for ex in &exchanges {
        let body = &ex["request"]["body"];
        let config = if body["run_spec"]["configuration"].is_object() {
            &body["run_spec"]["configuration"]
        } else if body["spec"]["configuration"].is_object() {
            &body["spec"]["configuration"]
        } else if body["plan"]["run_spec"]["configuration"].is_object() {
            &body["plan"]["run_spec"]["configuration"]
        } else {
            continue;
        };
        let parsed = Configuration::from_json(config)
            .unwrap_or_else(|issues| panic!("{}: {issues:?}\n{config}", ex["flow"]));
        let mut ours = parsed.to_json();
        let kind = config["type"].as_str().unwrap_or_default();
        for key in client_omitted(kind) {
            if config.get(key).is_none() {
                assert_eq!(ours[*key], Value::Null, "{}: {key}", ex["flow"]);
                ours.as_object_mut().map(|o| o.shift_remove(*key));
            }
        }
        assert_eq!(&ours, config, "{}", ex["flow"]);
        // Key order is part of the shape.
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&ours), keys(config), "{}: key order", ex["flow"]);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} configurations found");
}

#[test]
fn effective_run_specs_match_the_original_server() {
    let Some(exchanges) = transcripts() else {
        return;
    };
    let mut checked = 0;
    for ex in &exchanges {
        let resp = &ex["response"]["body"];
        let (Some(sent), Some(effective)) = (
            ex["request"]["body"]["run_spec"]["configuration"].as_object(),
            resp["effective_run_spec"]["configuration"].as_object(),
        ) else {
            continue;
        };
        let mut config = Configuration::from_json(&Value::Object(sent.clone())).expect("parses");
        let name = config.name().map(str::to_string);
        spec::validate_run_spec(name.as_deref(), &mut config, None)
            .expect("the original accepted it");
        assert_eq!(
            config.to_json(),
            Value::Object(effective.clone()),
            "{}",
            ex["flow"]
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} plans found");
}

#[test]
fn yaml_service_has_the_wire_shape() {
    let Some(exchanges) = transcripts() else {
        return;
    };
    let echoed = exchanges
        .iter()
        .find(|ex| {
            ex["flow"] == "09_apply_service_detached_no_fleets"
                && ex["response"]["body"]["run_spec"].is_object()
        })
        .map(|ex| ex["response"]["body"]["run_spec"]["configuration"].clone())
        .expect("the transcript has the echoed run spec");
    let text = "type: service\nname: web\nport: 8000\ncommands:\n  - python3 -m http.server\n";
    let ours = parse_str("service.dstack.yml", text)
        .expect("parses")
        .to_json();
    assert_eq!(ours, echoed);
    assert_eq!(
        ours["port"],
        json!({"local_port": 80, "container_port": 8000})
    );
}
