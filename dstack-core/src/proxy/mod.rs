//! HTTP reverse proxy for dstack services, built on Pingora.
//!
//! The proxy has three kinds of traffic:
//!
//! * everything whose path does not start with `/proxy/` is forwarded unchanged to the
//!   internal API server;
//! * `/proxy/services/<project>/<run>/...` is forwarded to one of the service's ready
//!   replicas (round robin, with fail-over to the next replica when a connection cannot be
//!   established), optionally checking a dstack bearer token and stripping the path prefix;
//! * `/proxy/models/<project>/...` is an OpenAI-compatible model gateway: it lists the
//!   project's model services and routes chat/text completion requests to the service whose
//!   model name matches the `"model"` field of the JSON body.
//!
//! The route table is replaced atomically with [`Routes::replace`]; the request path only
//! loads the current table (an [`ArcSwap`]) and never takes a lock.
//!
//! The proxy runs on its own threads, each with a single-threaded tokio runtime that accepts on
//! the shared listening socket and keeps its connections (no work stealing, no cross-thread
//! wake-ups on the request path). [`serve`] (or [`serve_listener`]) drives them until the
//! shutdown watch turns `true`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION};
use http::{Method, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session, http_proxy_service};
use pingora::server::configuration::ServerConf;
use pingora::server::{Fds, ListenFds};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};
use serde_json::json;

/// Path prefix of all proxied service requests.
const SERVICES_PREFIX: &str = "services/";
/// API requests proxied at once (see `RoutesInner::api_permits`).
const API_CONCURRENCY: usize = 32;
/// Path prefix of the model gateway.
const MODELS_PREFIX: &str = "models/";
/// Capacity of Pingora's (HTTP/1) request retry buffer, which is also the largest chunk one
/// body read returns. See [`read_model_body`].
const RETRY_BUFFER_CAPACITY: usize = 64 * 1024;

/// A ready replica of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Address the replica accepts plain HTTP on.
    pub addr: SocketAddr,
}

/// Routing information of one dstack service (a run with a `service` configuration).
#[derive(Debug, Clone)]
pub struct ServiceRoute {
    /// Project name.
    pub project: String,
    /// Run name.
    pub run: String,
    /// Require a bearer token of a project member or a global admin.
    pub auth: bool,
    /// Strip `/proxy/services/<project>/<run>` from the path before forwarding.
    pub strip_prefix: bool,
    /// Ready replicas; a service without replicas is reported as not found.
    pub replicas: Vec<Replica>,
    /// Registration of the service in the project's model gateway.
    pub model: Option<ModelRoute>,
}

/// Registration of a service as an OpenAI-compatible model endpoint.
#[derive(Debug, Clone)]
pub struct ModelRoute {
    /// Model name clients pass in the `"model"` field.
    pub name: String,
    /// Path prefix of the OpenAI API on the replica, e.g. `/v1`.
    pub prefix: String,
    /// Creation time (Unix seconds) reported in the model list.
    pub created: i64,
}

/// What a dstack API token grants.
#[derive(Debug, Clone, Default)]
pub struct TokenInfo {
    /// The token's user is a global admin (access to all projects).
    pub global_admin: bool,
    /// Projects the token's user is a member of.
    pub projects: HashSet<String>,
}

/// Complete routing state, replaced as a whole with [`Routes::replace`].
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// All services.
    pub services: Vec<ServiceRoute>,
    /// API tokens by token string.
    pub tokens: HashMap<String, TokenInfo>,
}

/// Errors of [`serve`].
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listening socket could not be bound or configured.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address that was requested.
        addr: SocketAddr,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The Pingora service task failed (panicked).
    #[error("proxy service failed: {0}")]
    Service(String),
}

/// Configuration of the proxy listener and upstream connections.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Address to listen on (plain HTTP).
    pub listen: SocketAddr,
    /// Timeout for establishing a TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// Timeout for each read from an upstream (idle time between response chunks).
    pub read_timeout: Duration,
    /// Largest accepted request body for service and model requests.
    pub max_body_bytes: u64,
    /// Proxy threads, each with its own single-threaded runtime (at least 1).
    pub threads: usize,
}

/// Counters of one service that survive table replacements.
#[derive(Debug, Default)]
struct Counters {
    /// Requests that resolved to the service.
    requests: AtomicU64,
    /// Round-robin position.
    next_replica: AtomicUsize,
}

/// A service in the indexed table.
#[derive(Debug)]
struct ServiceEntry {
    route: ServiceRoute,
    counters: Arc<Counters>,
}

/// The indexed route table used on the request path.
#[derive(Debug, Default)]
struct Table {
    /// project -> run -> service.
    services: HashMap<String, HashMap<String, Arc<ServiceEntry>>>,
    /// project -> model name -> service (only services with replicas).
    models: HashMap<String, HashMap<String, Arc<ServiceEntry>>>,
    tokens: HashMap<String, TokenInfo>,
}

impl Table {
    fn service(&self, project: &str, run: &str) -> Option<&Arc<ServiceEntry>> {
        self.services.get(project)?.get(run)
    }

    fn authorized(&self, req: &RequestHeader, project: &str) -> bool {
        let Some(token) = bearer_token(req) else {
            return false;
        };
        self.tokens
            .get(token)
            .is_some_and(|t| t.global_admin || t.projects.contains(project))
    }
}

#[derive(Debug)]
struct RoutesInner {
    api: SocketAddr,
    /// API requests in flight through the proxy at once; the others wait for a permit, so a
    /// burst of large answers (`runs/list`) does not hold a body buffer per caller.
    api_permits: Arc<tokio::sync::Semaphore>,
    table: ArcSwap<Table>,
    counters: Mutex<HashMap<(String, String), Arc<Counters>>>,
}

/// Shared, atomically replaceable route table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Routes(Arc<RoutesInner>);

impl Routes {
    /// Creates an empty route table; non-`/proxy/` requests go to `api`.
    pub fn new(api: SocketAddr) -> Routes {
        Routes(Arc::new(RoutesInner {
            api,
            api_permits: Arc::new(tokio::sync::Semaphore::new(API_CONCURRENCY)),
            table: ArcSwap::from_pointee(Table::default()),
            counters: Mutex::new(HashMap::new()),
        }))
    }

    /// Replaces the whole route table atomically.
    ///
    /// Request counters and round-robin positions of services that stay in the table are kept;
    /// those of removed services are dropped.
    pub fn replace(&self, table: RouteTable) {
        let mut counters = self
            .0
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut kept = HashMap::with_capacity(table.services.len());
        let mut indexed = Table {
            tokens: table.tokens,
            ..Table::default()
        };
        for route in table.services {
            let key = (route.project.clone(), route.run.clone());
            let entry_counters = counters.remove(&key).unwrap_or_default();
            kept.insert(key, Arc::clone(&entry_counters));
            let entry = Arc::new(ServiceEntry {
                route,
                counters: entry_counters,
            });
            if let Some(model) = entry
                .route
                .model
                .as_ref()
                .filter(|_| !entry.route.replicas.is_empty())
            {
                indexed
                    .models
                    .entry(entry.route.project.clone())
                    .or_default()
                    .insert(model.name.clone(), Arc::clone(&entry));
            }
            indexed
                .services
                .entry(entry.route.project.clone())
                .or_default()
                .insert(entry.route.run.clone(), entry);
        }
        *counters = kept;
        self.0.table.store(Arc::new(indexed));
    }

    /// Number of requests addressed to service `project/run` (including ones rejected with
    /// 403 or 413) since it appeared in the table; a seam for autoscaling statistics. Returns 0
    /// for services not in the table.
    pub fn request_count(&self, project: &str, run: &str) -> u64 {
        let table = self.0.table.load();
        table
            .service(project, run)
            .map_or(0, |e| e.counters.requests.load(Ordering::Relaxed))
    }
}

/// Starts serving on `config.listen`; returns when `shutdown` turns `true` (or its sender is
/// dropped), after the listener has been closed.
///
/// To listen on an ephemeral port and learn it, bind a [`std::net::TcpListener`] yourself and
/// use [`serve_listener`].
pub async fn serve(
    config: ProxyConfig,
    routes: Routes,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ProxyError> {
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| ProxyError::Listen {
            addr: config.listen,
            source,
        })?;
    serve_listener(listener, config, routes, shutdown).await
}

/// Like [`serve`], but on an already bound listener (`config.listen` is ignored).
pub async fn serve_listener(
    listener: std::net::TcpListener,
    config: ProxyConfig,
    routes: Routes,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ProxyError> {
    let listen_err = |addr: SocketAddr| move |source| ProxyError::Listen { addr, source };
    let addr = listener.local_addr().map_err(listen_err(config.listen))?;
    listener.set_nonblocking(true).map_err(listen_err(addr))?;
    if *shutdown.borrow() {
        return Ok(());
    }

    let threads = config.threads.max(1);
    // Every worker accepts on its own handle of the same socket; the kernel hands each new
    // connection to one of them, and the connection stays on that worker's thread.
    let mut listeners = Vec::with_capacity(threads);
    for _ in 1..threads {
        listeners.push(listener.try_clone().map_err(listen_err(addr))?);
    }
    listeners.push(listener);
    let mut workers = Vec::with_capacity(threads);
    for (index, listener) in listeners.into_iter().enumerate() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let worker = Worker {
            listener,
            addr,
            app: DstackProxy {
                routes: routes.clone(),
                connect_timeout: config.connect_timeout,
                read_timeout: config.read_timeout,
                max_body_bytes: config.max_body_bytes,
            },
            shutdown: shutdown.clone(),
        };
        std::thread::Builder::new()
            .name(format!("dstack-proxy-{index}"))
            .spawn(move || {
                let _ = done_tx.send(worker.run());
            })
            .map_err(|e| ProxyError::Service(format!("cannot start a proxy thread: {e}")))?;
        workers.push(done_rx);
    }
    let mut result = Ok(());
    for done in workers {
        let outcome = done
            .await
            .unwrap_or_else(|_| Err(ProxyError::Service("a proxy thread panicked".into())));
        if result.is_ok() {
            result = outcome;
        }
    }
    result
}

/// One proxy thread: a single-threaded runtime running a Pingora service on one handle of the
/// listening socket.
struct Worker {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    app: DstackProxy,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Worker {
    /// Serves until the shutdown watch turns `true`.
    fn run(self) -> Result<(), ProxyError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProxyError::Service(format!("cannot start the proxy runtime: {e}")))?;
        // Hand the bound socket to Pingora through its listen-fd table (the mechanism used for
        // graceful upgrades): Pingora adopts an fd registered under the same address string.
        type FdsMutex = <ListenFds as std::ops::Deref>::Target;
        let addr_str = self.addr.to_string();
        let fds: ListenFds = Arc::new(FdsMutex::new(Fds::new()));
        fds.lock()
            .add(addr_str.clone(), self.listener.into_raw_fd());
        let server_conf = Arc::new(ServerConf::default());
        let mut service = http_proxy_service(&server_conf, self.app);
        service.add_tcp(&addr_str);
        let shutdown = self.shutdown;
        runtime.block_on(async move {
            pingora::services::Service::start_service(&mut service, Some(fds), shutdown, 1).await;
        });
        Ok(())
    }
}

/// What a request resolved to.
#[derive(Debug)]
struct Target {
    entry: Arc<ServiceEntry>,
    /// Path and query to send upstream, if different from the client's.
    upstream_path: Option<String>,
    /// Remove `Authorization` before forwarding.
    strip_auth: bool,
}

/// A response decided by the proxy itself, written by `fail_to_proxy`.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: serde_json::Value,
}

/// Per-request state.
#[derive(Debug, Default)]
struct Ctx {
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
}

struct DstackProxy {
    routes: Routes,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_body_bytes: u64,
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
        if entry.route.replicas.is_empty() {
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
        if entry.route.auth && !table.authorized(session.req_header(), project) {
            return respond_json(session, 403, &access_denied()).await;
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

    async fn logging(&self, _session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        if let Some(target) = &ctx.target {
            target
                .entry
                .counters
                .requests
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Why a model request body was not accepted.
enum BodyRejected {
    /// Larger than `max_body_bytes`.
    TooLarge,
    /// Could not be kept for forwarding (chunked and larger than Pingora's retry buffer).
    NotReplayable,
}

/// Reads the whole request body of a model request (at most `max` bytes).
///
/// Pingora forwards a request body only from what it reads itself, plus its retry buffer
/// (capacity 64 KiB, the same as its largest single body read) when the body was already
/// read. To be able to forward a body consumed here, the retry buffer is enabled as soon as at
/// most 64 KiB of a `Content-Length` body remain: the buffer then holds a non-empty,
/// untruncated tail, Pingora passes it to `request_body_filter` with `end_of_stream`, and that
/// filter substitutes the complete body. Chunked bodies have no known length, so they are
/// buffered from the start and therefore limited to 64 KiB.
async fn read_model_body(
    session: &mut Session,
    max: u64,
) -> pingora::Result<Result<Bytes, BodyRejected>> {
    let content_length =
        content_length(session.req_header()).map(|len| usize::try_from(len).unwrap_or(usize::MAX));
    if content_length.is_none() {
        session.as_downstream_mut().enable_retry_buffering();
    }
    let mut buf = BytesMut::new();
    while !session.is_body_done() {
        if content_length.is_some_and(|len| len.saturating_sub(buf.len()) <= RETRY_BUFFER_CAPACITY)
        {
            session.as_downstream_mut().enable_retry_buffering();
        }
        let Some(chunk) = session.read_request_body().await? else {
            break;
        };
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > max {
            return Ok(Err(BodyRejected::TooLarge));
        }
    }
    // Safety net: without a replayable tail Pingora would send no body at all.
    if !buf.is_empty() && session.get_retry_buffer().is_none() {
        return Ok(Err(BodyRejected::NotReplayable));
    }
    Ok(Ok(buf.freeze()))
}

/// The request's `Content-Length`, if present and a number.
fn content_length(req: &RequestHeader) -> Option<u64> {
    req.headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn bearer_token(req: &RequestHeader) -> Option<&str> {
    crate::auth::bearer_token(req.headers.get(AUTHORIZATION)?.to_str().ok()?)
}

fn model_list(table: &Table, project: &str) -> serde_json::Value {
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

fn access_denied() -> serde_json::Value {
    crate::auth::forbidden_body(crate::auth::ACCESS_DENIED)
}

fn too_large_body() -> serde_json::Value {
    json!({"detail": "Request body too large"})
}

fn openai_error(message: &str, param: Option<&str>, code: Option<&str>) -> serde_json::Value {
    json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }})
}

fn no_replica_reply(route: &ServiceRoute) -> Reply {
    Reply {
        status: 502,
        body: json!({"detail": format!(
            "No replica of {}/{} accepted the connection",
            route.project, route.run
        )}),
    }
}

/// Maps a Pingora error to the response written to the client (status 0: write nothing).
fn error_reply(e: &Error) -> Reply {
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
async fn respond_too_large(session: &mut Session) -> pingora::Result<bool> {
    session.set_keepalive(None);
    respond_json(session, 413, &too_large_body()).await
}

/// Writes a complete JSON response; returns `Ok(true)` (response written).
async fn respond_json(
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

async fn respond_redirect(session: &mut Session, location: &str) -> pingora::Result<bool> {
    let mut resp = ResponseHeader::build(308, Some(2))?;
    resp.insert_header(LOCATION, location)?;
    resp.insert_header(CONTENT_LENGTH, 0)?;
    session.write_response_header(Box::new(resp), true).await?;
    Ok(true)
}
