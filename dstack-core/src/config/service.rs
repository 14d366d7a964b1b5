//! The `service` configuration: port, gateway, model, auth, replicas and replica groups,
//! autoscaling, rate limits and probes.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::decode::{self, Cx, D, Invalid, fields};
use super::node::{Node, Value};
use super::profile::{ProfileParams, SpotPolicy, string_enum};
use super::resources;
use super::run::{self, COMMON_KEYS, PythonVersion, RunCommon, RunType, duplicates, py_list};
use super::values::{self, EntityReference, PortMapping};
use crate::resources::{Range, ResourcesSpec};

/// `gateway`: use the default one, none, or a named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayChoice {
    /// `true` = the project's default gateway (required); `false` = no gateway.
    Enabled(bool),
    /// A named gateway.
    Named(EntityReference),
}

impl Serialize for GatewayChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GatewayChoice::Enabled(b) => s.serialize_bool(*b),
            GatewayChoice::Named(r) => r.serialize(s),
        }
    }
}

/// `https`: on, off, or decided by the gateway (`auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Https {
    /// `true` / `false`.
    Enabled(bool),
    /// `auto`.
    Auto,
}

impl Serialize for Https {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Https::Enabled(b) => s.serialize_bool(*b),
            Https::Auto => s.serialize_str("auto"),
        }
    }
}

/// The model a service serves, for the OpenAI-compatible model endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The service speaks the OpenAI API under `prefix`.
    OpenAi {
        /// Model name clients ask for.
        name: String,
        /// Path prefix of the OpenAI API in the service (default `/v1`).
        prefix: String,
    },
    /// A TGI service.
    Tgi {
        /// Model name clients ask for.
        name: String,
        /// Chat template override.
        chat_template: Option<String>,
        /// End-of-sequence token override.
        eos_token: Option<String>,
    },
}

impl ModelSpec {
    /// The model name.
    pub fn name(&self) -> &str {
        match self {
            ModelSpec::OpenAi { name, .. } | ModelSpec::Tgi { name, .. } => name,
        }
    }
}

impl Serialize for ModelSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ModelSpec::OpenAi { name, prefix } => {
                let mut st = s.serialize_struct("OpenAIChatModel", 4)?;
                st.serialize_field("type", "chat")?;
                st.serialize_field("name", name)?;
                st.serialize_field("format", "openai")?;
                st.serialize_field("prefix", prefix)?;
                st.end()
            }
            ModelSpec::Tgi {
                name,
                chat_template,
                eos_token,
            } => {
                let mut st = s.serialize_struct("TGIChatModel", 5)?;
                st.serialize_field("type", "chat")?;
                st.serialize_field("name", name)?;
                st.serialize_field("format", "tgi")?;
                st.serialize_field("chat_template", chat_template)?;
                st.serialize_field("eos_token", eos_token)?;
                st.end()
            }
        }
    }
}

fn model(cx: &mut Cx, n: &Node) -> D<ModelSpec> {
    if !matches!(n.value, Value::Map(_)) {
        return Ok(ModelSpec::OpenAi {
            name: decode::string(cx, n)?,
            prefix: "/v1".into(),
        });
    }
    let chat_type = |cx: &mut Cx, n: &Node| decode::one_of(cx, n, &[("chat", ())]);
    match n.get("format").and_then(Node::as_str) {
        Some("openai") => {
            let (ok, f) = fields!(cx, n, ["format"], { r#type, name, prefix });
            let t = decode::opt(cx, "type", f.r#type, chat_type);
            let name = decode::req(cx, n, "name", f.name, decode::string);
            let prefix = decode::def(cx, "prefix", f.prefix, || "/v1".to_string(), decode::string);
            ok?;
            t?;
            Ok(ModelSpec::OpenAi {
                name: name?,
                prefix: prefix?,
            })
        }
        Some("tgi") => {
            let (ok, f) = fields!(cx, n, ["format"], { r#type, name, chat_template, eos_token });
            let t = decode::opt(cx, "type", f.r#type, chat_type);
            let name = decode::req(cx, n, "name", f.name, decode::string);
            let chat_template = decode::opt(cx, "chat_template", f.chat_template, decode::string);
            let eos_token = decode::opt(cx, "eos_token", f.eos_token, decode::string);
            ok?;
            t?;
            Ok(ModelSpec::Tgi {
                name: name?,
                chat_template: chat_template?,
                eos_token: eos_token?,
            })
        }
        Some(other) => Err(cx.at("format", |cx| {
            cx.error(
                n.get("format").unwrap_or(n),
                format!("Input tag '{other}' found using 'format' does not match any of the expected tags: 'openai', 'tgi'"),
            )
        })),
        None => Err(cx.error_help(
            n,
            "Unable to extract tag using discriminator 'format'",
            "add `format: openai` (or `tgi`), or write the model name as a plain string".into(),
        )),
    }
}

string_enum!(
    /// The autoscaling metric.
    ScalingMetric {
        /// Requests per second per replica.
        Rps = "rps",
    }
);

/// `scaling`: how replicas follow load.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ScalingSpec {
    /// The metric.
    pub metric: ScalingMetric,
    /// Target value of the metric per replica.
    pub target: f64,
    /// Averaging window in seconds (30, 60 or 300; default 60).
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub window: Option<i64>,
    /// Delay before scaling up, seconds.
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub scale_up_delay: i64,
    /// Delay before scaling down, seconds.
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub scale_down_delay: i64,
}

fn scaling(cx: &mut Cx, n: &Node) -> D<ScalingSpec> {
    let (ok, f) = fields!(cx, n, [], { metric, target, window, scale_up_delay, scale_down_delay });
    let metric = decode::req(cx, n, "metric", f.metric, ScalingMetric::decode);
    let target = decode::req(cx, n, "target", f.target, |cx, n| {
        let v = decode::float(cx, n)?;
        if v <= 0.0 {
            return Err(cx.error(n, "Input should be greater than 0"));
        }
        Ok(v)
    });
    let window = decode::opt(cx, "window", f.window, |cx, n| {
        let v = values::duration(cx, n)?;
        if ![30, 60, 300].contains(&v) {
            return Err(cx.error(n, "Window must be one of: `30s`, `60s`, `300s`"));
        }
        Ok(v)
    });
    let up = decode::def(
        cx,
        "scale_up_delay",
        f.scale_up_delay,
        || 300,
        values::duration,
    );
    let down = decode::def(
        cx,
        "scale_down_delay",
        f.scale_down_delay,
        || 600,
        values::duration,
    );
    ok?;
    Ok(ScalingSpec {
        metric: metric?,
        target: target?,
        window: window?,
        scale_up_delay: up?,
        scale_down_delay: down?,
    })
}

/// What a rate limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitKey {
    /// The client's IP address.
    IpAddress,
    /// The value of a request header.
    Header(String),
}

impl Serialize for RateLimitKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RateLimitKey::IpAddress => {
                let mut st = s.serialize_struct("IPAddressPartitioningKey", 1)?;
                st.serialize_field("type", "ip_address")?;
                st.end()
            }
            RateLimitKey::Header(h) => {
                let mut st = s.serialize_struct("HeaderPartitioningKey", 2)?;
                st.serialize_field("type", "header")?;
                st.serialize_field("header", h)?;
                st.end()
            }
        }
    }
}

/// One `rate_limits` item.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RateLimit {
    /// Path prefix the limit applies to (the longest matching prefix wins).
    #[schemars(with = "Option<String>")]
    pub prefix: String,
    /// What requests are counted by.
    #[schemars(with = "Option<crate::config::schema::RateLimitKeyInput>")]
    pub key: RateLimitKey,
    /// Allowed requests per second.
    pub rps: f64,
    /// Extra requests allowed in a burst.
    #[schemars(with = "Option<i64>")]
    pub burst: i64,
}

fn rate_limit_key(cx: &mut Cx, n: &Node) -> D<RateLimitKey> {
    match n.get("type").and_then(Node::as_str) {
        Some("header") => {
            let (ok, f) = fields!(cx, n, ["type"], { header });
            let header = decode::req(cx, n, "header", f.header, |cx, n| {
                let h = decode::string(cx, n)?;
                let valid = !h.is_empty()
                    && h.len() <= 500
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !valid {
                    return Err(cx.error(n, "String should match pattern '^[a-zA-Z0-9-_]+$'"));
                }
                Ok(h)
            });
            ok?;
            Ok(RateLimitKey::Header(header?))
        }
        Some("ip_address") => {
            let (ok, _f) = fields!(cx, n, ["type"], {});
            ok?;
            Ok(RateLimitKey::IpAddress)
        }
        _ => Err(cx.at("type", |cx| {
            cx.error(
                n.get("type").unwrap_or(n),
                "Input should be 'ip_address' or 'header'",
            )
        })),
    }
}

fn rate_limit(cx: &mut Cx, n: &Node) -> D<RateLimit> {
    let (ok, f) = fields!(cx, n, [], { prefix, key, rps, burst });
    let prefix = decode::def(
        cx,
        "prefix",
        f.prefix,
        || "/".to_string(),
        |cx, n| {
            let p = decode::string(cx, n)?;
            let valid = p.starts_with('/')
                && p.len() <= 4094
                && !p
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '\\' | '{' | '}'));
            if !valid {
                return Err(cx.error(n, "String should match pattern '^/[^\\s\\\\{}]*$'"));
            }
            Ok(p)
        },
    );
    let key = decode::def(cx, "key", f.key, || RateLimitKey::IpAddress, rate_limit_key);
    let rps = decode::req(cx, n, "rps", f.rps, |cx, n| {
        let v = decode::float(cx, n)?;
        let max = (i64::MAX / 60) as f64;
        if v < 1.0 / 60.0 {
            return Err(cx.error(
                n,
                "Input should be greater than or equal to 0.016666666666666666",
            ));
        }
        if v > max {
            return Err(cx.error(
                n,
                format!("Input should be less than or equal to {}", i64::MAX / 60),
            ));
        }
        Ok(v)
    });
    let burst = decode::def(
        cx,
        "burst",
        f.burst,
        || 0,
        |cx, n| decode::integer_in(cx, n, Some(0), None),
    );
    ok?;
    Ok(RateLimit {
        prefix: prefix?,
        key: key?,
        rps: rps?,
        burst: burst?,
    })
}

string_enum!(
    /// HTTP methods a probe may use.
    ProbeMethod {
        /// GET
        Get = "get",
        /// POST
        Post = "post",
        /// PUT
        Put = "put",
        /// DELETE
        Delete = "delete",
        /// PATCH
        Patch = "patch",
        /// HEAD
        Head = "head",
    }
);

/// A header sent by a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value (may use `${{ env.X }}` / `${{ secrets.X }}`).
    pub value: String,
}

/// One `probes` item: an HTTP readiness check. Unset fields take the server's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Probe type (always `http`).
    #[serde(rename = "type")]
    #[schemars(with = "crate::config::schema::HttpProbeType")]
    pub kind: &'static str,
    /// Path to request (default `/`).
    pub url: Option<String>,
    /// HTTP method (default `get`).
    pub method: Option<ProbeMethod>,
    /// Headers to send.
    pub headers: Option<Vec<HttpHeader>>,
    /// Request body.
    pub body: Option<String>,
    /// Request timeout, seconds (default 10).
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<i64>,
    /// Interval between probes, seconds (default 15).
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<i64>,
    /// Consecutive successes before the replica is ready (default 1).
    pub ready_after: Option<i64>,
    /// Stop probing once ready.
    pub until_ready: Option<bool>,
}

fn bounded_string(cx: &mut Cx, n: &Node, max: usize) -> D<String> {
    let s = decode::string(cx, n)?;
    if s.is_empty() {
        return Err(cx.error(n, "String should have at least 1 character"));
    }
    if s.chars().count() > max {
        return Err(cx.error(n, format!("String should have at most {max} characters")));
    }
    Ok(s)
}

fn probe(cx: &mut Cx, n: &Node) -> D<ProbeConfig> {
    let (ok, f) = fields!(cx, n, [], { r#type, url, method, headers, body, timeout, interval, ready_after, until_ready });
    let kind = decode::req(cx, n, "type", f.r#type, |cx, n| {
        decode::one_of(cx, n, &[("http", "http")])
    });
    let url = decode::opt(cx, "url", f.url, |cx, n| {
        let u = decode::string(cx, n)?;
        if !u.starts_with('/') {
            return Err(cx.error(n, "Must start with `/`"));
        }
        if u.len() > 2048 || u.chars().any(char::is_control) {
            return Err(cx.error(n, "Must be at most 2048 printable characters"));
        }
        Ok(u)
    });
    let method = decode::opt(cx, "method", f.method, ProbeMethod::decode);
    let headers = decode::opt(cx, "headers", f.headers, |cx, n| {
        let headers = decode::list(cx, n, |cx, n| {
            let (ok, f) = fields!(cx, n, [], { name, value });
            let name = decode::req(cx, n, "name", f.name, |cx, n| bounded_string(cx, n, 256));
            let value = decode::req(cx, n, "value", f.value, |cx, n| bounded_string(cx, n, 2048));
            ok?;
            Ok(HttpHeader {
                name: name?,
                value: value?,
            })
        })?;
        if headers.len() > 16 {
            return Err(cx.error(n, "List should have at most 16 items"));
        }
        Ok(headers)
    });
    let body = decode::opt(cx, "body", f.body, |cx, n| bounded_string(cx, n, 2048));
    let at_least_1s = |what: &'static str| {
        move |cx: &mut Cx, n: &Node| {
            let v = values::duration(cx, n)?;
            if v < 1 {
                return Err(cx.error(n, format!("Probe {what} cannot be shorter than 1s")));
            }
            Ok(v)
        }
    };
    let timeout = decode::opt(cx, "timeout", f.timeout, at_least_1s("timeout"));
    let interval = decode::opt(cx, "interval", f.interval, at_least_1s("interval"));
    let ready_after = decode::opt(cx, "ready_after", f.ready_after, |cx, n| {
        decode::integer_in(cx, n, Some(1), None)
    });
    let until_ready = decode::opt(cx, "until_ready", f.until_ready, decode::boolean);
    ok?;
    let probe = ProbeConfig {
        kind: kind?,
        url: url?,
        method: method?,
        headers: headers?,
        body: body?,
        timeout: timeout?,
        interval: interval?,
        ready_after: ready_after?,
        until_ready: until_ready?,
    };
    if let (Some(m @ (ProbeMethod::Get | ProbeMethod::Head)), Some(_)) = (probe.method, &probe.body)
    {
        return Err(cx.at("body", |cx| {
            cx.error(
                f.body.unwrap_or(n),
                format!("Cannot set request body for the `{}` method", m.as_str()),
            )
        }));
    }
    Ok(probe)
}

string_enum!(
    /// The router a replica group runs.
    RouterType {
        /// SGLang router.
        Sglang = "sglang",
        /// NVIDIA Dynamo router.
        Dynamo = "dynamo",
    }
);

/// The `router` of a replica group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RouterConfig {
    /// Router kind.
    #[serde(rename = "type")]
    #[schemars(with = "Option<RouterType>")]
    pub kind: RouterType,
}

/// A group of identical replicas of a service.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReplicaGroup {
    /// Group name (defaults to its index).
    #[schemars(with = "Option<String>")]
    pub name: String,
    /// Number of replicas (a range with autoscaling).
    #[schemars(with = "crate::config::schema::IntRange")]
    pub replicas: Range<i64>,
    /// Autoscaling of this group.
    pub scaling: Option<ScalingSpec>,
    /// Resources of each replica (not inherited from the service).
    #[schemars(with = "Option<crate::config::schema::ResourcesInput>")]
    pub resources: ResourcesSpec,
    /// Spot policy of this group.
    pub spot_policy: Option<SpotPolicy>,
    /// Capacity reservation of this group.
    pub reservation: Option<String>,
    /// Commands of this group's replicas.
    #[schemars(with = "Option<Vec<String>>")]
    pub commands: Vec<String>,
    /// Image of this group.
    pub image: Option<String>,
    /// Python version of this group.
    #[schemars(with = "Option<crate::config::schema::PythonInput>")]
    pub python: Option<PythonVersion>,
    /// Use the `-devel` image in this group.
    pub nvcc: Option<bool>,
    /// Docker-in-Docker in this group.
    pub docker: Option<bool>,
    /// Privileged containers in this group.
    pub privileged: Option<bool>,
    /// The router this group runs.
    pub router: Option<RouterConfig>,
}

/// Service `replicas` (and a group's `replicas`): `2`, `"0..4"`, `"..4"` or `{min, max}`.
fn replicas_range(cx: &mut Cx, n: &Node) -> D<Range<i64>> {
    let r = resources::range_int(cx, n)?;
    if r.max.is_none() {
        return Err(cx.error(n, "The maximum number of replicas is required"));
    }
    let min = r.min.unwrap_or(0);
    if min < 0 {
        return Err(cx.error(
            n,
            "The minimum number of replicas must be greater than or equal to 0",
        ));
    }
    Ok(Range {
        min: Some(min),
        max: r.max,
    })
}

fn is_fixed(r: &Range<i64>) -> bool {
    r.min == r.max
}

/// Checks the replicas/scaling coupling of one group (or of a service without groups).
fn check_scaling(cx: &mut Cx, node: &Node, replicas: &Range<i64>, scaling: bool) -> D<()> {
    if !is_fixed(replicas) && !scaling {
        return Err(cx.at("replicas", |cx| {
            cx.error_help(
                node,
                "When you set `replicas` to a range, ensure to specify `scaling`.",
                "add `scaling: {metric: rps, target: 10}`, or set a fixed number of replicas"
                    .into(),
            )
        }));
    }
    if is_fixed(replicas) && scaling {
        return Err(cx.at("scaling", |cx| {
            cx.error(node, "To use `scaling`, `replicas` must be set to a range.")
        }));
    }
    Ok(())
}

fn replica_group(cx: &mut Cx, n: &Node, index: usize) -> D<ReplicaGroup> {
    let (ok, f) = fields!(cx, n, [], {
        name, replicas, count, scaling, resources, spot_policy, reservation, commands, image,
        python, nvcc, docker, privileged, router,
    });
    let name = decode::opt(cx, "name", f.name, |cx, n| {
        let s = decode::string(cx, n)?;
        if !run::is_valid_group_name(&s) {
            return Err(cx.error(
                n,
                "Resource name should match regex '^[a-z0-9][a-z0-9-]{0,39}$'",
            ));
        }
        Ok(s)
    });
    let (replicas_key, replicas_node) = match (f.replicas, f.count) {
        (Some(r), _) => ("replicas", Some(r)),
        (None, c) => ("count", c),
    };
    let replicas = match replicas_node {
        None => cx.at("replicas", |cx| {
            Err(cx.error(n, "Field required: `replicas` is missing"))
        }),
        Some(r) => cx.at(replicas_key, |cx| replicas_range(cx, r)),
    };
    let scaling_v = decode::opt(cx, "scaling", f.scaling, scaling);
    let res = decode::def(
        cx,
        "resources",
        f.resources,
        ResourcesSpec::default,
        resources::resources,
    );
    let spot_policy = decode::opt(cx, "spot_policy", f.spot_policy, SpotPolicy::decode);
    let reservation = decode::opt(cx, "reservation", f.reservation, decode::string);
    let commands = decode::def(cx, "commands", f.commands, Vec::new, decode::string_list);
    let image = decode::opt(cx, "image", f.image, decode::string);
    let python = decode::opt(cx, "python", f.python, run::python_version);
    let nvcc = decode::opt(cx, "nvcc", f.nvcc, decode::boolean);
    let docker = decode::opt(cx, "docker", f.docker, decode::boolean);
    let privileged = decode::opt(cx, "privileged", f.privileged, decode::boolean);
    let router = decode::opt(cx, "router", f.router, |cx, n| {
        let (ok, f) = fields!(cx, n, [], { r#type });
        let kind = decode::def(
            cx,
            "type",
            f.r#type,
            || RouterType::Sglang,
            RouterType::decode,
        );
        ok?;
        Ok(RouterConfig { kind: kind? })
    });
    ok?;
    let group = ReplicaGroup {
        name: name?.unwrap_or_else(|| index.to_string()),
        replicas: replicas?,
        scaling: scaling_v?,
        resources: res?,
        spot_policy: spot_policy?,
        reservation: reservation?,
        commands: commands?,
        image: image?,
        python: python?,
        nvcc: nvcc?,
        docker: docker?,
        privileged: privileged?,
        router: router?,
    };
    let exclusive = [
        (
            "image",
            group.image.is_some(),
            "python",
            group.python.is_some(),
        ),
        (
            "image",
            group.image.is_some(),
            "docker",
            group.docker == Some(true),
        ),
        (
            "python",
            group.python.is_some(),
            "docker",
            group.docker == Some(true),
        ),
        (
            "nvcc",
            group.nvcc == Some(true),
            "docker",
            group.docker == Some(true),
        ),
        (
            "privileged: false",
            group.privileged == Some(false),
            "docker: true",
            group.docker == Some(true),
        ),
    ];
    for (a, a_set, b, b_set) in exclusive {
        if a_set && b_set {
            return Err(cx.error(
                n,
                format!("`{a}` and `{b}` are mutually exclusive within a replica group"),
            ));
        }
    }
    check_scaling(cx, n, &group.replicas, group.scaling.is_some())?;
    Ok(group)
}

/// A `service` configuration.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceConfiguration {
    /// The port the service listens on (and the public port).
    #[schemars(with = "crate::config::schema::ServicePortInput")]
    pub port: PortMapping,
    /// Gateway choice; `None` = the default gateway if one exists.
    #[schemars(with = "Option<crate::config::schema::GatewayInput>")]
    pub gateway: Option<GatewayChoice>,
    /// Strip `/proxy/services/<project>/<run>` before forwarding (without a gateway).
    #[schemars(with = "Option<bool>")]
    pub strip_prefix: bool,
    /// The model served, for the model endpoint.
    #[schemars(with = "Option<crate::config::schema::ModelInput>")]
    pub model: Option<ModelSpec>,
    /// HTTPS on the gateway; `None` = on.
    #[schemars(with = "Option<crate::config::schema::HttpsInput>")]
    pub https: Option<Https>,
    /// Require a dstack token.
    #[schemars(with = "Option<bool>")]
    pub auth: bool,
    /// Autoscaling (services without groups).
    pub scaling: Option<ScalingSpec>,
    /// Rate limits.
    #[schemars(with = "Option<Vec<RateLimit>>")]
    pub rate_limits: Vec<RateLimit>,
    /// Readiness probes; `None` = the default (a model probe when `model` is set), `[]` = none.
    pub probes: Option<Vec<ProbeConfig>>,
    /// Number of replicas (services without groups); `None` = 1.
    #[schemars(with = "Option<crate::config::schema::ReplicasInput>")]
    pub replicas: Option<Range<i64>>,
    /// Replica groups.
    pub groups: Option<Vec<ReplicaGroup>>,
    /// Commands (services without groups).
    #[schemars(with = "Option<Vec<String>>")]
    pub commands: Vec<String>,
    /// Shared run properties.
    #[serde(flatten)]
    pub common: RunCommon,
    /// Profile parameters.
    #[serde(flatten)]
    pub profile: ProfileParams,
}

impl Serialize for ServiceConfiguration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape<'a> {
            port: &'a PortMapping,
            gateway: &'a Option<GatewayChoice>,
            strip_prefix: bool,
            model: &'a Option<ModelSpec>,
            https: &'a Option<Https>,
            auth: bool,
            scaling: &'a Option<ScalingSpec>,
            rate_limits: &'a Vec<RateLimit>,
            probes: &'a Option<Vec<ProbeConfig>>,
            replicas: &'a Option<Range<i64>>,
            groups: &'a Option<Vec<ReplicaGroup>>,
            commands: &'a Vec<String>,
            #[serde(flatten)]
            common: &'a RunCommon,
            #[serde(flatten)]
            profile: &'a ProfileParams,
        }
        Shape {
            port: &self.port,
            gateway: &self.gateway,
            strip_prefix: self.strip_prefix,
            model: &self.model,
            https: &self.https,
            auth: self.auth,
            scaling: &self.scaling,
            rate_limits: &self.rate_limits,
            probes: &self.probes,
            replicas: &self.replicas,
            groups: &self.groups,
            commands: &self.commands,
            common: &self.common,
            profile: &self.profile,
        }
        .serialize(s)
    }
}

const OWN_KEYS: [&str; 12] = [
    "port",
    "gateway",
    "strip_prefix",
    "model",
    "https",
    "auth",
    "scaling",
    "rate_limits",
    "probes",
    "replicas",
    "groups",
    "commands",
];

impl ServiceConfiguration {
    /// Decodes a `type: service` mapping.
    pub fn decode(cx: &mut Cx, n: &Node) -> D<ServiceConfiguration> {
        let known: Vec<&str> = OWN_KEYS
            .into_iter()
            .chain(COMMON_KEYS.iter().copied())
            .chain(super::profile::PROFILE_KEYS.iter().copied())
            .collect();
        let mut picked: [Option<&Node>; 12] = [None; 12];
        let ok = decode::collect_fields(cx, n, &known, &["type"], |k, v| {
            match OWN_KEYS.iter().position(|x| *x == k) {
                Some(i) => {
                    picked[i] = Some(v);
                    true
                }
                None => known.contains(&k),
            }
        });
        let [
            f_port,
            f_gateway,
            f_strip,
            f_model,
            f_https,
            f_auth,
            f_scaling,
            f_rate,
            f_probes,
            f_replicas,
            f_groups,
            f_commands,
        ] = picked;
        let port = decode::req(cx, n, "port", f_port, values::service_port);
        let gateway = decode::opt(cx, "gateway", f_gateway, |cx, n| match &n.value {
            Value::Bool(b) => Ok(GatewayChoice::Enabled(*b)),
            _ => values::entity_reference(cx, n).map(GatewayChoice::Named),
        });
        let strip_prefix = decode::def(cx, "strip_prefix", f_strip, || true, decode::boolean);
        let model = decode::opt(cx, "model", f_model, model);
        let https = decode::opt(cx, "https", f_https, |cx, n| match &n.value {
            Value::Str(s) if s == "auto" => Ok(Https::Auto),
            _ => decode::boolean(cx, n).map(Https::Enabled),
        });
        let auth = decode::def(cx, "auth", f_auth, || true, decode::boolean);
        let scaling_v = decode::opt(cx, "scaling", f_scaling, scaling);
        let rate_limits = decode::def(cx, "rate_limits", f_rate, Vec::new, |cx, n| {
            let limits = decode::list(cx, n, rate_limit)?;
            let prefixes: Vec<String> = limits.iter().map(|l| l.prefix.clone()).collect();
            let dups = duplicates(&prefixes);
            if !dups.is_empty() {
                return Err(cx.error(
                    n,
                    format!(
                        "Prefixes {} are used more than once. Each rate limit should have a unique path prefix",
                        py_list(&dups)
                    ),
                ));
            }
            Ok(limits)
        });
        let probes = decode::opt(cx, "probes", f_probes, |cx, n| {
            let probes = decode::list(cx, n, probe)?;
            for (i, p) in probes.iter().enumerate() {
                if probes[..i].contains(p) {
                    return Err(cx.error(n, "Probes must be unique"));
                }
            }
            Ok(probes)
        });
        // `replicas` holds a range, or (legacy spelling) a list of replica groups.
        let legacy_groups = f_replicas.is_some_and(|r| matches!(r.value, Value::Seq(_)));
        let replicas = if legacy_groups {
            Ok(None)
        } else {
            decode::opt(cx, "replicas", f_replicas, replicas_range)
        };
        let groups_node = if legacy_groups { f_replicas } else { f_groups };
        let groups_key = if legacy_groups { "replicas" } else { "groups" };
        let groups = decode::opt(cx, groups_key, groups_node, |cx, n| {
            if n.as_seq().is_some_and(<[Node]>::is_empty) {
                return Err(cx.error(n, "`groups` cannot be an empty list"));
            }
            let mut index = 0;
            decode::list(cx, n, |cx, item| {
                let g = replica_group(cx, item, index);
                index += 1;
                g
            })
        });
        let commands = decode::def(cx, "commands", f_commands, Vec::new, decode::string_list);
        let common = RunCommon::decode(cx, n, RunType::Service);
        let profile = ProfileParams::decode(cx, n);
        ok?;
        let service = ServiceConfiguration {
            port: port?,
            gateway: gateway?,
            strip_prefix: strip_prefix?,
            model: model?,
            https: https?,
            auth: auth?,
            scaling: scaling_v?,
            rate_limits: rate_limits?,
            probes: probes?,
            replicas: replicas?,
            groups: groups?,
            commands: commands?,
            common: common?,
            profile: profile?,
        };
        if legacy_groups && f_groups.is_some() {
            return Err(cx.at("groups", |cx| {
                cx.error(n, "`replicas` and `groups` are mutually exclusive")
            }));
        }
        match &service.groups {
            None => {
                let replicas = service.replicas.unwrap_or(Range::exact(1));
                check_scaling(
                    cx,
                    f_replicas.or(f_scaling).unwrap_or(n),
                    &replicas,
                    service.scaling.is_some(),
                )?;
                if service.commands.is_empty() && service.common.image.is_none() {
                    return Err(cx.error_help(
                        n,
                        "Either `commands` or `image` must be set",
                        "add `commands:` to run, or an `image:` whose entrypoint starts the server"
                            .into(),
                    ));
                }
            }
            Some(groups) => service.check_groups(
                cx,
                n,
                groups,
                f_replicas.is_some() && !legacy_groups,
                f_groups,
            )?,
        }
        Ok(service)
    }

    fn check_groups(
        &self,
        cx: &mut Cx,
        n: &Node,
        groups: &[ReplicaGroup],
        replicas_set: bool,
        f_groups: Option<&Node>,
    ) -> D<()> {
        let gnode = f_groups.unwrap_or(n);
        let fail =
            |cx: &mut Cx, msg: String| -> Invalid { cx.at("groups", |cx| cx.error(gnode, msg)) };
        if replicas_set {
            return Err(fail(
                cx,
                "`replicas` and `groups` are mutually exclusive".into(),
            ));
        }
        if self.scaling.is_some() {
            return Err(fail(
                cx,
                "Top-level `scaling` is not allowed when `groups` is set. Specify `scaling` in each replica group instead.".into(),
            ));
        }
        if !self.commands.is_empty() {
            return Err(fail(
                cx,
                "Top-level `commands` is not allowed when `groups` is set. Specify `commands` in each replica group instead.".into(),
            ));
        }
        let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        let dups = duplicates(&names);
        if !dups.is_empty() {
            return Err(fail(
                cx,
                format!(
                    "Duplicate replica group names found: {}. Each replica group must have a unique name.",
                    py_list(&dups)
                ),
            ));
        }
        let c = &self.common;
        let with = |pred: &dyn Fn(&ReplicaGroup) -> bool| -> Vec<String> {
            groups
                .iter()
                .filter(|g| pred(g))
                .map(|g| g.name.clone())
                .collect()
        };
        let both_levels: [(&str, bool, Vec<String>); 7] = [
            ("image", c.image.is_some(), with(&|g| g.image.is_some())),
            (
                "docker",
                c.docker == Some(true),
                with(&|g| g.docker == Some(true)),
            ),
            (
                "privileged",
                c.privileged,
                with(&|g| g.privileged == Some(true)),
            ),
            ("python", c.python.is_some(), with(&|g| g.python.is_some())),
            (
                "nvcc",
                c.nvcc == Some(true),
                with(&|g| g.nvcc == Some(true)),
            ),
            (
                "spot_policy",
                self.profile.spot_policy.is_some(),
                with(&|g| g.spot_policy.is_some()),
            ),
            (
                "reservation",
                self.profile.reservation.is_some(),
                with(&|g| g.reservation.is_some()),
            ),
        ];
        for (field, top, in_groups) in both_levels {
            if top && !in_groups.is_empty() {
                return Err(fail(
                    cx,
                    format!(
                        "`{field}` is set at both the service level and in replica group(s) {}. Set it in one place only.",
                        py_list(&in_groups)
                    ),
                ));
            }
        }
        let conflicts: [(&str, bool, &str, Vec<String>); 10] = [
            (
                "image",
                c.image.is_some(),
                "docker",
                with(&|g| g.docker == Some(true)),
            ),
            (
                "image",
                c.image.is_some(),
                "python",
                with(&|g| g.python.is_some()),
            ),
            (
                "image",
                c.image.is_some(),
                "nvcc",
                with(&|g| g.nvcc == Some(true)),
            ),
            (
                "docker",
                c.docker == Some(true),
                "image",
                with(&|g| g.image.is_some()),
            ),
            (
                "docker",
                c.docker == Some(true),
                "python",
                with(&|g| g.python.is_some()),
            ),
            (
                "docker",
                c.docker == Some(true),
                "nvcc",
                with(&|g| g.nvcc == Some(true)),
            ),
            (
                "python",
                c.python.is_some(),
                "image",
                with(&|g| g.image.is_some()),
            ),
            (
                "python",
                c.python.is_some(),
                "docker",
                with(&|g| g.docker == Some(true)),
            ),
            (
                "nvcc",
                c.nvcc == Some(true),
                "image",
                with(&|g| g.image.is_some()),
            ),
            (
                "nvcc",
                c.nvcc == Some(true),
                "docker",
                with(&|g| g.docker == Some(true)),
            ),
        ];
        for (top, top_set, group_field, in_groups) in conflicts {
            if top_set && !in_groups.is_empty() {
                return Err(fail(
                    cx,
                    format!(
                        "Service-level `{top}` conflicts with group-level `{group_field}` in replica group(s) {}.",
                        py_list(&in_groups)
                    ),
                ));
            }
        }
        for g in groups {
            if g.commands.is_empty() && g.image.is_none() && c.image.is_none() {
                return Err(fail(
                    cx,
                    format!(
                        "Replica group '{}': either `commands` or `image` must be set in the group, or `image` at the service level.",
                        g.name
                    ),
                ));
            }
        }
        let routers: Vec<&ReplicaGroup> = groups.iter().filter(|g| g.router.is_some()).collect();
        if routers.len() > 1 {
            return Err(fail(
                cx,
                "At most one replica group may specify `router`.".into(),
            ));
        }
        if routers.iter().any(|g| g.replicas != Range::exact(1)) {
            return Err(fail(
                cx,
                "For now replica group with `router` must have `replicas: 1`.".into(),
            ));
        }
        Ok(())
    }

    /// The replica groups the service runs: its `groups`, or one implicit group `0` made of
    /// the top-level commands, resources, replicas and scaling.
    pub fn effective_groups(&self) -> Vec<ReplicaGroup> {
        match &self.groups {
            Some(groups) => groups.clone(),
            None => vec![ReplicaGroup {
                name: "0".into(),
                replicas: self.replicas.unwrap_or(Range::exact(1)),
                scaling: self.scaling.clone(),
                resources: self.common.resources.clone(),
                spot_policy: None,
                reservation: None,
                commands: self.commands.clone(),
                image: None,
                python: None,
                nvcc: None,
                docker: None,
                privileged: None,
                router: None,
            }],
        }
    }

    /// Whether some replica group uses the Dynamo router.
    pub fn has_dynamo_router(&self) -> bool {
        self.groups.iter().flatten().any(|g| {
            g.router
                .as_ref()
                .is_some_and(|r| r.kind == RouterType::Dynamo)
        })
    }
}
