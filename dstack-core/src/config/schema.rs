//! The JSON Schema of `.dstack.yml`, generated from the configuration types (for editor
//! completion and hover docs). Field names and docs come from the types; the shorthand forms a
//! property accepts (`gpu: A100:80GB:2`, `env` as a list, durations as `1h`) come from the
//! input-form types below, which the types name with `#[schemars(with = ...)]`.
//!
//! `schemas/dstack-configuration.schema.json` is this schema, checked in; a test fails when it
//! is stale (`DSTACK_UPDATE_SCHEMA=1 cargo test` rewrites it).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{
    DevEnvironmentConfiguration, FleetConfiguration, GatewayConfiguration, PresetConfiguration,
    ServiceConfiguration, TaskConfiguration,
};

macro_rules! input_form {
    ($(#[$doc:meta])* $name:ident, |$g:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema($g: &mut SchemaGenerator) -> Schema {
                let _ = &$g;
                $body
            }
        }
    };
}

const DURATION_PATTERN: &str = r"^\s*[-+]?\d+\s*$|^\d+ *[smhdw]$";
const MEMORY_PATTERN: &str = r"^\s*[0-9.]+\s*([mMgGtT][bB])?\s*$";

fn schema(v: serde_json::Value) -> Schema {
    Schema::try_from(v).unwrap_or_default()
}

fn duration() -> serde_json::Value {
    serde_json::json!({
        "anyOf": [
            {"type": "integer", "description": "seconds"},
            {"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "5m", "1h", "2d", "1w"]}
        ]
    })
}

fn memory() -> serde_json::Value {
    serde_json::json!({
        "anyOf": [
            {"type": "number", "description": "gigabytes"},
            {"type": "string", "pattern": MEMORY_PATTERN, "examples": ["512MB", "16GB", "1TB"]}
        ]
    })
}

fn range(of: serde_json::Value, examples: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "anyOf": [
            of,
            {"type": "string", "examples": examples},
            {"type": "object", "properties": {"min": of, "max": of}, "additionalProperties": false}
        ]
    })
}

input_form!(
    /// A duration: seconds, or a number with a unit.
    Duration,
    |_g| schema(duration())
);

input_form!(
    /// A duration that may be switched off (`off`, `false`).
    OffableDuration,
    |_g| json_schema!({
        "anyOf": [duration(), {"const": "off"}, {"type": "boolean"}],
        "description": "a duration, or `off`"
    })
);

input_form!(
    /// A memory size.
    MemorySize,
    |_g| schema(memory())
);

input_form!(
    /// A range of integers: `2`, `1..4`, `2..`, `..8` or `{min, max}`.
    IntRange,
    |_g| schema(range(serde_json::json!({"type": "integer"}), serde_json::json!(["1..4", "2..", "..8"])))
);

input_form!(
    /// A range of memory sizes: `24GB`, `8GB..16GB`, `24GB..`.
    MemoryRange,
    |_g| schema(range(memory(), serde_json::json!(["24GB", "8GB..16GB", "24GB..", "..80GB"])))
);

input_form!(
    /// CPUs: `8`, `4..16`, `x86:16..`, `arm:8`, or `{arch, count}`.
    CpuInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "integer"},
            {"type": "string", "examples": ["8", "4..16", "x86:16..", "arm:8"]},
            {"type": "object", "properties": {
                "arch": {"enum": ["x86", "arm"]},
                "count": range(serde_json::json!({"type": "integer"}), serde_json::json!(["2.."])),
                "min": {"type": "integer"}, "max": {"type": "integer"}
            }, "additionalProperties": false}
        ]
    })
);

input_form!(
    /// GPUs: `A100`, `A100:80GB:2`, `24GB..:2`, `nvidia:1..2`, or a mapping.
    GpuInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "integer", "description": "number of GPUs"},
            {"type": "string", "examples": ["A100", "A100:80GB:2", "A10G,A100", "24GB..:2", "nvidia:1..2", "amd:MI300X:8", "tpu:v5litepod-8"]},
            {"type": "object", "properties": {
                "vendor": {"enum": ["nvidia", "amd", "google", "tpu", "intel", "tenstorrent", "tt"]},
                "name": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "count": range(serde_json::json!({"type": "integer"}), serde_json::json!(["1", "1..2", "2.."])),
                "memory": range(memory(), serde_json::json!(["24GB", "40GB..80GB"])),
                "total_memory": range(memory(), serde_json::json!(["80GB.."])),
                "compute_capability": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}]}
            }, "additionalProperties": false},
            {"type": "null"}
        ]
    })
);

input_form!(
    /// Disk: a size range or `{size}`.
    DiskInput,
    |_g| json_schema!({
        "anyOf": [
            range(memory(), serde_json::json!(["100GB", "100GB..", "200GB..1TB"])),
            {"type": "object", "properties": {"size": range(memory(), serde_json::json!(["100GB.."]))}, "required": ["size"], "additionalProperties": false},
            {"type": "null"}
        ]
    })
);

input_form!(
    /// Resource requirements.
    ResourcesInput,
    |g| json_schema!({
        "type": "object",
        "description": "Resource requirements; omitted parts default to `cpu: 2..`, `memory: 8GB..`, `disk: 100GB..` and any number of GPUs",
        "properties": {
            "cpu": g.subschema_for::<CpuInput>(),
            "memory": g.subschema_for::<MemoryRange>(),
            "shm_size": g.subschema_for::<MemorySize>(),
            "gpu": g.subschema_for::<GpuInput>(),
            "disk": g.subschema_for::<DiskInput>()
        },
        "additionalProperties": false
    })
);

input_form!(
    /// Environment variables: `KEY=VALUE` / `KEY` items, or a mapping.
    EnvInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "string", "pattern": "^([a-zA-Z_][a-zA-Z0-9_]*)(=.*$|$)"}},
            {"type": "object", "additionalProperties": {"type": ["string", "number"]}}
        ]
    })
);

input_form!(
    /// A port: `8080`, `80:8080`, `*:8080` or `{local_port, container_port}`.
    PortInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": r"^(?:(\d+|\*):)?(\d+)?$"},
            {"type": "object", "properties": {"local_port": {"type": ["integer", "null"]}, "container_port": {"type": "integer"}}, "required": ["container_port"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// A service port: `8000` or `PUBLIC:CONTAINER`.
    ServicePortInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": "^[0-9]+(:[0-9]+)?$"},
            {"type": "object", "properties": {"local_port": {"type": ["integer", "null"]}, "container_port": {"type": "integer"}}, "required": ["container_port"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// A volume mount: `name:/path`, `/host/path:/path`, or a mapping.
    MountInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "string", "pattern": "^[^:]+:[^:]+$", "examples": ["my-volume:/data", "/mnt/cache:/cache"]},
            {"type": "object", "properties": {"name": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}, "path": {"type": "string"}}, "required": ["name", "path"], "additionalProperties": false},
            {"type": "object", "properties": {"instance_path": {"type": "string"}, "path": {"type": "string"}, "optional": {"type": "boolean"}}, "required": ["instance_path", "path"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// A file to upload: `local[:container]` or `{local_path, path}`.
    FileInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "string"},
            {"type": "object", "properties": {"local_path": {"type": "string"}, "path": {"type": "string"}}, "required": ["local_path", "path"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// A repo: `.`, `..:/repo`, a Git URL, or a mapping.
    RepoInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "string"},
            {"type": "object", "properties": {
                "local_path": {"type": "string"}, "url": {"type": "string"}, "branch": {"type": "string"},
                "hash": {"type": "string"}, "path": {"type": "string"}, "if_exists": {"enum": ["error", "skip"]}
            }, "additionalProperties": false}
        ]
    })
);

input_form!(
    /// Tags: a mapping of keys to values.
    TagsInput,
    |_g| json_schema!({"type": "object", "additionalProperties": {"type": "string", "pattern": "^[a-zA-Z0-9 .:/=_\\-+@]{0,256}$"}, "propertyNames": {"pattern": "^[_\\-a-zA-Z0-9]{1,60}$"}})
);

input_form!(
    /// A reference: `name`, `project/name` or `{project, name}`.
    EntityRefInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "string", "pattern": "^[^/]+(/[^/]+)?$"},
            {"type": "object", "properties": {"project": {"type": ["string", "null"]}, "name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// `gateway`: `true`, `false`, a name or a reference.
    GatewayInput,
    |g| json_schema!({"anyOf": [{"type": "boolean"}, g.subschema_for::<EntityRefInput>()]})
);

input_form!(
    /// `https`: `true`, `false` or `auto`.
    HttpsInput,
    |_g| json_schema!({"anyOf": [{"type": "boolean"}, {"const": "auto"}]})
);

input_form!(
    /// `python`: a version.
    PythonInput,
    |_g| json_schema!({"anyOf": [{"enum": ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]}, {"type": "number"}]})
);

input_form!(
    /// `model`: a name, or `{name, format: openai | tgi, ...}`.
    ModelInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "string"},
            {"type": "object", "properties": {"type": {"const": "chat"}, "name": {"type": "string"}, "format": {"const": "openai"}, "prefix": {"type": "string"}}, "required": ["name", "format"], "additionalProperties": false},
            {"type": "object", "properties": {"type": {"const": "chat"}, "name": {"type": "string"}, "format": {"const": "tgi"}, "chat_template": {"type": "string"}, "eos_token": {"type": "string"}}, "required": ["name", "format"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// `retry`: `true`/`false` or `{on_events, duration}`.
    RetryInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "boolean"},
            {"type": "object", "properties": {
                "on_events": {"type": "array", "items": {"enum": ["no-capacity", "interruption", "error"]}, "minItems": 1},
                "duration": duration()
            }, "additionalProperties": false}
        ]
    })
);

input_form!(
    /// `schedule`: `{cron: "<expr>" | ["<expr>", ...]}` (UTC, day-of-week 0 = Monday).
    ScheduleInput,
    |_g| json_schema!({
        "type": "object",
        "properties": {"cron": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}},
        "required": ["cron"],
        "additionalProperties": false
    })
);

input_form!(
    /// An `instances` item.
    InstanceInput,
    |g| json_schema!({
        "anyOf": [
            {"type": "string"},
            {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false},
            {"type": "object", "properties": {"hostname": {"type": "string"}}, "required": ["hostname"], "additionalProperties": false},
            {"type": "object", "properties": {"fleet": g.subschema_for::<EntityRefInput>(), "instance": {"type": "integer", "minimum": 0}}, "required": ["fleet", "instance"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// A `backend_options` item.
    BackendOptionsInput,
    |_g| json_schema!({
        "type": "object",
        "properties": {
            "type": {"const": "vastai"},
            "offer_order": {"enum": ["score", "price"]},
            "min_reliability": {"type": "number", "minimum": 0, "maximum": 1},
            "min_score": {"type": "integer", "minimum": 0}
        },
        "required": ["type"],
        "additionalProperties": false
    })
);

input_form!(
    /// Service `replicas`: a number, a range (with `scaling`), or a list of replica groups.
    ReplicasInput,
    |g| json_schema!({
        "anyOf": [
            range(serde_json::json!({"type": "integer", "minimum": 0}), serde_json::json!(["2", "0..4", "..4"])),
            {"type": "array", "items": g.subschema_for::<super::service::ReplicaGroup>()}
        ]
    })
);

input_form!(
    /// A rate-limit key: `{type: ip_address}` or `{type: header, header}`.
    RateLimitKeyInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "object", "properties": {"type": {"const": "ip_address"}}, "additionalProperties": false},
            {"type": "object", "properties": {"type": {"const": "header"}, "header": {"type": "string", "pattern": "^[a-zA-Z0-9-_]+$"}}, "required": ["type", "header"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// `blocks`: a number or `auto`.
    BlocksInput,
    |_g| json_schema!({"anyOf": [{"type": "integer", "minimum": 1}, {"const": "auto"}]})
);

input_form!(
    /// Fleet `nodes`: a number, a range, or `{min, target, max}`.
    FleetNodesInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "examples": ["2", "0..2", "1.."]},
            {"type": "object", "properties": {"min": {"type": "integer"}, "target": {"type": "integer"}, "max": {"type": "integer"}}, "additionalProperties": false}
        ]
    })
);

input_form!(
    /// An SSH fleet host: an address or a mapping.
    SshHostInput,
    |g| json_schema!({"anyOf": [{"type": "string"}, g.subschema_for::<super::fleet::SshHostParams>()]})
);

input_form!(
    /// A gateway certificate.
    CertificateInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "object", "properties": {"type": {"const": "lets-encrypt"}}, "additionalProperties": false},
            {"type": "object", "properties": {"type": {"const": "acm"}, "arn": {"type": "string"}}, "required": ["type", "arn"], "additionalProperties": false},
            {"type": "null"}
        ]
    })
);

input_form!(
    /// A preset's model: a repo, `{repo, name}` or `{base}`.
    PresetModelInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "string"},
            {"type": "object", "properties": {"repo": {"type": "string"}, "name": {"type": "string"}}, "required": ["repo"], "additionalProperties": false},
            {"type": "object", "properties": {"base": {"type": "string"}}, "required": ["base"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// A preset's `gateway`: `true`, `false`, a name or a reference.
    PresetGatewayInput,
    |g| json_schema!({"anyOf": [{"type": "boolean"}, g.subschema_for::<EntityRefInput>(), {"type": "string"}]})
);

input_form!(
    /// A preset's prompt: text or `{path}`.
    PromptInput,
    |_g| json_schema!({
        "anyOf": [
            {"type": "string", "maxLength": 10000},
            {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"], "additionalProperties": false}
        ]
    })
);

input_form!(
    /// The probe type (only `http`).
    HttpProbeType,
    |_g| json_schema!({"const": "http"})
);

input_form!(
    /// A backend name.
    BackendInput,
    |_g| json_schema!({"enum": super::profile::BACKEND_TYPES})
);

fn volume_schema(g: &mut SchemaGenerator) -> serde_json::Value {
    let common = serde_json::json!({
        "type": {"const": "volume"},
        "name": {"type": "string"},
        "size": memory(),
        "auto_cleanup_duration": {"anyOf": [duration(), {"const": "off"}, {"type": "boolean"}]},
        "tags": g.subschema_for::<TagsInput>()
    });
    let cloud = |backend: &str| {
        let mut props = common.clone();
        if let Some(p) = props.as_object_mut() {
            p.insert("backend".into(), serde_json::json!({"const": backend}));
            p.insert("region".into(), serde_json::json!({"type": "string"}));
            p.insert("volume_id".into(), serde_json::json!({"type": "string"}));
            p.insert(
                "availability_zone".into(),
                serde_json::json!({"type": "string"}),
            );
        }
        serde_json::json!({"type": "object", "title": format!("{backend} volume"), "properties": props, "required": ["type", "backend", "region"], "additionalProperties": false})
    };
    let mut k8s = common.clone();
    if let Some(p) = k8s.as_object_mut() {
        p.insert("backend".into(), serde_json::json!({"const": "kubernetes"}));
        p.insert("region".into(), serde_json::json!({"type": "string"}));
        p.insert("claim_name".into(), serde_json::json!({"type": "string"}));
        p.insert(
            "storage_class_name".into(),
            serde_json::json!({"type": "string"}),
        );
        p.insert(
            "access_modes".into(),
            serde_json::json!({"type": "array", "items": {"type": "string"}}),
        );
        p.insert("read_only".into(), serde_json::json!({"type": "boolean"}));
    }
    serde_json::json!({
        "anyOf": [
            cloud("aws"),
            cloud("gcp"),
            cloud("runpod"),
            {"type": "object", "title": "kubernetes volume", "properties": k8s, "required": ["type", "backend"], "additionalProperties": false}
        ]
    })
}

/// Pins `type` of a configuration object to one value and makes it required.
fn pin_type(mut schema: Schema, kind: &str) -> Schema {
    if let Some(obj) = schema.as_object_mut() {
        if let Some(serde_json::Value::Object(props)) = obj.get_mut("properties") {
            props.insert("type".into(), serde_json::json!({"const": kind}));
        }
        let required = obj
            .entry("required")
            .or_insert_with(|| serde_json::json!([]));
        if let Some(list) = required.as_array_mut()
            && !list.iter().any(|v| v == "type")
        {
            list.insert(0, serde_json::json!("type"));
        }
    }
    schema
}

/// The schema of every configuration `dstack apply` accepts.
pub fn configuration_schema() -> serde_json::Value {
    let mut g = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut variants = vec![
        pin_type(
            DevEnvironmentConfiguration::json_schema(&mut g),
            "dev-environment",
        ),
        pin_type(TaskConfiguration::json_schema(&mut g), "task"),
        pin_type(ServiceConfiguration::json_schema(&mut g), "service"),
        pin_type(FleetConfiguration::json_schema(&mut g), "fleet"),
        pin_type(GatewayConfiguration::json_schema(&mut g), "gateway"),
        pin_type(PresetConfiguration::json_schema(&mut g), "preset"),
    ];
    let volume = volume_schema(&mut g);
    variants.push(schema(volume));
    let mut definitions = g.take_definitions(true);
    // `count` is the legacy spelling of a replica group's `replicas`.
    if let Some(group) = definitions
        .get_mut("ReplicaGroup")
        .and_then(serde_json::Value::as_object_mut)
    {
        if let Some(serde_json::Value::Object(props)) = group.get_mut("properties") {
            let replicas = props.get("replicas").cloned().unwrap_or_default();
            props.insert("count".into(), replicas);
        }
        group.insert(
            "anyOf".into(),
            serde_json::json!([{"required": ["replicas"]}, {"required": ["count"]}]),
        );
        group.remove("required");
    }
    serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://dstack.ai/schemas/configuration.json",
        "title": "dstack configuration (.dstack.yml)",
        "description": "A dev environment, task, service, fleet, gateway, volume or preset. Generated from dstack-core's configuration types.",
        "oneOf": variants,
        "definitions": definitions
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in schema is what the types generate.
    #[test]
    fn checked_in_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../schemas/dstack-configuration.schema.json");
        let generated = format!(
            "{}\n",
            serde_json::to_string_pretty(&configuration_schema()).unwrap_or_default()
        );
        if std::env::var_os("DSTACK_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).expect("schema written");
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == generated,
            "{} is stale: run `DSTACK_UPDATE_SCHEMA=1 cargo test -p dstack-core checked_in_schema` and commit it",
            path.display()
        );
    }

    #[test]
    fn every_configuration_type_is_described() {
        let schema = configuration_schema();
        let variants = schema["oneOf"].as_array().expect("oneOf");
        assert_eq!(variants.len(), 7);
        let service = &variants[2];
        assert_eq!(service["properties"]["type"]["const"], "service");
        assert!(
            service["required"]
                .as_array()
                .is_some_and(|r| r.contains(&serde_json::json!("port")))
        );
        assert!(service["properties"]["commands"].is_object());
        assert!(service["properties"]["resources"].is_object());
        assert!(
            service["properties"]["spot_policy"].is_object(),
            "profile keys are flattened in"
        );
    }
}
