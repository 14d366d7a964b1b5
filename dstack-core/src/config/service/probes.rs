//! `probes`: HTTP readiness checks of replicas.

use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::Node;
use crate::config::profile::string_enum;
use crate::config::values;

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

pub(super) fn probe(cx: &mut Cx, n: &Node) -> D<ProbeConfig> {
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
