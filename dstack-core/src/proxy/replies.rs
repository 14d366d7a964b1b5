//! Responses the proxy writes itself: JSON error bodies (dstack's `{"detail": ...}` and
//! OpenAI's `{"error": ...}`), the model list, redirects, and the mapping of Pingora errors to
//! statuses.

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};
use serde_json::json;

use super::table::Table;
use super::{ModelRoute, ServiceRoute};

/// A response decided by the proxy itself, written by `fail_to_proxy`.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: serde_json::Value,
}

pub(super) fn model_list(table: &Table, project: &str) -> serde_json::Value {
    let mut models: Vec<&ModelRoute> = table
        .models
        .get(project)
        .map(|m| m.values().filter_map(|e| e.route.model.as_ref()).collect())
        .unwrap_or_default();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    let data: Vec<serde_json::Value> = models
        .into_iter()
        .map(
            |m| json!({"id": m.name, "object": "model", "created": m.created, "owned_by": project}),
        )
        .collect();
    json!({"object": "list", "data": data})
}

pub(super) fn access_denied() -> serde_json::Value {
    crate::auth::forbidden_body(crate::auth::ACCESS_DENIED)
}

pub(super) fn too_large_body() -> serde_json::Value {
    json!({"detail": "Request body too large"})
}

pub(super) fn openai_error(
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> serde_json::Value {
    json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }})
}

pub(super) fn no_replica_reply(route: &ServiceRoute) -> Reply {
    Reply {
        status: 502,
        body: json!({"detail": format!(
            "No replica of {}/{} accepted the connection",
            route.project, route.run
        )}),
    }
}

/// A service whose only replicas are at the server's own addresses.
pub(super) fn own_address_replica(project: &str, run: &str) -> serde_json::Value {
    json!({"detail": format!(
        "Service {project}/{run} has no usable replica: its address is the dstack server's own"
    )})
}

/// A request that came back to the proxy that forwarded it.
pub(super) fn loop_detected(project: &str, run: &str) -> serde_json::Value {
    json!({"detail": format!(
        "Loop detected: the request for service {project}/{run} came back to the proxy"
    )})
}

/// Maps a Pingora error to the response written to the client (status 0: write nothing).
pub(super) fn error_reply(e: &Error) -> Reply {
    let (status, detail) = match e.etype() {
        ErrorType::HTTPStatus(code) => (
            *code,
            StatusCode::from_u16(*code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error")
                .to_owned(),
        ),
        ErrorType::ReadTimedout if matches!(e.esource(), ErrorSource::Upstream) => {
            (504, "Upstream did not respond in time".to_owned())
        }
        _ => match e.esource() {
            ErrorSource::Upstream => (502, "Bad gateway".to_owned()),
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => {
                    (0, String::new())
                }
                _ => (400, "Bad request".to_owned()),
            },
            ErrorSource::Internal | ErrorSource::Unset => (500, "Internal proxy error".to_owned()),
        },
    };
    Reply {
        status,
        body: json!({ "detail": detail }),
    }
}

/// Rejects a too large request body and closes the connection (the body is not drained).
pub(super) async fn respond_too_large(session: &mut Session) -> pingora::Result<bool> {
    session.set_keepalive(None);
    respond_json(session, 413, &too_large_body()).await
}

/// Writes a complete JSON response; returns `Ok(true)` (response written).
pub(super) async fn respond_json(
    session: &mut Session,
    status: u16,
    body: &serde_json::Value,
) -> pingora::Result<bool> {
    let body = Bytes::from(body.to_string());
    let mut resp = ResponseHeader::build(status, Some(2))?;
    resp.insert_header(CONTENT_TYPE, "application/json")?;
    resp.insert_header(CONTENT_LENGTH, body.len())?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(true)
}

pub(super) async fn respond_redirect(
    session: &mut Session,
    location: &str,
) -> pingora::Result<bool> {
    let mut resp = ResponseHeader::build(308, Some(2))?;
    resp.insert_header(LOCATION, location)?;
    resp.insert_header(CONTENT_LENGTH, 0)?;
    session.write_response_header(Box::new(resp), true).await?;
    Ok(true)
}
