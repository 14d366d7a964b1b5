//! Runs `dstack-config-vectors/1` files: each case feeds an input to one part of
//! `dstack-core` and compares the normalised result (or the error) with what the original
//! produced. Shared by the `conformance` example and the test that runs the shared vectors.

use chrono::{DateTime, SecondsFormat, Utc};
use dstack_core::config::apply::{self, ApplyArgs};
use dstack_core::config::decode::{self, Cx, D};
use dstack_core::config::interpolate::{self, GroupMember};
use dstack_core::config::node::{Node, Value};
use dstack_core::config::profile::ProfileParams;
use dstack_core::config::run::{is_valid_group_name, is_valid_resource_name};
use dstack_core::config::{Configuration, Issue, fleet, resources as res, values, yaml};
use dstack_core::offers::{self, Gpu, Offer, Requirements};
use dstack_core::resources::gpu::{HostTool, normalize_host_gpu_name, vendors_of};
use dstack_core::resources::{CpuArch, ResourcesSpec, Vendor};
use dstack_core::schedule::CronExpr;
use dstack_core::spec;
use serde_json::{Value as Json, json};

/// The outcome of a vector file.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Cases that behaved as expected.
    pub(crate) passed: usize,
    /// One line per failing case.
    pub(crate) failures: Vec<String>,
}

type Outcome = Result<Json, String>;

/// Runs every case of a vector file.
pub(crate) fn run(text: &str) -> Result<Report, String> {
    let doc = yaml::load(text)
        .map_err(|e| format!("cannot load the vectors: {e} at line {}", e.mark.line))?;
    let format = doc.get("format").and_then(Node::as_str);
    if format != Some("dstack-config-vectors/1") {
        return Err(format!("unsupported vector format {format:?}"));
    }
    let mut report = Report::default();
    let groups = doc.get("groups").and_then(Node::as_seq).unwrap_or_default();
    for group in groups {
        let gid = group.get("id").and_then(Node::as_str).unwrap_or("?");
        let kind = group.get("kind").and_then(Node::as_str).unwrap_or("?");
        let defaults = group.get("defaults").map(Node::to_json);
        let reference_time = group.get("reference_time").and_then(Node::as_str);
        for (i, case) in group
            .get("cases")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let cid = case
                .get("id")
                .and_then(Node::as_str)
                .map_or_else(|| i.to_string(), str::to_string);
            let outcome = run_case(kind, case, reference_time);
            match check(case, defaults.as_ref(), &outcome) {
                Ok(()) => report.passed += 1,
                Err(why) => report
                    .failures
                    .push(format!("FAIL {gid}/{cid} ({kind}): {why}")),
            }
        }
    }
    Ok(report)
}

fn check(case: &Node, defaults: Option<&Json>, outcome: &Outcome) -> Result<(), String> {
    if let Some(err) = case.get("error") {
        return match (outcome, &err.value) {
            (Ok(v), _) => Err(format!("expected an error, got {v}")),
            (Err(msg), Value::Str(want)) if !msg.contains(want.as_str()) => {
                Err(format!("error {msg:?} does not contain {want:?}"))
            }
            (Err(_), _) => Ok(()),
        };
    }
    let value = outcome
        .as_ref()
        .map_err(|e| format!("unexpected error: {e}"))?;
    if let Some(expect) = case.get("expect") {
        let mut want = expect.to_json();
        if let Some(defaults) = defaults {
            want = deep_merge(defaults, &want);
        }
        return if json_eq(value, &want) {
            Ok(())
        } else {
            Err(format!("got {value}, want {want}"))
        };
    }
    if let Some(subset) = case.get("expect_subset") {
        let want = subset.to_json();
        return if is_subset(&want, value) {
            Ok(())
        } else {
            Err(format!("got {value}, want a superset of {want}"))
        };
    }
    Ok(())
}

fn deep_merge(base: &Json, over: &Json) -> Json {
    match (base, over) {
        (Json::Object(b), Json::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match b.get(k) {
                    Some(bv) => deep_merge(bv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Json::Object(out)
        }
        _ => over.clone(),
    }
}

fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn is_subset(want: &Json, got: &Json) -> bool {
    match (want, got) {
        (Json::Object(w), Json::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| is_subset(v, gv))),
        (Json::Array(w), Json::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| is_subset(a, b))
        }
        _ => json_eq(want, got),
    }
}

/// Runs a decoder and turns recorded issues into one message.
fn with_cx<T>(f: impl FnOnce(&mut Cx) -> D<T>) -> Result<T, String> {
    let mut cx = Cx::new();
    let out = f(&mut cx);
    match out {
        Ok(v) if !cx.has_issues() => Ok(v),
        _ => Err(issues_text(&cx.into_issues())),
    }
}

fn issues_text(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn to_json<T: serde::Serialize>(v: T) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// Adds the vectors' `kind` tag to mount points.
fn tag_mount(mut v: Json) -> Json {
    if let Json::Object(m) = &mut v {
        let kind = if m.contains_key("instance_path") {
            "instance"
        } else {
            "volume"
        };
        m.insert("kind".into(), json!(kind));
    }
    v
}

fn normalize_configuration(mut v: Json) -> Json {
    if let Some(Json::Array(items)) = v.get_mut("volumes") {
        for item in items.iter_mut() {
            *item = tag_mount(item.take());
        }
    }
    v
}

fn input(case: &Node) -> Result<Node, String> {
    if let Some(text) = case.get("input_yaml").and_then(Node::as_str) {
        return yaml::load(text).map_err(|e| e.message);
    }
    case.get("input")
        .cloned()
        .ok_or_else(|| "case has no input".to_string())
}

fn parse_config(n: &Node) -> Result<Configuration, String> {
    Configuration::from_node(n).map_err(|issues| issues_text(&issues))
}

fn field<'a>(n: &'a Node, key: &str) -> Result<&'a Node, String> {
    n.get(key).ok_or_else(|| format!("input has no `{key}`"))
}

fn str_of(n: &Node) -> &str {
    n.as_str().unwrap_or_default()
}

fn run_case(kind: &str, case: &Node, reference_time: Option<&str>) -> Outcome {
    let n = input(case)?;
    let n = &n;
    match kind {
        "memory" => with_cx(|cx| res::memory(cx, n)).map(|m| json!(m.gb())),
        "compute_capability" => with_cx(|cx| res::compute_capability(cx, n)).map(to_json),
        "range_int" => with_cx(|cx| res::range_int(cx, n)).map(to_json),
        "range_memory" => with_cx(|cx| res::range_memory(cx, n)).map(to_json),
        "range_intersect" => {
            let a = with_cx(|cx| res::range_int(cx, field(n, "a").map_err(|_| decode::Invalid)?))?;
            let b = with_cx(|cx| res::range_int(cx, field(n, "b").map_err(|_| decode::Invalid)?))?;
            let (ab, ba) = (a.intersect(&b), b.intersect(&a));
            if ab != ba {
                return Err(format!("intersection is not symmetric: {ab:?} vs {ba:?}"));
            }
            Ok(to_json(ab))
        }
        "cpu_spec" => with_cx(|cx| res::cpu(cx, n)).map(to_json),
        "gpu_spec" => with_cx(|cx| res::gpu(cx, n)).map(to_json),
        "resources" => with_cx(|cx| res::resources(cx, n)).map(to_json),
        "duration" => with_cx(|cx| values::duration(cx, n)).map(to_json),
        "offable_duration" => with_cx(|cx| values::offable_duration(cx, n)).map(to_json),
        "idle_duration" => with_cx(|cx| values::idle_duration(cx, n)).map(to_json),
        "unix_user" => values::UnixUser::parse(str_of(n)).map(to_json),
        "file_path_mapping" => with_cx(|cx| values::file_mapping(cx, n)).map(to_json),
        "repo_spec" => with_cx(|cx| values::repo(cx, n)).map(to_json),
        "volume_mount_point_parse"
        | "instance_mount_point_parse"
        | "mount_point"
        | "mount_point_object" => {
            with_cx(|cx| values::mount_point(cx, n)).map(|m| tag_mount(to_json(m)))
        }
        "entity_reference" => with_cx(|cx| values::entity_reference(cx, n)).map(to_json),
        "tags" => tags_case(n),
        "fleet_nodes" => with_cx(|cx| fleet::fleet_nodes(cx, n)).map(to_json),
        "profile" => with_cx(|cx| ProfileParams::decode_strict(cx, n)).map(to_json),
        "configuration" => parse_config(n).map(|c| normalize_configuration(c.to_json())),
        "run_spec" => {
            let mut config = parse_config(field(n, "configuration")?)?;
            let profile = match n.get("profile") {
                Some(p) => Some(with_cx(|cx| ProfileParams::decode_strict(cx, p))?),
                None => None,
            };
            let run_name = n.get("run_name").and_then(Node::as_str);
            spec::validate_run_spec(run_name, &mut config, profile.as_ref()).map_err(|e| e.0)?;
            Ok(config.to_json())
        }
        "cli_apply_args" => {
            let config = parse_config(field(n, "configuration")?)?;
            let args: Vec<String> = field(n, "args")?
                .as_seq()
                .unwrap_or_default()
                .iter()
                .filter_map(Node::scalar_text)
                .collect();
            let args = ApplyArgs::parse(&args).map_err(|e| e.to_string())?;
            apply::apply(&config, &args, &|_| None)
                .map(|c| normalize_configuration(c.to_json()))
                .map_err(|e| e.to_string())
        }
        "interpolate" => {
            let skip: Vec<String> = match n.get("skip").and_then(Node::as_seq) {
                Some(items) => items.iter().filter_map(Node::scalar_text).collect(),
                None => vec!["secrets".to_string()],
            };
            let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
            let lookup = |ns: &str, name: &str| {
                (ns == "run" && name == "args").then(|| "qwerty".to_string())
            };
            interpolate::interpolate(str_of(field(n, "s")?), &lookup, &skip)
                .map(|r| json!({"output": r.output, "missing": r.missing}))
                .map_err(|e| e.0)
        }
        "groups_ref_find" => Ok(Json::Array(
            interpolate::find_groups_refs(str_of(n))
                .into_iter()
                .map(|r| json!([r.group, r.member.as_str(), r.index]))
                .collect(),
        )),
        "groups_ref_valid" => Ok(json!(interpolate::parse_groups_ref(str_of(n)).is_some())),
        "groups_ref_member" => {
            let member = member_of(n.get("expected_member"))?;
            interpolate::validate_groups_ref_member(str_of(field(n, "s")?), member)
                .map(|()| json!(true))
                .map_err(|e| e.0)
        }
        "groups_ref_bounds" => {
            let sizes: Vec<i64> = field(n, "group_sizes")?
                .as_seq()
                .unwrap_or_default()
                .iter()
                .filter_map(|s| match s.value {
                    Value::Int(i) => Some(i),
                    _ => None,
                })
                .collect();
            let member = member_of(n.get("member"))?;
            interpolate::validate_groups_ref_bounds(str_of(field(n, "s")?), &sizes, member)
                .map(|()| json!(true))
                .map_err(|e| e.0)
        }
        "groups_refs_validate" => interpolate::validate_groups_refs(str_of(n))
            .map(|()| json!(true))
            .map_err(|e| e.0),
        "groups_ref_contains" => Ok(json!(interpolate::contains_groups_ref(str_of(n)))),
        "groups_ip_interpolate" => {
            let view: Vec<Vec<String>> = field(n, "view")?
                .as_seq()
                .unwrap_or_default()
                .iter()
                .map(|g| {
                    g.as_seq()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Node::scalar_text)
                        .collect()
                })
                .collect();
            let member = member_of(n.get("member"))?;
            interpolate::interpolate_groups_ips(str_of(field(n, "s")?), &view, member)
                .map(Json::String)
                .map_err(|e| e.0)
        }
        "gpu_vendor_detect" => {
            let mut vendors: Vec<&str> = vendors_of(str_of(n))
                .into_iter()
                .map(Vendor::as_str)
                .collect();
            vendors.sort_unstable();
            Ok(json!(vendors))
        }
        "gpu_name_normalize" => {
            let tool = match str_of(field(n, "tool")?) {
                "nvidia-smi" => HostTool::NvidiaSmi,
                "amd-smi" => HostTool::AmdSmi,
                "hl-smi" => HostTool::HlSmi,
                other => return Err(format!("unknown tool {other}")),
            };
            Ok(json!(normalize_host_gpu_name(
                tool,
                str_of(field(n, "name")?)
            )))
        }
        "gpu_matches_gpu_spec" => {
            let g = field(n, "gpu")?;
            let gpu = Gpu {
                name: g
                    .get("name")
                    .and_then(Node::as_str)
                    .unwrap_or("A100")
                    .to_string(),
                memory_gib: g.get("memory_gib").map_or(80.0, number),
                vendor: g
                    .get("vendor")
                    .and_then(Node::as_str)
                    .and_then(Vendor::parse)
                    .unwrap_or(Vendor::Nvidia),
            };
            let spec = with_cx(|cx| res::gpu(cx, field(n, "spec").map_err(|_| decode::Invalid)?))?;
            Ok(json!(offers::gpu_matches_spec(&gpu, &spec)))
        }
        "offer_disk_filter" => {
            let disk = with_cx(|cx| res::disk(cx, field(n, "disk").map_err(|_| decode::Invalid)?))?;
            let mib = number(field(n, "offer_disk_mib")?);
            let offer = Offer {
                cpus: 8,
                cpu_arch: CpuArch::X86,
                memory_gib: 64.0,
                gpus: Vec::new(),
                disk_gib: (mib > 0.0).then_some(mib / 1024.0),
                spot: false,
                price: 1.0,
            };
            let req = Requirements {
                resources: ResourcesSpec {
                    disk: Some(disk),
                    ..ResourcesSpec::default()
                },
                spot: None,
                max_price: None,
            };
            Ok(json!(offers::matches(&offer, &req)))
        }
        "offer_match" => offer_match_case(n),
        "docker_volume_target" => Ok(json!(spec::is_valid_docker_volume_target(str_of(n)))),
        "server_resource_defaults" => {
            let mut config = parse_config(n)?;
            spec::set_resource_defaults(&mut config);
            Ok(normalize_configuration(config.to_json()))
        }
        "server_validate" => {
            let cnode = field(n, "configuration")?;
            let mut config = parse_config(cnode)?;
            let profile = match n.get("profile") {
                Some(p) => Some(with_cx(|cx| ProfileParams::decode_strict(cx, p))?),
                None => None,
            };
            let run_name = config.name().unwrap_or("test-run").to_string();
            spec::validate_run_spec(Some(&run_name), &mut config, profile.as_ref())
                .map_err(|e| e.0)?;
            Ok(config.to_json())
        }
        "job_volume_interpolation" => {
            let volumes = with_cx(|cx| {
                let v = field(n, "volumes").map_err(|_| decode::Invalid)?;
                decode::list(cx, v, values::mount_point)
            })?;
            let job_num = field(n, "job_num").map(number)? as u32;
            spec::interpolate_job_volumes(&volumes, job_num)
                .map(|v| Json::Array(v.into_iter().map(|m| tag_mount(to_json(m))).collect()))
                .map_err(|e| e.0)
        }
        "job_commands" => {
            // The vectors mock the registry's image configuration (used only when a custom
            // image has neither `entrypoint` nor `commands`).
            let image = spec::ImageConfig {
                entrypoint: vec!["/entrypoint.sh".into()],
                cmd: vec!["-f".into(), "-x".into()],
            };
            let config = parse_config(n)?;
            spec::job_commands_for(&config, 0, "3.12", Some(&image))
                .map(to_json)
                .map_err(|e| e.0)
        }
        "cron" => {
            let expr = CronExpr::parse(str_of(n)).map_err(|e| e.message().to_string())?;
            let now: DateTime<Utc> = reference_time
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or("the group has no reference_time")?;
            let next = expr
                .next_at_or_after(now)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
            Ok(json!({"fields": expr.fields(), "next": next}))
        }
        "run_name" => Ok(json!(is_valid_resource_name(str_of(n)))),
        "group_name" => Ok(json!(is_valid_group_name(str_of(n)))),
        other => Err(format!("unsupported kind `{other}`")),
    }
}

fn number(n: &Node) -> f64 {
    match n.value {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => 0.0,
    }
}

fn member_of(n: Option<&Node>) -> Result<GroupMember, String> {
    match n.and_then(Node::as_str) {
        None | Some("nodes") => Ok(GroupMember::Nodes),
        Some("replicas") => Ok(GroupMember::Replicas),
        Some(other) => Err(format!("unknown member {other}")),
    }
}

fn tags_case(n: &Node) -> Outcome {
    if let Some(k) = n.get("key") {
        return Ok(json!(values::is_valid_tag_key(str_of(k))));
    }
    if let Some(v) = n.get("value") {
        return Ok(json!(values::is_valid_tag_value(str_of(v))));
    }
    if let Some(rep) = n.get("value_repeat").and_then(Node::as_seq) {
        let (c, times) = (
            rep.first().map(str_of).unwrap_or_default(),
            rep.get(1).map_or(0.0, number),
        );
        return Ok(json!(values::is_valid_tag_value(&c.repeat(times as usize))));
    }
    let m = field(n, "mapping")?;
    Ok(json!(with_cx(|cx| values::tags(cx, m)).is_ok()))
}

fn offer_match_case(n: &Node) -> Outcome {
    let o = field(n, "offer")?;
    let count = o.get("gpu_count").map_or(0.0, number) as usize;
    let gpu = o.get("gpu").map(|g| Gpu {
        name: g
            .get("name")
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_string(),
        memory_gib: g.get("memory_gib").map_or(0.0, number),
        vendor: g
            .get("vendor")
            .and_then(Node::as_str)
            .and_then(Vendor::parse)
            .unwrap_or(Vendor::Nvidia),
    });
    let offer = Offer {
        cpus: o.get("cpus").map_or(0.0, number) as u32,
        cpu_arch: o
            .get("cpu_arch")
            .and_then(Node::as_str)
            .and_then(CpuArch::parse)
            .unwrap_or(CpuArch::X86),
        memory_gib: o.get("memory_gib").map_or(0.0, number),
        gpus: gpu.map(|g| vec![g; count]).unwrap_or_default(),
        disk_gib: o.get("disk_gib").filter(|d| !d.is_null()).map(number),
        spot: matches!(o.get("spot").map(|s| &s.value), Some(Value::Bool(true))),
        price: o.get("price").map_or(1.0, number),
    };
    let r = field(n, "requirements")?;
    let resources = with_cx(|cx| res::resources(cx, r.get("resources").ok_or(decode::Invalid)?))?;
    let req = Requirements {
        resources,
        spot: match r.get("spot").map(|s| &s.value) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        },
        max_price: r.get("max_price").filter(|p| !p.is_null()).map(number),
    };
    Ok(json!(offers::matches(&offer, &req)))
}
