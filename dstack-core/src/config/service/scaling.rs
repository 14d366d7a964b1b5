//! `replicas` ranges and `scaling`: how the number of replicas follows load.

use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::Node;
use crate::config::profile::string_enum;
use crate::config::resources;
use crate::config::values;
use crate::resources::Range;

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

pub(super) fn scaling(cx: &mut Cx, n: &Node) -> D<ScalingSpec> {
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

/// Service `replicas` (and a group's `replicas`): `2`, `"0..4"`, `"..4"` or `{min, max}`.
pub(super) fn replicas_range(cx: &mut Cx, n: &Node) -> D<Range<i64>> {
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
pub(super) fn check_scaling(
    cx: &mut Cx,
    node: &Node,
    replicas: &Range<i64>,
    scaling: bool,
) -> D<()> {
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
