//! The `fleet` configuration: cloud fleets (`nodes`) and SSH fleets (`ssh_config`).

use std::net::IpAddr;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::decode::{self, Cx, D, fields};
use super::node::{Node, Value};
use super::profile::{self, BackendOptions, BackendType, Retry, SpotPolicy, string_enum};
use super::resources;
use super::values::{self, Env, Tags};
use crate::resources::{Range, ResourcesSpec};

string_enum!(
    /// How a fleet's instances are placed.
    Placement {
        /// Anywhere.
        Any = "any",
        /// In one cluster with a fast interconnect.
        Cluster = "cluster",
    }
);

/// `blocks`: how many shares an instance is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocks {
    /// A fixed number of shares.
    Count(i64),
    /// As many as the instance's GPUs (or CPUs) allow.
    Auto,
}

impl Serialize for Blocks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Blocks::Count(n) => s.serialize_i64(*n),
            Blocks::Auto => s.serialize_str("auto"),
        }
    }
}

fn blocks(cx: &mut Cx, n: &Node) -> D<Blocks> {
    match &n.value {
        Value::Str(s) if s == "auto" => Ok(Blocks::Auto),
        _ => decode::integer_in(cx, n, Some(1), None).map(Blocks::Count),
    }
}

/// `nodes` of a cloud fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FleetNodes {
    /// Instances always kept.
    pub min: i64,
    /// Instances created initially.
    pub target: i64,
    /// Upper bound; `None` = unbounded.
    pub max: Option<i64>,
}

/// `nodes`: `2`, `"0..2"`, `"1.."`, or `{min, target, max}`.
pub fn fleet_nodes(cx: &mut Cx, n: &Node) -> D<FleetNodes> {
    let (min, target, max) = match &n.value {
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { min, target, max });
            let min = decode::opt(cx, "min", f.min, decode::integer);
            let target = decode::opt(cx, "target", f.target, decode::integer);
            let max = decode::opt(cx, "max", f.max, decode::integer);
            ok?;
            (min?, target?, max?)
        }
        // As the original's `parse_nodes`: `"a..b"` becomes `{min: a, max: b}` (an empty side
        // is unset), any other string or number `{min: v, max: v}`; the bounds are then checked
        // by the rules below, not by the range type (`4..2` → `max must not be less than min`).
        Value::Str(s) if s.contains("..") => {
            let compact: String = s.chars().filter(|c| *c != ' ').collect();
            let parts: Vec<&str> = compact.split("..").collect();
            let &[lo, hi] = parts.as_slice() else {
                return Err(cx.error(n, "too many values to unpack (expected 2)"));
            };
            let bound = |cx: &mut Cx, key: &str, text: &str| -> D<Option<i64>> {
                if text.is_empty() {
                    return Ok(None);
                }
                let node = Node {
                    value: Value::Str(text.to_string()),
                    mark: n.mark,
                };
                cx.at(key, |cx| decode::integer(cx, &node)).map(Some)
            };
            let (min, max) = (bound(cx, "min", lo), bound(cx, "max", hi));
            (min?, None, max?)
        }
        Value::Str(_) | Value::Int(_) | Value::Bool(_) => {
            let v = decode::integer(cx, n)?;
            (Some(v), None, Some(v))
        }
        _ => {
            return Err(cx.error(
                n,
                "Input should be a valid dictionary or instance of FleetNodesSpec",
            ));
        }
    };
    let min = min.unwrap_or(0);
    let target = target.unwrap_or(min);
    let fail = |cx: &mut Cx, m: &str| Err(cx.error(n, m.to_string()));
    if min < 0 {
        return fail(cx, "min cannot be negative");
    }
    if target < min {
        return fail(cx, "target must not be be less than min");
    }
    if let Some(max) = max {
        if max < min {
            return fail(cx, "max must not be less than min");
        }
        if max < target {
            return fail(cx, "max must not be less than target");
        }
    }
    Ok(FleetNodes { min, target, max })
}

/// An SSH key pair (filled in by the CLI from `identity_file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SshKey {
    /// Public key.
    pub public: String,
    /// Private key.
    pub private: Option<String>,
}

fn ssh_key(cx: &mut Cx, n: &Node) -> D<SshKey> {
    let (ok, f) = fields!(cx, n, [], { public, private });
    let public = decode::req(cx, n, "public", f.public, decode::string);
    let private = decode::opt(cx, "private", f.private, decode::string);
    ok?;
    Ok(SshKey {
        public: public?,
        private: private?,
    })
}

/// A jump host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SshProxy {
    /// Host name or IP.
    pub hostname: String,
    /// SSH port.
    pub port: Option<u16>,
    /// SSH user.
    pub user: String,
    /// Private key file.
    pub identity_file: String,
    /// The key itself (internal).
    pub ssh_key: Option<SshKey>,
}

fn port(cx: &mut Cx, n: &Node) -> D<u16> {
    let v = decode::integer_in(cx, n, Some(1), Some(65535))?;
    Ok(v as u16)
}

fn proxy_jump(cx: &mut Cx, n: &Node) -> D<SshProxy> {
    let (ok, f) = fields!(cx, n, [], { hostname, port, user, identity_file, ssh_key });
    let hostname = decode::req(cx, n, "hostname", f.hostname, decode::string);
    let port = decode::opt(cx, "port", f.port, port);
    let user = decode::req(cx, n, "user", f.user, decode::string);
    let identity_file = decode::req(cx, n, "identity_file", f.identity_file, decode::string);
    let key = decode::opt(cx, "ssh_key", f.ssh_key, ssh_key);
    ok?;
    Ok(SshProxy {
        hostname: hostname?,
        port: port?,
        user: user?,
        identity_file: identity_file?,
        ssh_key: key?,
    })
}

/// One host of an SSH fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshHost {
    /// Just a host name or IP; everything else from `ssh_config`.
    Address(String),
    /// A host with its own settings.
    Params(Box<SshHostParams>),
}

/// Per-host settings of an SSH fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SshHostParams {
    /// Host name or IP.
    pub hostname: String,
    /// SSH port.
    pub port: Option<u16>,
    /// SSH user.
    pub user: Option<String>,
    /// Private key file.
    pub identity_file: Option<String>,
    /// Jump host.
    pub proxy_jump: Option<SshProxy>,
    /// Private IP used between hosts.
    pub internal_ip: Option<String>,
    /// The key itself (internal).
    pub ssh_key: Option<SshKey>,
    /// Shares of this host.
    #[schemars(with = "Option<crate::config::schema::BlocksInput>")]
    pub blocks: Option<Blocks>,
}

impl Serialize for SshHost {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SshHost::Address(a) => s.serialize_str(a),
            SshHost::Params(p) => p.serialize(s),
        }
    }
}

impl SshHost {
    /// The host name or IP.
    pub fn hostname(&self) -> &str {
        match self {
            SshHost::Address(a) => a,
            SshHost::Params(p) => &p.hostname,
        }
    }
}

/// Whether an address is private in the sense of Python's `ipaddress.is_private`.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_documentation()
                || v4.is_broadcast()
                || o[0] == 0
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
        }
    }
}

fn internal_ip(cx: &mut Cx, n: &Node) -> D<String> {
    let s = decode::string(cx, n)?;
    match s.parse::<IpAddr>() {
        Ok(ip) if is_private_ip(ip) => Ok(s),
        Ok(_) => Err(cx.error(n, "IP address is not private")),
        Err(_) => Err(cx.error(
            n,
            format!("'{s}' does not appear to be an IPv4 or IPv6 address"),
        )),
    }
}

fn network(cx: &mut Cx, n: &Node) -> D<String> {
    let s = decode::string(cx, n)?;
    let parsed = s.split_once('/').and_then(|(addr, prefix)| {
        let ip: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(ip)
    });
    match parsed {
        Some(ip) if is_private_ip(ip) => Ok(s),
        Some(_) => Err(cx.error(
            n,
            "Public network is specified when private network is required",
        )),
        None => Err(cx.error(
            n,
            format!("'{s}' does not appear to be an IPv4 or IPv6 network"),
        )),
    }
}

fn ssh_host(cx: &mut Cx, n: &Node) -> D<SshHost> {
    if !matches!(n.value, Value::Map(_)) {
        return decode::string(cx, n).map(SshHost::Address);
    }
    let (ok, f) = fields!(cx, n, [], {
        hostname, port, user, identity_file, proxy_jump, internal_ip, ssh_key, blocks,
    });
    let hostname = decode::req(cx, n, "hostname", f.hostname, decode::string);
    let port = decode::opt(cx, "port", f.port, port);
    let user = decode::opt(cx, "user", f.user, decode::string);
    let identity_file = decode::opt(cx, "identity_file", f.identity_file, decode::string);
    let proxy = decode::opt(cx, "proxy_jump", f.proxy_jump, proxy_jump);
    let ip = decode::opt(cx, "internal_ip", f.internal_ip, internal_ip);
    let key = decode::opt(cx, "ssh_key", f.ssh_key, ssh_key);
    let blocks = decode::opt(cx, "blocks", f.blocks, blocks);
    ok?;
    Ok(SshHost::Params(Box::new(SshHostParams {
        hostname: hostname?,
        port: port?,
        user: user?,
        identity_file: identity_file?,
        proxy_jump: proxy?,
        internal_ip: ip?,
        ssh_key: key?,
        blocks: blocks?,
    })))
}

/// `ssh_config` of an SSH fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SshConfig {
    /// Default SSH user.
    pub user: Option<String>,
    /// Default SSH port.
    pub port: Option<u16>,
    /// Default private key file.
    pub identity_file: Option<String>,
    /// The key itself (internal).
    pub ssh_key: Option<SshKey>,
    /// Default jump host.
    pub proxy_jump: Option<SshProxy>,
    /// The hosts.
    #[schemars(with = "Vec<crate::config::schema::SshHostInput>")]
    pub hosts: Vec<SshHost>,
    /// Private network the hosts talk over (`10.0.0.0/24`).
    pub network: Option<String>,
}

fn ssh_config(cx: &mut Cx, n: &Node) -> D<SshConfig> {
    let (ok, f) =
        fields!(cx, n, [], { user, port, identity_file, ssh_key, proxy_jump, hosts, network });
    let user = decode::opt(cx, "user", f.user, decode::string);
    let port = decode::opt(cx, "port", f.port, port);
    let identity_file = decode::opt(cx, "identity_file", f.identity_file, decode::string);
    let key = decode::opt(cx, "ssh_key", f.ssh_key, ssh_key);
    let proxy = decode::opt(cx, "proxy_jump", f.proxy_jump, proxy_jump);
    let hosts = decode::req(cx, n, "hosts", f.hosts, |cx, n| {
        decode::list(cx, n, ssh_host)
    });
    let network = decode::opt(cx, "network", f.network, network);
    ok?;
    Ok(SshConfig {
        user: user?,
        port: port?,
        identity_file: identity_file?,
        ssh_key: key?,
        proxy_jump: proxy?,
        hosts: hosts?,
        network: network?,
    })
}

/// A `fleet` configuration.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FleetConfiguration {
    /// Fleet name.
    pub name: Option<String>,
    /// Placement.
    pub placement: Option<Placement>,
    /// Shares per instance.
    #[schemars(with = "Option<crate::config::schema::BlocksInput>")]
    pub blocks: Blocks,
    /// Number of instances (cloud fleets).
    #[schemars(with = "Option<crate::config::schema::FleetNodesInput>")]
    pub nodes: Option<FleetNodes>,
    /// Capacity reservation.
    pub reservation: Option<String>,
    /// Instance resources; `None` = anything.
    #[schemars(with = "Option<crate::config::schema::ResourcesInput>")]
    pub resources: Option<ResourcesSpec>,
    /// Allowed backends.
    #[schemars(with = "Option<Vec<crate::config::schema::BackendInput>>")]
    pub backends: Option<Vec<BackendType>>,
    /// Allowed regions.
    pub regions: Option<Vec<String>>,
    /// Allowed availability zones.
    pub availability_zones: Option<Vec<String>>,
    /// Allowed instance types.
    pub instance_types: Option<Vec<String>>,
    /// Spot policy.
    pub spot_policy: Option<SpotPolicy>,
    /// Retry policy for provisioning.
    #[schemars(with = "Option<crate::config::schema::RetryInput>")]
    pub retry: Option<Retry>,
    /// Maximal price per instance and hour.
    pub max_price: Option<f64>,
    /// How long idle instances above `nodes.min` are kept (-1 = forever).
    #[schemars(with = "Option<crate::config::schema::OffableDuration>")]
    pub idle_duration: Option<i64>,
    /// Resource tags.
    #[schemars(with = "Option<crate::config::schema::TagsInput>")]
    pub tags: Option<Tags>,
    /// Backend-specific options.
    #[schemars(with = "Option<Vec<crate::config::schema::BackendOptionsInput>>")]
    pub backend_options: Option<Vec<BackendOptions>>,
    /// SSH fleet hosts.
    pub ssh_config: Option<SshConfig>,
    /// Environment of SSH fleet hosts.
    #[schemars(with = "Option<crate::config::schema::EnvInput>")]
    pub env: Env,
}

impl Serialize for FleetConfiguration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("FleetConfiguration", 19)?;
        st.serialize_field("type", "fleet")?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("placement", &self.placement)?;
        st.serialize_field("blocks", &self.blocks)?;
        st.serialize_field("nodes", &self.nodes)?;
        st.serialize_field("reservation", &self.reservation)?;
        st.serialize_field("resources", &self.resources)?;
        st.serialize_field("backends", &self.backends)?;
        st.serialize_field("regions", &self.regions)?;
        st.serialize_field("availability_zones", &self.availability_zones)?;
        st.serialize_field("instance_types", &self.instance_types)?;
        st.serialize_field("spot_policy", &self.spot_policy)?;
        st.serialize_field("retry", &self.retry)?;
        st.serialize_field("max_price", &self.max_price)?;
        st.serialize_field("idle_duration", &self.idle_duration)?;
        st.serialize_field("tags", &self.tags)?;
        st.serialize_field("backend_options", &self.backend_options)?;
        st.serialize_field("ssh_config", &self.ssh_config)?;
        st.serialize_field("env", &self.env)?;
        st.end()
    }
}

impl FleetConfiguration {
    /// Decodes a `type: fleet` mapping.
    pub fn decode(cx: &mut Cx, n: &Node) -> D<FleetConfiguration> {
        let (ok, f) = fields!(cx, n, ["type"], {
            name, placement, blocks, nodes, reservation, resources, backends, regions,
            availability_zones, instance_types, spot_policy, retry, max_price, idle_duration, tags,
            backend_options, ssh_config, env,
        });
        let name = decode::opt(cx, "name", f.name, decode::string);
        let placement = decode::opt(cx, "placement", f.placement, Placement::decode);
        let blocks = decode::def(cx, "blocks", f.blocks, || Blocks::Count(1), blocks);
        let nodes = decode::opt(cx, "nodes", f.nodes, fleet_nodes);
        let reservation = decode::opt(cx, "reservation", f.reservation, decode::string);
        let res = decode::opt(cx, "resources", f.resources, resources::resources);
        let backends = decode::opt(cx, "backends", f.backends, profile::backends);
        let regions = decode::opt(cx, "regions", f.regions, decode::string_list);
        let zones = decode::opt(
            cx,
            "availability_zones",
            f.availability_zones,
            decode::string_list,
        );
        let instance_types =
            decode::opt(cx, "instance_types", f.instance_types, decode::string_list);
        let spot_policy = decode::opt(cx, "spot_policy", f.spot_policy, SpotPolicy::decode);
        let retry = decode::opt(cx, "retry", f.retry, profile::retry);
        let max_price = decode::opt(cx, "max_price", f.max_price, profile::max_price);
        let idle = decode::opt(cx, "idle_duration", f.idle_duration, values::idle_duration);
        let tags = decode::opt(cx, "tags", f.tags, values::tags);
        let backend_options = decode::opt(
            cx,
            "backend_options",
            f.backend_options,
            profile::backend_options,
        );
        let ssh = decode::opt(cx, "ssh_config", f.ssh_config, ssh_config);
        let env = decode::def(cx, "env", f.env, Env::default, values::env);
        ok?;
        Ok(FleetConfiguration {
            name: name?,
            placement: placement?,
            blocks: blocks?,
            nodes: nodes?,
            reservation: reservation?,
            resources: res?,
            backends: backends?,
            regions: regions?,
            availability_zones: zones?,
            instance_types: instance_types?,
            spot_policy: spot_policy?,
            retry: retry?,
            max_price: max_price?,
            idle_duration: idle?.flatten(),
            tags: tags?,
            backend_options: backend_options?,
            ssh_config: ssh?,
            env: env?,
        })
    }

    /// The resources instances must have (anything when unset).
    pub fn effective_resources(&self) -> ResourcesSpec {
        self.resources
            .clone()
            .unwrap_or_else(ResourcesSpec::unconstrained)
    }

    /// The node range of a cloud fleet as `min..max`.
    pub fn node_range(&self) -> Option<Range<i64>> {
        self.nodes.map(|n| Range {
            min: Some(n.min),
            max: n.max,
        })
    }
}
