//! `rate_limits`: per-prefix request limits.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::Node;

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

pub(super) fn rate_limit(cx: &mut Cx, n: &Node) -> D<RateLimit> {
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
