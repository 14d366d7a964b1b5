//! Port mappings (`ports`, `-p`) and the service `port`.

use serde::Serialize;

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::{Node, Value};

/// A port forwarded from the local machine (or the service's public port) to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    /// The local port; `None` picks any free one.
    pub local_port: Option<u16>,
    /// The port in the container.
    pub container_port: u16,
}

fn port_number(cx: &mut Cx, n: &Node, v: i64) -> D<u16> {
    if v < 1 {
        return Err(cx.error(n, format!("Input should be greater than 0, got {v}")));
    }
    if v > 65535 {
        return Err(cx.error(
            n,
            format!("Input should be less than or equal to 65535, got {v}"),
        ));
    }
    Ok(v as u16)
}

fn port_text(cx: &mut Cx, n: &Node, text: &str) -> D<u16> {
    match decode::py_int(text) {
        Some(v) => port_number(cx, n, v),
        None => Err(cx.error(n, format!("invalid port `{text}`"))),
    }
}

/// A `ports` item: `8080`, `"80:8080"`, `"*:8080"` or `{local_port, container_port}`.
pub fn port_mapping(cx: &mut Cx, n: &Node) -> D<PortMapping> {
    match &n.value {
        Value::Int(v) => {
            let p = port_number(cx, n, *v)?;
            Ok(PortMapping {
                local_port: Some(p),
                container_port: p,
            })
        }
        Value::Str(s) => parse_port_mapping(cx, n, s),
        Value::Map(_) => port_mapping_object(cx, n),
        _ => Err(cx.error(
            n,
            format!(
                "expected a port like `8080` or `80:8080`, got {}",
                n.kind_name()
            ),
        )),
    }
}

/// The string form of a port mapping (also used by `dstack apply -p`).
pub fn parse_port_mapping(cx: &mut Cx, n: &Node, s: &str) -> D<PortMapping> {
    let bad = |cx: &mut Cx| {
        cx.error_help(
            n,
            format!("String should match pattern '^(?:(\\d+|\\*):)?(\\d+)?$', got `{s}`"),
            "write `8080`, `80:8080` (local:container) or `*:8080` (any local port)".into(),
        )
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (local, container) = match s.split_once(':') {
        Some((l, c)) => (Some(l), c),
        None => (None, s),
    };
    if !digits(container) || local.is_some_and(|l| l != "*" && !digits(l)) {
        return Err(bad(cx));
    }
    let container_port = port_text(cx, n, container)?;
    let local_port = match local {
        None => Some(container_port),
        Some("*") => None,
        Some(l) => Some(port_text(cx, n, l)?),
    };
    Ok(PortMapping {
        local_port,
        container_port,
    })
}

fn port_mapping_object(cx: &mut Cx, n: &Node) -> D<PortMapping> {
    let (ok, f) = fields!(cx, n, [], { local_port, container_port });
    let local = decode::opt(cx, "local_port", f.local_port, |cx, n| {
        let v = decode::integer(cx, n)?;
        port_number(cx, n, v)
    });
    let container = decode::req(cx, n, "container_port", f.container_port, |cx, n| {
        let v = decode::integer(cx, n)?;
        port_number(cx, n, v)
    });
    ok?;
    Ok(PortMapping {
        local_port: local?,
        container_port: container?,
    })
}

/// A service `port`: `8000` (public 80 → 8000), `"8080:8000"` or a mapping.
pub fn service_port(cx: &mut Cx, n: &Node) -> D<PortMapping> {
    match &n.value {
        Value::Int(v) => Ok(PortMapping {
            local_port: Some(80),
            container_port: port_number(cx, n, *v)?,
        }),
        Value::Str(s) => {
            if let Some((a, b)) = s.split_once(':') {
                let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
                if digits(a) && digits(b) {
                    return Ok(PortMapping {
                        local_port: Some(port_text(cx, n, a)?),
                        container_port: port_text(cx, n, b)?,
                    });
                }
                return Err(cx.error_help(
                    n,
                    format!("String should match pattern '^[0-9]+:[0-9]+$', got `{s}`"),
                    "a service port is `8000` or `PUBLIC:CONTAINER` such as `8080:8000`".into(),
                ));
            }
            Ok(PortMapping {
                local_port: Some(80),
                container_port: port_text(cx, n, s)?,
            })
        }
        Value::Map(_) => port_mapping_object(cx, n),
        _ => Err(cx.error(
            n,
            format!("expected a port like `8000`, got {}", n.kind_name()),
        )),
    }
}
