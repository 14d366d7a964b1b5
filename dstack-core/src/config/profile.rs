//! Profile parameters: where and how runs get instances (backends, spot, retry, durations,
//! schedule, fleets, ...). Valid at the top level of run configurations, in `preset`s and in
//! `profiles.yml`; fleets take a subset.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::decode::{self, Cx, D, fields};
use super::node::{Node, Value};
use super::values::{self, EntityReference, OffableDuration, Tags};
use crate::schedule::CronExpr;

/// Collects known keys from a mapping without reporting the others (another pass owns them).
macro_rules! pick {
    ($node:expr, { $($name:ident),* $(,)? }) => {{
        #[derive(Default)]
        struct Picked<'n> { $($name: Option<&'n $crate::config::node::Node>,)* }
        let mut p = Picked::default();
        if let Some(entries) = $node.as_map() {
            for (k, v) in entries {
                match k.as_str() {
                    $(Some(stringify!($name)) => p.$name = Some(v),)*
                    _ => {}
                }
            }
        }
        p
    }};
}
pub(crate) use pick;

/// Every key that profile parameters own.
pub const PROFILE_KEYS: &[&str] = &[
    "backends",
    "regions",
    "availability_zones",
    "instance_types",
    "reservation",
    "spot_policy",
    "retry",
    "max_duration",
    "stop_duration",
    "max_price",
    "creation_policy",
    "idle_duration",
    "utilization_policy",
    "startup_order",
    "stop_criteria",
    "schedule",
    "fleets",
    "instances",
    "tags",
    "backend_options",
];

/// The backends a run or fleet may use.
pub const BACKEND_TYPES: &[&str] = &[
    "amddevcloud",
    "aws",
    "azure",
    "cloudrift",
    "crusoe",
    "cudo",
    "datacrunch",
    "daytona",
    "digitalocean",
    "dstack",
    "gcp",
    "hotaisle",
    "jarvislabs",
    "kubernetes",
    "lambda",
    "lium",
    "remote",
    "nebius",
    "oci",
    "runpod",
    "seeweb",
    "tensordock",
    "vastai",
    "verda",
    "vultr",
    "slurm",
];

/// A backend name from [`BACKEND_TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BackendType(&'static str);

impl BackendType {
    /// Looks a backend up by name.
    pub fn parse(s: &str) -> Option<BackendType> {
        BACKEND_TYPES
            .iter()
            .find(|b| **b == s)
            .map(|b| BackendType(b))
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// A list of backends.
pub fn backends(cx: &mut Cx, n: &Node) -> D<Vec<BackendType>> {
    decode::list(cx, n, |cx, n| {
        let s = decode::string(cx, n)?;
        BackendType::parse(&s).ok_or_else(|| {
            let help =
                decode::did_you_mean(&s, BACKEND_TYPES).map(|m| format!("did you mean `{m}`?"));
            cx.error_at(
                n.mark,
                format!("Input should be a backend type, got `{s}`"),
                help,
            )
        })
    })
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),* }
        impl $name {
            /// Every value with its spelling.
            pub const ALL: &'static [(&'static str, $name)] = &[$(($text, $name::$variant)),*];
            /// The spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            /// Decodes the value from a node.
            pub fn decode(cx: &mut Cx, n: &Node) -> D<$name> {
                decode::one_of(cx, n, Self::ALL)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let values: Vec<&str> = Self::ALL.iter().map(|(s, _)| *s).collect();
                schemars::json_schema!({"enum": values})
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Whether to use spot (interruptible) instances.
    SpotPolicy {
        /// Only spot instances.
        Spot = "spot",
        /// Only on-demand instances.
        OnDemand = "on-demand",
        /// Spot if available, else on-demand.
        Auto = "auto",
    }
);

string_enum!(
    /// Whether a run may create new instances.
    CreationPolicy {
        /// Only reuse existing instances.
        Reuse = "reuse",
        /// Reuse, or create when none fits.
        ReuseOrCreate = "reuse-or-create",
    }
);

string_enum!(
    /// The order in which the jobs of a multi-node run start.
    StartupOrder {
        /// All at once.
        Any = "any",
        /// The master first.
        MasterFirst = "master-first",
        /// The workers first.
        WorkersFirst = "workers-first",
    }
);

string_enum!(
    /// When a multi-node run is done.
    StopCriteria {
        /// When every job is done.
        AllDone = "all-done",
        /// When the master job is done.
        MasterDone = "master-done",
    }
);

string_enum!(
    /// Events that trigger a retry.
    RetryEvent {
        /// No offers were available.
        NoCapacity = "no-capacity",
        /// A spot instance was interrupted.
        Interruption = "interruption",
        /// The job failed.
        Error = "error",
    }
);

/// `retry`: a switch, or the events to retry on and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// `retry: true` (all events, 1h) or `retry: false`.
    Enabled(bool),
    /// `retry: {on_events, duration}`; unset parts take the defaults.
    Spec {
        /// Events to retry on; `None` = all.
        on_events: Option<Vec<RetryEvent>>,
        /// How long to keep retrying, in seconds; `None` = 1h.
        duration: Option<i64>,
    },
}

impl Serialize for Retry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Retry::Enabled(b) => s.serialize_bool(*b),
            Retry::Spec {
                on_events,
                duration,
            } => {
                let mut st = s.serialize_struct("ProfileRetry", 2)?;
                st.serialize_field("on_events", on_events)?;
                st.serialize_field("duration", duration)?;
                st.end()
            }
        }
    }
}

/// `retry`.
pub fn retry(cx: &mut Cx, n: &Node) -> D<Retry> {
    match &n.value {
        Value::Bool(b) => Ok(Retry::Enabled(*b)),
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { on_events, duration });
            let on_events = decode::opt(cx, "on_events", f.on_events, |cx, n| {
                let events = decode::list(cx, n, RetryEvent::decode)?;
                if events.is_empty() {
                    return Err(cx.error(n, "`on_events` cannot be empty"));
                }
                Ok(events)
            });
            let duration = decode::opt(cx, "duration", f.duration, values::duration);
            ok?;
            Ok(Retry::Spec {
                on_events: on_events?,
                duration: duration?,
            })
        }
        _ => decode::boolean(cx, n).map(Retry::Enabled),
    }
}

/// `utilization_policy`: terminate runs whose GPUs idle below a threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct UtilizationPolicy {
    /// Minimal GPU utilisation, percent.
    pub min_gpu_utilization: i64,
    /// Window over which it is measured, seconds (at least 5 minutes).
    #[schemars(with = "crate::config::schema::Duration")]
    pub time_window: i64,
}

fn utilization_policy(cx: &mut Cx, n: &Node) -> D<UtilizationPolicy> {
    let (ok, f) = fields!(cx, n, [], { min_gpu_utilization, time_window });
    let min = decode::req(
        cx,
        n,
        "min_gpu_utilization",
        f.min_gpu_utilization,
        |cx, n| decode::integer_in(cx, n, Some(0), Some(100)),
    );
    let window = decode::req(cx, n, "time_window", f.time_window, |cx, n| {
        let v = values::duration(cx, n)?;
        if v < 300 {
            return Err(cx.error(n, "Minimum time_window is 5m"));
        }
        Ok(v)
    });
    ok?;
    Ok(UtilizationPolicy {
        min_gpu_utilization: min?,
        time_window: window?,
    })
}

/// `schedule`: when to start the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// Cron expressions (UTC; day-of-week 0 is Monday); the earliest next time wins.
    pub cron: Vec<String>,
}

impl Schedule {
    /// The parsed expressions.
    pub fn expressions(&self) -> Vec<CronExpr> {
        self.cron
            .iter()
            .filter_map(|c| CronExpr::parse(c).ok())
            .collect()
    }
}

fn cron_expr(cx: &mut Cx, n: &Node) -> D<String> {
    let s = decode::string(cx, n)?;
    CronExpr::parse(&s).map_err(|e| cx.error(n, e.message().to_string()))?;
    Ok(s)
}

fn schedule(cx: &mut Cx, n: &Node) -> D<Schedule> {
    let (ok, f) = fields!(cx, n, [], { cron });
    let cron = decode::req(cx, n, "cron", f.cron, |cx, n| match &n.value {
        Value::Seq(items) => {
            if items.is_empty() {
                return Err(cx.error(n, "At least one cron expression must be specified"));
            }
            decode::list(cx, n, cron_expr)
        }
        _ => cron_expr(cx, n).map(|c| vec![c]),
    });
    ok?;
    Ok(Schedule { cron: cron? })
}

/// An `instances` item: which instances a run may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceSelector {
    /// By instance name.
    Name(String),
    /// By hostname or internal IP (case-insensitive).
    Hostname(String),
    /// By fleet and instance number.
    Fleet {
        /// The fleet.
        fleet: EntityReference,
        /// The instance number in the fleet.
        instance: i64,
    },
}

impl Serialize for InstanceSelector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InstanceSelector::Name(name) => {
                let mut st = s.serialize_struct("InstanceNameSelector", 1)?;
                st.serialize_field("name", name)?;
                st.end()
            }
            InstanceSelector::Hostname(host) => {
                let mut st = s.serialize_struct("InstanceHostnameSelector", 1)?;
                st.serialize_field("hostname", host)?;
                st.end()
            }
            InstanceSelector::Fleet { fleet, instance } => {
                let mut st = s.serialize_struct("FleetInstanceSelector", 2)?;
                st.serialize_field("fleet", fleet)?;
                st.serialize_field("instance", instance)?;
                st.end()
            }
        }
    }
}

fn instance_selector(cx: &mut Cx, n: &Node) -> D<InstanceSelector> {
    match &n.value {
        Value::Map(_) if n.get("fleet").is_some() => {
            let (ok, f) = fields!(cx, n, [], { fleet, instance });
            let fleet = decode::req(cx, n, "fleet", f.fleet, values::entity_reference);
            let instance = decode::req(cx, n, "instance", f.instance, |cx, n| {
                decode::integer_in(cx, n, Some(0), None)
            });
            ok?;
            Ok(InstanceSelector::Fleet {
                fleet: fleet?,
                instance: instance?,
            })
        }
        Value::Map(_) if n.get("hostname").is_some() => {
            let (ok, f) = fields!(cx, n, [], { hostname });
            let host = decode::req(cx, n, "hostname", f.hostname, decode::nonempty_string);
            ok?;
            Ok(InstanceSelector::Hostname(host?))
        }
        Value::Map(_) => {
            let (ok, f) = fields!(cx, n, [], { name });
            let name = decode::req(cx, n, "name", f.name, decode::nonempty_string);
            ok?;
            Ok(InstanceSelector::Name(name?))
        }
        _ => decode::nonempty_string(cx, n).map(InstanceSelector::Name),
    }
}

fn instances(cx: &mut Cx, n: &Node) -> D<Vec<InstanceSelector>> {
    let list = decode::list(cx, n, instance_selector)?;
    if list.is_empty() {
        return Err(cx.error(
            n,
            "List should have at least 1 item after validation, not 0",
        ));
    }
    Ok(list)
}

string_enum!(
    /// How vast.ai offers are ordered.
    VastAiOfferOrder {
        /// By vast.ai's score.
        Score = "score",
        /// By price.
        Price = "price",
    }
);

/// Backend-specific options (`backend_options`).
#[derive(Debug, Clone, PartialEq)]
pub enum BackendOptions {
    /// vast.ai.
    VastAi {
        /// Offer ordering.
        offer_order: Option<VastAiOfferOrder>,
        /// Minimal host reliability, 0..1.
        min_reliability: Option<f64>,
        /// Minimal host score.
        min_score: Option<i64>,
    },
}

impl Serialize for BackendOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let BackendOptions::VastAi {
            offer_order,
            min_reliability,
            min_score,
        } = self;
        let mut st = s.serialize_struct("VastAIProfileOptions", 4)?;
        st.serialize_field("type", "vastai")?;
        st.serialize_field("offer_order", offer_order)?;
        st.serialize_field("min_reliability", min_reliability)?;
        st.serialize_field("min_score", min_score)?;
        st.end()
    }
}

fn backend_option(cx: &mut Cx, n: &Node) -> D<BackendOptions> {
    let (ok, f) = fields!(cx, n, [], { r#type, offer_order, min_reliability, min_score });
    let kind = decode::req(cx, n, "type", f.r#type, |cx, n| {
        decode::one_of(cx, n, &[("vastai", ())])
    });
    let offer_order = decode::opt(cx, "offer_order", f.offer_order, VastAiOfferOrder::decode);
    let min_reliability = decode::opt(cx, "min_reliability", f.min_reliability, |cx, n| {
        let v = decode::float(cx, n)?;
        if !(0.0..=1.0).contains(&v) {
            return Err(cx.error(n, "Input should be between 0 and 1"));
        }
        Ok(v)
    });
    let min_score = decode::opt(cx, "min_score", f.min_score, |cx, n| {
        decode::integer_in(cx, n, Some(0), None)
    });
    ok?;
    kind?;
    Ok(BackendOptions::VastAi {
        offer_order: offer_order?,
        min_reliability: min_reliability?,
        min_score: min_score?,
    })
}

/// `backend_options`: at most one entry per backend.
pub fn backend_options(cx: &mut Cx, n: &Node) -> D<Vec<BackendOptions>> {
    let options = decode::list(cx, n, backend_option)?;
    if options.len() > 1 {
        return Err(cx.error(
            n,
            "backend_options contains duplicate entry for backend 'vastai'",
        ));
    }
    Ok(options)
}

/// `max_price`: a positive number of dollars per hour.
pub fn max_price(cx: &mut Cx, n: &Node) -> D<f64> {
    let v = decode::float(cx, n)?;
    if v <= 0.0 {
        return Err(cx.error(n, "Input should be greater than 0"));
    }
    Ok(v)
}

/// `fleets`: references to fleets the run may use.
pub fn fleet_refs(cx: &mut Cx, n: &Node) -> D<Vec<EntityReference>> {
    decode::list(cx, n, values::entity_reference)
}

/// The profile parameters of a run configuration, preset or profile. `None` = not set here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, schemars::JsonSchema)]
pub struct ProfileParams {
    /// Allowed backends.
    #[schemars(with = "Option<Vec<crate::config::schema::BackendInput>>")]
    pub backends: Option<Vec<BackendType>>,
    /// Allowed regions.
    pub regions: Option<Vec<String>>,
    /// Allowed availability zones.
    pub availability_zones: Option<Vec<String>>,
    /// Allowed instance types.
    pub instance_types: Option<Vec<String>>,
    /// A capacity reservation to use.
    pub reservation: Option<String>,
    /// Spot policy (default on-demand).
    pub spot_policy: Option<SpotPolicy>,
    /// Retry policy.
    #[schemars(with = "Option<crate::config::schema::RetryInput>")]
    pub retry: Option<Retry>,
    /// Maximal run time.
    #[schemars(with = "Option<crate::config::schema::OffableDuration>")]
    pub max_duration: Option<OffableDuration>,
    /// Time allowed for a graceful stop.
    #[schemars(with = "Option<crate::config::schema::OffableDuration>")]
    pub stop_duration: Option<OffableDuration>,
    /// Maximal price per hour.
    pub max_price: Option<f64>,
    /// Whether new instances may be created.
    pub creation_policy: Option<CreationPolicy>,
    /// How long idle instances are kept (-1 = forever).
    #[schemars(with = "Option<crate::config::schema::OffableDuration>")]
    pub idle_duration: Option<i64>,
    /// GPU utilisation policy.
    pub utilization_policy: Option<UtilizationPolicy>,
    /// Start order of multi-node jobs.
    pub startup_order: Option<StartupOrder>,
    /// When a multi-node run is done.
    pub stop_criteria: Option<StopCriteria>,
    /// Cron schedule.
    #[schemars(with = "Option<crate::config::schema::ScheduleInput>")]
    pub schedule: Option<Schedule>,
    /// Fleets to use.
    #[schemars(with = "Option<Vec<crate::config::schema::EntityRefInput>>")]
    pub fleets: Option<Vec<EntityReference>>,
    /// Instances to use.
    #[schemars(with = "Option<Vec<crate::config::schema::InstanceInput>>")]
    pub instances: Option<Vec<InstanceSelector>>,
    /// Resource tags.
    #[schemars(with = "Option<crate::config::schema::TagsInput>")]
    pub tags: Option<Tags>,
    /// Backend-specific options.
    #[schemars(with = "Option<Vec<crate::config::schema::BackendOptionsInput>>")]
    pub backend_options: Option<Vec<BackendOptions>>,
}

impl ProfileParams {
    /// Decodes the profile keys of a mapping; other keys are left to the caller.
    pub fn decode(cx: &mut Cx, n: &Node) -> D<ProfileParams> {
        let f = pick!(n, {
            backends, regions, availability_zones, instance_types, reservation, spot_policy, retry,
            max_duration, stop_duration, max_price, creation_policy, idle_duration,
            utilization_policy, startup_order, stop_criteria, schedule, fleets, instances, tags,
            backend_options,
        });
        let backends = decode::opt(cx, "backends", f.backends, backends);
        let regions = decode::opt(cx, "regions", f.regions, decode::string_list);
        let availability_zones = decode::opt(
            cx,
            "availability_zones",
            f.availability_zones,
            decode::string_list,
        );
        let instance_types =
            decode::opt(cx, "instance_types", f.instance_types, decode::string_list);
        let reservation = decode::opt(cx, "reservation", f.reservation, decode::string);
        let spot_policy = decode::opt(cx, "spot_policy", f.spot_policy, SpotPolicy::decode);
        let retry = decode::opt(cx, "retry", f.retry, retry);
        let max_duration =
            decode::opt(cx, "max_duration", f.max_duration, values::offable_duration);
        let stop_duration = decode::opt(
            cx,
            "stop_duration",
            f.stop_duration,
            values::offable_duration,
        );
        let max_price = decode::opt(cx, "max_price", f.max_price, max_price);
        let creation_policy = decode::opt(
            cx,
            "creation_policy",
            f.creation_policy,
            CreationPolicy::decode,
        );
        let idle_duration =
            decode::opt(cx, "idle_duration", f.idle_duration, values::idle_duration);
        let utilization_policy = decode::opt(
            cx,
            "utilization_policy",
            f.utilization_policy,
            utilization_policy,
        );
        let startup_order = decode::opt(cx, "startup_order", f.startup_order, StartupOrder::decode);
        let stop_criteria = decode::opt(cx, "stop_criteria", f.stop_criteria, StopCriteria::decode);
        let schedule = decode::opt(cx, "schedule", f.schedule, schedule);
        let fleets = decode::opt(cx, "fleets", f.fleets, fleet_refs);
        let instances = decode::opt(cx, "instances", f.instances, instances);
        let tags = decode::opt(cx, "tags", f.tags, values::tags);
        let backend_options =
            decode::opt(cx, "backend_options", f.backend_options, backend_options);
        Ok(ProfileParams {
            backends: backends?,
            regions: regions?,
            availability_zones: availability_zones?,
            instance_types: instance_types?,
            reservation: reservation?,
            spot_policy: spot_policy?,
            retry: retry?,
            max_duration: max_duration?.flatten(),
            stop_duration: stop_duration?.flatten(),
            max_price: max_price?,
            creation_policy: creation_policy?,
            idle_duration: idle_duration?.flatten(),
            utilization_policy: utilization_policy?,
            startup_order: startup_order?,
            stop_criteria: stop_criteria?,
            schedule: schedule?,
            fleets: fleets?,
            instances: instances?,
            tags: tags?,
            backend_options: backend_options?,
        })
    }

    /// The run spec's `merged_profile`: every parameter the configuration sets (not null) wins
    /// over the profile's (`profile` is the run spec's profile, if any).
    pub fn merged(&self, profile: Option<&ProfileParams>) -> ProfileParams {
        let Some(p) = profile else {
            return self.clone();
        };
        macro_rules! prefer_own {
            ($($field:ident),* $(,)?) => {
                ProfileParams { $($field: self.$field.clone().or_else(|| p.$field.clone()),)* }
            };
        }
        prefer_own!(
            backends,
            regions,
            availability_zones,
            instance_types,
            reservation,
            spot_policy,
            retry,
            max_duration,
            stop_duration,
            max_price,
            creation_policy,
            idle_duration,
            utilization_policy,
            startup_order,
            stop_criteria,
            schedule,
            fleets,
            instances,
            tags,
            backend_options,
        )
    }

    /// Decodes a standalone profile mapping (as in `profiles.yml`), rejecting unknown keys.
    /// `name` and `default` are accepted as a profile entry's own keys.
    pub fn decode_strict(cx: &mut Cx, n: &Node) -> D<ProfileParams> {
        let ok = decode::collect_fields(cx, n, PROFILE_KEYS, &["name", "default"], |k, _| {
            PROFILE_KEYS.contains(&k)
        });
        let params = ProfileParams::decode(cx, n);
        ok?;
        params
    }
}
