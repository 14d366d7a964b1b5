//! The `service` configuration: port, gateway, model, auth, replicas and replica groups,
//! autoscaling, rate limits and probes.

mod model;
mod probes;
mod rate_limits;
mod replicas;
mod scaling;

pub use model::*;
pub use probes::*;
pub use rate_limits::*;
pub use replicas::*;
pub use scaling::*;

use serde::{Serialize, Serializer};

use super::decode::{self, Cx, D};
use super::node::{Node, Value};
use super::profile::ProfileParams;
use super::run::{COMMON_KEYS, RunCommon, RunType, duplicates, py_list};
use super::values::{self, EntityReference, PortMapping};
use crate::resources::Range;

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
        // The original's `mode="before"` rule, checked first and reported alone: `replicas`
        // (a range, or a legacy list of groups) and `groups` cannot both be given.
        let given = |key: &str| n.get(key).filter(|v| !v.is_null());
        if let (Some(g), Some(_)) = (given("groups"), given("replicas")) {
            return Err(cx.at("groups", |cx| {
                cx.error(g, "`replicas` and `groups` are mutually exclusive")
            }));
        }
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
        // A left-to-right union: a boolean (pydantic's lax reading: `"yes"`, `1`, ...) first.
        let gateway = decode::opt(cx, "gateway", f_gateway, |cx, n| {
            match decode::lax_bool(n) {
                Some(b) => Ok(GatewayChoice::Enabled(b)),
                None => values::entity_reference(cx, n).map(GatewayChoice::Named),
            }
        });
        let strip_prefix = decode::def(cx, "strip_prefix", f_strip, || true, decode::boolean);
        let model = decode::opt(cx, "model", f_model, model::model);
        let https = decode::opt(cx, "https", f_https, |cx, n| match &n.value {
            Value::Str(s) if s == "auto" => Ok(Https::Auto),
            _ => decode::boolean(cx, n).map(Https::Enabled),
        });
        let auth = decode::def(cx, "auth", f_auth, || true, decode::boolean);
        let scaling_v = decode::opt(cx, "scaling", f_scaling, scaling::scaling);
        let rate_limits = decode::def(cx, "rate_limits", f_rate, Vec::new, |cx, n| {
            let limits = decode::list(cx, n, rate_limits::rate_limit)?;
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
            let probes = decode::list(cx, n, probes::probe)?;
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
            decode::opt(cx, "replicas", f_replicas, scaling::replicas_range)
        };
        let groups_node = if legacy_groups { f_replicas } else { f_groups };
        let groups_key = if legacy_groups { "replicas" } else { "groups" };
        let groups = decode::opt(cx, groups_key, groups_node, |cx, n| {
            if n.as_seq().is_some_and(<[Node]>::is_empty) {
                return Err(cx.error(n, "`groups` cannot be an empty list"));
            }
            let mut index = 0;
            let groups = decode::list(cx, n, |cx, item| {
                let g = replicas::replica_group(cx, item, index);
                index += 1;
                g
            })?;
            // A rule of the `groups` field itself: reported with the other fields' problems.
            let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
            let dups = duplicates(&names);
            if !dups.is_empty() {
                return Err(cx.error(
                    n,
                    format!(
                        "Duplicate replica group names found: {}. Each replica group must have a unique name.",
                        py_list(&dups)
                    ),
                ));
            }
            Ok(groups)
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
        match &service.groups {
            None => {
                // Only a given `replicas` is checked against `scaling` here; `scaling` with
                // `replicas` unset passes parsing, as in the original, and the server rejects
                // it (`spec::validate_run_spec`).
                if let Some(replicas) = &service.replicas {
                    scaling::check_scaling(
                        cx,
                        f_replicas.or(f_scaling).unwrap_or(n),
                        replicas,
                        service.scaling.is_some(),
                    )?;
                }
                if service.commands.is_empty()
                    && service.common.image.as_deref().is_none_or(str::is_empty)
                {
                    return Err(cx.error_help(
                        n,
                        "Either `commands` or `image` must be set",
                        "add `commands:` to run, or an `image:` whose entrypoint starts the server"
                            .into(),
                    ));
                }
            }
            Some(groups) => service.check_groups(cx, n, groups, f_groups)?,
        }
        Ok(service)
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
