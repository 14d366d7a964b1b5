//! The Pingora [`ProxyHttp`] implementation: resolving a request to the API server, a service
//! replica or a model, choosing and failing over between replicas, limiting request bodies,
//! rewriting the upstream request, detecting loops and answering errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use http::header::{AUTHORIZATION, HOST};
use pingora::http::RequestHeader;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use serde_json::json;

use super::Routes;
use super::conn::ClientStream;
use super::replies::{
    Reply, access_denied, error_reply, loop_detected, model_list, no_replica_reply, openai_error,
    own_address_replica, respond_json, respond_redirect, respond_too_large, too_large_body,
};
use super::request::{BodyRejected, content_length, read_model_body};
use super::table::{ServiceEntry, Table};

/// Path prefix of all proxied service requests.
const SERVICES_PREFIX: &str = "services/";
/// Path prefix of the model gateway.
const MODELS_PREFIX: &str = "models/";
/// Added to every request forwarded to a replica: `<proxy id>/<project>/<run>` (one value per
/// hop). A request for a service that already carries this proxy's value for that service has
/// come back through a replica and is answered 508 instead of being forwarded again.
const HOP_HEADER: &str = "X-Dstack-Proxy-Hop";

/// What a request resolved to.
#[derive(Debug)]
struct Target {
    entry: Arc<ServiceEntry>,
    /// Path and query to send upstream, if different from the client's.
    upstream_path: Option<String>,
    /// Remove `Authorization` before forwarding.
    strip_auth: bool,
}

/// Per-request state.
#[derive(Debug, Default)]
pub(super) struct Ctx {
    target: Option<Target>,
    /// Round-robin start position, taken once per request.
    rr_start: Option<usize>,
    /// Connection attempts made so far.
    attempts: usize,
    /// Request body bytes seen so far (streamed bodies).
    body_seen: u64,
    /// Whether streamed body bytes are limited by `max_body_bytes`.
    limit_body: bool,
    /// The already consumed body of a model request, re-sent upstream.
    model_body: Option<Bytes>,
    /// Response to write in `fail_to_proxy`.
    reply: Option<Reply>,
    /// Held while an API request is in flight.
    _api_permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Whether the upstream's response head has arrived.
    answered: bool,
}

pub(super) struct DstackProxy {
    pub(super) routes: Routes,
    pub(super) connect_timeout: Duration,
    pub(super) read_timeout: Duration,
    pub(super) max_body_bytes: u64,
}

impl DstackProxy {
    fn peer(&self, addr: SocketAddr) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        Box::new(peer)
    }

    /// Handles `/proxy/services/...`; returns `true` when a response was written.
    async fn service_request(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        table: &Table,
        rest: &str,
    ) -> pingora::Result<bool> {
        let mut parts = rest.splitn(3, '/');
        let project = parts.next().unwrap_or_default();
        let run = parts.next().unwrap_or_default();
        let tail = parts.next();
        if project.is_empty() || run.is_empty() {
            return respond_json(session, 404, &json!({"detail": "Not Found"})).await;
        }
        let Some(tail) = tail else {
            let uri = &session.req_header().uri;
            let location = match uri.query() {
                Some(q) => format!("{}/?{q}", uri.path()),
                None => format!("{}/", uri.path()),
            };
            return respond_redirect(session, &location).await;
        };
        let not_found = || json!({"detail": format!("Service {project}/{run} not found")});
        let Some(entry) = table.service(project, run) else {
            return respond_json(session, 404, &not_found()).await;
        };
        if entry.route.replicas.is_empty() && !entry.refused_replicas {
            return respond_json(session, 404, &not_found()).await;
        }
        let upstream_path =
            entry
                .route
                .strip_prefix
                .then(|| match session.req_header().uri.query() {
                    Some(q) => format!("/{tail}?{q}"),
                    None => format!("/{tail}"),
                });
        ctx.target = Some(Target {
            entry: Arc::clone(entry),
            upstream_path,
            strip_auth: entry.route.auth,
        });
        if self.came_back(session, project, run) {
            session.set_keepalive(None);
            return respond_json(session, 508, &loop_detected(project, run)).await;
        }
        if entry.route.auth && !table.authorized(session.req_header(), project) {
            return respond_json(session, 403, &access_denied()).await;
        }
        if entry.route.replicas.is_empty() {
            return respond_json(session, 502, &own_address_replica(project, run)).await;
        }
        if self.content_length_too_large(session) {
            return respond_too_large(session).await;
        }
        ctx.limit_body = true;
        Ok(false)
    }

    /// Handles `/proxy/models/...`; returns `true` when a response was written.
    async fn model_request(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        table: &Table,
        rest: &str,
    ) -> pingora::Result<bool> {
        let (project, endpoint) = rest.split_once('/').unwrap_or((rest, ""));
        if project.is_empty() {
            return respond_json(session, 404, &json!({"detail": "Not Found"})).await;
        }
        if !table.authorized(session.req_header(), project) {
            return respond_json(session, 403, &access_denied()).await;
        }
        let endpoint = endpoint.strip_prefix("v1/").unwrap_or(endpoint);
        let method = session.req_header().method.clone();
        let upstream_suffix = match endpoint {
            "models" if method == Method::GET => {
                return respond_json(session, 200, &model_list(table, project)).await;
            }
            "chat/completions" | "completions" if method == Method::POST => endpoint,
            "models" | "chat/completions" | "completions" => {
                return respond_json(session, 405, &json!({"detail": "Method Not Allowed"})).await;
            }
            _ => return respond_json(session, 404, &json!({"detail": "Not Found"})).await,
        };
        if self.content_length_too_large(session) {
            return respond_too_large(session).await;
        }
        let body = match read_model_body(session, self.max_body_bytes).await? {
            Ok(body) => body,
            Err(BodyRejected::TooLarge) => return respond_too_large(session).await,
            Err(BodyRejected::NotReplayable) => {
                session.set_keepalive(None);
                let msg = "Request body could not be buffered for forwarding; \
                           send Content-Length (chunked bodies are limited to 64 KiB)";
                return respond_json(session, 413, &openai_error(msg, None, None)).await;
            }
        };
        let model = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("model")?.as_str().map(str::to_owned));
        let Some(model) = model else {
            let err = openai_error(
                "Request body must be a JSON object with a string \"model\"",
                Some("model"),
                None,
            );
            return respond_json(session, 400, &err).await;
        };
        let Some(entry) = table.models.get(project).and_then(|m| m.get(&model)) else {
            let err = openai_error(
                &format!("Model {model} not found"),
                Some("model"),
                Some("model_not_found"),
            );
            return respond_json(session, 404, &err).await;
        };
        let run = entry.route.run.as_str();
        if self.came_back(session, project, run) {
            session.set_keepalive(None);
            return respond_json(session, 508, &loop_detected(project, run)).await;
        }
        if entry.route.replicas.is_empty() {
            return respond_json(session, 502, &own_address_replica(project, run)).await;
        }
        let prefix = entry
            .route
            .model
            .as_ref()
            .map_or("", |m| m.prefix.trim_end_matches('/'));
        let mut upstream_path = format!("{prefix}/{upstream_suffix}");
        if !upstream_path.starts_with('/') {
            upstream_path.insert(0, '/');
        }
        if let Some(q) = session.req_header().uri.query() {
            upstream_path.push('?');
            upstream_path.push_str(q);
        }
        ctx.target = Some(Target {
            entry: Arc::clone(entry),
            upstream_path: Some(upstream_path),
            strip_auth: true,
        });
        ctx.model_body = Some(body);
        Ok(false)
    }

    fn content_length_too_large(&self, session: &Session) -> bool {
        content_length(session.req_header()).is_some_and(|len| len > self.max_body_bytes)
    }

    /// Whether the request already went through this proxy to service `project/run`.
    fn came_back(&self, session: &Session, project: &str, run: &str) -> bool {
        let hop_id = self.routes.0.hop_id.as_str();
        session
            .req_header()
            .headers
            .get_all(HOP_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().split_once('/'))
            .any(|(id, service)| id == hop_id && service.split_once('/') == Some((project, run)))
    }
}

/// The end of a request on a client connection: the connection waits for the next request
/// under the idle timeout. One whose request body was not read to the end is not reused
/// (Pingora already closes it when the response went out before the body was read): the
/// rest of the body must not be taken for the next request head.
fn end_of_request(session: &mut Session) {
    if session.get_keepalive().is_some() && !session.is_body_done() {
        session.set_keepalive(None);
    }
    if let Some(client) = ClientStream::of(session) {
        client.request_done();
    }
}

#[async_trait]
impl ProxyHttp for DstackProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> pingora::Result<bool> {
        let path = session.req_header().uri.path().to_owned();
        let Some(rest) = path.strip_prefix("/proxy/") else {
            ctx._api_permit = self.routes.0.api_permits.clone().acquire_owned().await.ok();
            return Ok(false);
        };
        let table = self.routes.0.table.load_full();
        if let Some(rest) = rest.strip_prefix(SERVICES_PREFIX) {
            self.service_request(session, ctx, &table, rest).await
        } else if let Some(rest) = rest.strip_prefix(MODELS_PREFIX) {
            self.model_request(session, ctx, &table, rest).await
        } else {
            respond_json(session, 404, &json!({"detail": "Not Found"})).await
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Ctx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let Some(target) = &ctx.target else {
            return Ok(self.peer(self.routes.0.api));
        };
        let route = &target.entry.route;
        let n = route.replicas.len();
        if ctx.attempts >= n {
            ctx.reply = Some(no_replica_reply(route));
            return Err(Error::explain(
                ErrorType::HTTPStatus(502),
                "no replica accepted the connection",
            ));
        }
        let start = *ctx.rr_start.get_or_insert_with(|| {
            target
                .entry
                .counters
                .next_replica
                .fetch_add(1, Ordering::Relaxed)
        });
        let addr = route.replicas[(start.wrapping_add(ctx.attempts)) % n].addr;
        ctx.attempts += 1;
        Ok(self.peer(addr))
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut pingora::http::ResponseHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        ctx.answered = true;
        Ok(())
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let replayable = !session.as_ref().retry_buffer_truncated();
        // A kept-alive connection to the API can be closed by the API as a request is sent on
        // it (seen as a rare 502 on a POST under load); the request then fails before any
        // answer. A request to the API (ours, so a retry cannot surprise a third party) that
        // fails on a reused connection before any answer is sent again on a new connection,
        // whatever its method. Replicas keep Pingora's rule (idempotent requests only).
        if ctx.target.is_none() && client_reused && replayable && !ctx.answered {
            e.set_retry(true);
        } else if !session.req_header().method.is_idempotent() || !replayable {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        match &ctx.target {
            Some(target) if ctx.attempts < target.entry.route.replicas.len() => {
                e.set_retry(true);
            }
            Some(target) => {
                ctx.reply = Some(no_replica_reply(&target.entry.route));
                e.set_retry(false);
            }
            None => e.set_retry(false),
        }
        e
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        if let Some(stored) = &ctx.model_body {
            // The body was consumed in `request_filter`; what Pingora replays here is only the
            // tail kept in its retry buffer, so substitute the whole body once.
            *body = end_of_stream.then(|| stored.clone());
            return Ok(());
        }
        let counted = body
            .as_ref()
            .filter(|_| ctx.limit_body && !session.was_upgraded());
        if let Some(chunk) = counted {
            ctx.body_seen = ctx.body_seen.saturating_add(chunk.len() as u64);
            if ctx.body_seen > self.max_body_bytes {
                ctx.reply = Some(Reply {
                    status: 413,
                    body: too_large_body(),
                });
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "request body too large",
                ));
            }
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        let Some(target) = &ctx.target else {
            return Ok(());
        };
        if let Some(path) = &target.upstream_path {
            let uri = path.parse::<http::Uri>().map_err(|e| {
                Error::because(ErrorType::InvalidHTTPHeader, "invalid upstream path", e)
            })?;
            upstream_request.set_uri(uri);
        }
        if target.strip_auth {
            upstream_request.remove_header(&AUTHORIZATION);
        }
        let route = &target.entry.route;
        let hop = format!("{}/{}/{}", self.routes.0.hop_id, route.project, route.run);
        upstream_request.append_header(HOP_HEADER, hop)?;
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        if let Some(ip) = client_ip {
            let forwarded_for = match upstream_request
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                Some(existing) => format!("{existing}, {ip}"),
                None => ip.clone(),
            };
            upstream_request.insert_header("X-Forwarded-For", forwarded_for)?;
            upstream_request.insert_header("X-Real-IP", ip)?;
        }
        upstream_request.insert_header("X-Forwarded-Proto", "http")?;
        if let Some(host) = session.req_header().headers.get(HOST).cloned() {
            upstream_request.insert_header("X-Forwarded-Host", host)?;
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let reply = ctx.reply.take().unwrap_or_else(|| error_reply(e));
        if reply.status > 0 && session.response_written().is_none() {
            session.set_keepalive(None);
            // The client may be gone; there is nothing more to do if writing fails.
            let _ = respond_json(session, reply.status, &reply.body).await;
        }
        FailToProxy {
            error_code: reply.status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        if let Some(target) = &ctx.target {
            target
                .entry
                .counters
                .requests
                .fetch_add(1, Ordering::Relaxed);
        }
        end_of_request(session);
    }
}
