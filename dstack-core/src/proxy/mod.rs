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
//! loads the current table (an [`ArcSwap`](arc_swap::ArcSwap)) and never takes a lock.
//!
//! The proxy runs on its own threads, each with a single-threaded tokio runtime that accepts on
//! the shared listening socket and keeps its connections (no work stealing, no cross-thread
//! wake-ups on the request path). [`serve`] (or [`serve_listener`]) drives them until the
//! shutdown watch turns `true`.
//!
//! Clients are not trusted ([`ClientLimits`]): each connection has a deadline for its request
//! head and for the wait between requests, the request head is limited in size and number of
//! fields (431, or 414 for the request line), and one client address may hold only so many
//! connections at once (429). A replica address that is the server's own listener or its API
//! listener is never used, and a request that comes back to the proxy that forwarded it (the
//! `X-Dstack-Proxy-Hop` header carries this proxy's random id and the service) is answered with
//! 508 instead of being forwarded again.
//!
//! The code is split by what it owns: this module holds the public routing and configuration
//! types; `table` the indexed route table and counters ([`Routes`]); `listener` the proxy
//! threads and their accept loops ([`serve`], [`serve_listener`]); `conn` the client connection
//! (deadlines, request head limits, the per-address cap); `service` the Pingora `ProxyHttp`
//! implementation; `request` reading request bodies and headers; `replies` the responses the
//! proxy writes itself.

mod conn;
mod listener;
mod replies;
mod request;
mod service;
mod table;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

pub use listener::{serve, serve_listener};
pub use table::Routes;

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
    /// API tokens by their hex SHA-256 ([`crate::state::token_hash`]), as the database
    /// stores them: the table holds no usable token.
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
    /// What one client may do.
    pub client: ClientLimits,
}

/// Limits on clients of the proxy's port, against slow, idle and oversized requests and
/// connection floods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Time to receive a complete request head (request line and header fields): counted from
    /// the accepted connection for its first request, from the first byte of the request on a
    /// kept-alive connection. A client that sent part of a head gets 408; one that sent nothing
    /// is closed. `None`: no limit.
    pub header_timeout: Option<Duration>,
    /// Time a kept-alive connection may wait for its next request before it is closed.
    /// `None`: no limit.
    pub idle_timeout: Option<Duration>,
    /// Connections one client IP address may hold open at once; more are answered with 429 and
    /// closed. `None`: no limit. The default leaves room for a thousand concurrent API calls
    /// from one address (a team behind one NAT, a load test); behind a reverse proxy on the same
    /// host every client has the proxy's address, so turn it off there.
    pub max_connections_per_client: Option<usize>,
    /// Largest request head in bytes (request line and header fields together); larger ones
    /// get 431 (414 while still in the request line). At most [`MAX_HEADER_BYTES_LIMIT`].
    pub max_header_bytes: usize,
    /// Most header fields in one request; more get 431. At most [`MAX_HEADERS_LIMIT`].
    pub max_headers: usize,
}

/// Pingora's own limit on a request head (it answers 400 above it): the largest
/// [`ClientLimits::max_header_bytes`] that takes effect.
pub const MAX_HEADER_BYTES_LIMIT: usize = 1024 * 1024 - 1;

/// Pingora's own limit on header fields (it answers 400 above it): the largest
/// [`ClientLimits::max_headers`] that takes effect.
pub const MAX_HEADERS_LIMIT: usize = 256;

impl Default for ClientLimits {
    /// 10 s for a request head, 60 s idle, 1024 connections per address, 64 KiB and 100 fields.
    fn default() -> ClientLimits {
        ClientLimits {
            header_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections_per_client: Some(1024),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}
