//! Replica groups: their fields, the rules inside a group, and the rules between the
//! service level and its groups.

use serde::{Serialize, Serializer};

use super::ServiceConfiguration;
use super::scaling::{ScalingSpec, check_scaling, replicas_range, scaling};
use crate::config::decode::{self, Cx, D, Invalid, fields};
use crate::config::node::{Node, Value};
use crate::config::profile::{SpotPolicy, string_enum};
use crate::config::resources;
use crate::config::run::{self, PythonVersion, py_list};
use crate::resources::{Range, ResourcesSpec};

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

pub(super) fn replica_group(cx: &mut Cx, n: &Node, index: usize) -> D<ReplicaGroup> {
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
    // The image-source fields are checked as the original's field validators do: in field
    // order, each against the fields before it that validated, on the value as written
    // (`docker` only when it is literally `true`), every failing field reported.
    let image = decode::opt(cx, "image", f.image, decode::string);
    let image_set = matches!(&image, Ok(Some(i)) if !i.is_empty());
    let python = decode::opt(cx, "python", f.python, |cx, n| {
        if image_set {
            return Err(group_exclusive(cx, n, "`image` and `python`"));
        }
        run::python_version(cx, n)
    });
    let python_set = matches!(python, Ok(Some(_)));
    let nvcc = decode::opt(cx, "nvcc", f.nvcc, decode::boolean);
    let nvcc_set = matches!(nvcc, Ok(Some(true)));
    let docker = decode::opt(cx, "docker", f.docker, |cx, n| {
        if matches!(n.value, Value::Bool(true)) {
            for (other, set) in [
                ("image", image_set),
                ("python", python_set),
                ("nvcc", nvcc_set),
            ] {
                if set {
                    return Err(group_exclusive(cx, n, &format!("`{other}` and `docker`")));
                }
            }
        }
        decode::boolean(cx, n)
    });
    let docker_set = matches!(docker, Ok(Some(true)));
    let privileged = decode::opt(cx, "privileged", f.privileged, |cx, n| {
        if matches!(n.value, Value::Bool(false)) && docker_set {
            return Err(cx.error(
                n,
                "`privileged: false` is incompatible with `docker: true` within a replica group (docker-in-docker requires privileged mode)",
            ));
        }
        decode::boolean(cx, n)
    });
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
    check_scaling(cx, n, &group.replicas, group.scaling.is_some())?;
    Ok(group)
}

fn group_exclusive(cx: &mut Cx, n: &Node, pair: &str) -> Invalid {
    cx.error(
        n,
        format!("{pair} are mutually exclusive within a replica group"),
    )
}

impl ServiceConfiguration {
    pub(super) fn check_groups(
        &self,
        cx: &mut Cx,
        n: &Node,
        groups: &[ReplicaGroup],
        f_groups: Option<&Node>,
    ) -> D<()> {
        let gnode = f_groups.unwrap_or(n);
        let fail =
            |cx: &mut Cx, msg: String| -> Invalid { cx.at("groups", |cx| cx.error(gnode, msg)) };
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
        let c = &self.common;
        let with = |pred: &dyn Fn(&ReplicaGroup) -> bool| -> Vec<String> {
            groups
                .iter()
                .filter(|g| pred(g))
                .map(|g| g.name.clone())
                .collect()
        };
        // A group "sets" a field when it gives any value (`docker: false` included); the
        // service level sets `docker`, `privileged` and `nvcc` only with `true`.
        let both_levels: [(&str, bool, Vec<String>); 7] = [
            ("image", c.image.is_some(), with(&|g| g.image.is_some())),
            (
                "docker",
                c.docker == Some(true),
                with(&|g| g.docker.is_some()),
            ),
            (
                "privileged",
                c.privileged,
                with(&|g| g.privileged.is_some()),
            ),
            ("python", c.python.is_some(), with(&|g| g.python.is_some())),
            ("nvcc", c.nvcc == Some(true), with(&|g| g.nvcc.is_some())),
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
                        "`{field}` is set at both the service level and in replica group(s) {}. Set `{field}` in one place only — either at the service level (all groups inherit) or per group, but not both.",
                        py_list(&in_groups)
                    ),
                ));
            }
        }
        let image = with(&|g| g.image.is_some());
        let python = with(&|g| g.python.is_some());
        let nvcc = with(&|g| g.nvcc.is_some());
        let docker = with(&|g| g.docker.is_some());
        let conflicts: [(&str, bool, &str, &Vec<String>); 10] = [
            ("image", c.image.is_some(), "docker", &docker),
            ("image", c.image.is_some(), "python", &python),
            ("image", c.image.is_some(), "nvcc", &nvcc),
            ("docker", c.docker == Some(true), "image", &image),
            ("docker", c.docker == Some(true), "python", &python),
            ("docker", c.docker == Some(true), "nvcc", &nvcc),
            ("python", c.python.is_some(), "image", &image),
            ("python", c.python.is_some(), "docker", &docker),
            ("nvcc", c.nvcc == Some(true), "image", &image),
            ("nvcc", c.nvcc == Some(true), "docker", &docker),
        ];
        for (top, top_set, group_field, in_groups) in conflicts {
            if top_set && !in_groups.is_empty() {
                return Err(fail(
                    cx,
                    format!(
                        "Service-level `{top}` conflicts with group-level `{group_field}` in replica group(s) {}. These image-source fields are mutually exclusive.",
                        py_list(in_groups)
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
}
