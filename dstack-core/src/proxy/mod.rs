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
//! The code is split by what it owns: this module holds the public routing and configuration
//! types; `table` the indexed route table and counters ([`Routes`]); `listener` the proxy
//! threads ([`serve`], [`serve_listener`]); `service` the Pingora `ProxyHttp` implementation;
//! `request` reading request bodies and headers; `replies` the responses the proxy writes
//! itself.

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
}
