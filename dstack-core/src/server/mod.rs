//! The dstack server: state, first-start set-up, and the HTTP API the original's CLI speaks.
//!
//! [`Server::bind`] prepares everything (database and migrations, the admin user, project
//! `main`, `config.yml`, the CLI's config) and binds the listener; [`Server::serve`] answers
//! requests until the shutdown future completes.

mod error;
mod events;
mod http;
mod log_store;
mod orchestrator;
mod route_table;
mod routes;
mod setup;
mod storage;
mod submit;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use error::ApiError;
pub use setup::{
    DEFAULT_UPLOAD_LIMIT, JobIsolation, ServerError, ServerOptions, sqlite_url, update_cli_config,
};

use crate::backends::Backend;
use crate::backends::local::LocalBackend;
use crate::state::Db;

/// What handlers and the orchestrator share.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) db: Db,
    pub(crate) dir: Arc<PathBuf>,
    /// Where jobs run.
    pub(crate) backend: Arc<dyn Backend>,
    /// The Python version jobs get when they name none.
    pub(crate) default_python: Arc<str>,
    pub(crate) logs: log_store::LogStore,
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
    /// Wakes the orchestrator after a write.
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// Users by token.
    pub(crate) tokens: Arc<http::TokenCache>,
    /// Rendered `runs/list` answers.
    pub(crate) list_cache: Arc<ListCache>,
    /// The largest accepted file archive, bytes (0 = no limit).
    pub(crate) upload_limit: u64,
    /// Every member may run jobs where they cannot be sandboxed.
    pub(crate) allow_unsandboxed: bool,
    /// The proxy's route table (services, replicas, tokens).
    pub(crate) routes: crate::proxy::Routes,
}

/// Rendered `runs/list` bodies by request, valid while the database generation they were read
/// at is current. Bodies are shared (`Bytes`), never copied per request; the cache holds at
/// most [`ListCache::MAX_ENTRIES`] bodies and [`ListCache::MAX_BYTES`] in all.
#[derive(Debug)]
pub(crate) struct ListCache {
    inner: std::sync::Mutex<CachedBodies>,
    /// Renders run one or two at a time: a burst of identical requests renders once (the others
    /// find the body in the cache), and memory does not grow with the number of callers.
    pub(crate) renders: tokio::sync::Semaphore,
}

impl Default for ListCache {
    fn default() -> ListCache {
        ListCache {
            inner: std::sync::Mutex::default(),
            renders: tokio::sync::Semaphore::new(2),
        }
    }
}

/// The bodies of one generation and their total size.
#[derive(Debug, Default)]
struct CachedBodies {
    generation: u64,
    bytes: usize,
    bodies: std::collections::HashMap<String, axum::body::Bytes>,
}

impl ListCache {
    const MAX_ENTRIES: usize = 256;
    const MAX_BYTES: usize = 16 * 1024 * 1024;

    pub(crate) fn get(&self, generation: u64, key: &str) -> Option<axum::body::Bytes> {
        let cache = self.inner.lock().ok()?;
        (cache.generation == generation)
            .then(|| cache.bodies.get(key).cloned())
            .flatten()
    }

    /// Stores a body rendered from reads that began at `generation`.
    pub(crate) fn put(&self, generation: u64, key: String, body: axum::body::Bytes) {
        if body.len() > Self::MAX_BYTES / 4 {
            return;
        }
        if let Ok(mut cache) = self.inner.lock() {
            if cache.generation != generation
                || cache.bodies.len() >= Self::MAX_ENTRIES
                || cache.bytes + body.len() > Self::MAX_BYTES
            {
                *cache = CachedBodies {
                    generation,
                    ..CachedBodies::default()
                };
            }
            cache.bytes += body.len();
            if let Some(old) = cache.bodies.insert(key, body) {
                cache.bytes -= old.len();
            }
        }
    }
}

/// A server ready to serve: the public listener (the proxy, which passes API requests on)
/// and the API's internal listener on 127.0.0.1.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    public: std::net::TcpListener,
    api: TcpListener,
    admin_token: String,
    first_start: bool,
    proxy: ProxyOptions,
}

/// Proxy settings (timeouts, the body limit, the limits on clients), with the original's
/// defaults.
#[derive(Debug, Clone, Copy)]
pub struct ProxyOptions {
    /// Connect timeout to replicas.
    pub connect_timeout: std::time::Duration,
    /// Read timeout between response chunks from replicas (`DSTACK_SERVICE_CLIENT_TIMEOUT`).
    pub read_timeout: std::time::Duration,
    /// Largest request body to services, bytes.
    pub max_body_bytes: u64,
    /// Proxy threads; 0 for one per available CPU.
    pub threads: usize,
    /// Head and idle timeouts, connections per client address, request head limits.
    pub client: crate::proxy::ClientLimits,
}

impl Default for ProxyOptions {
    fn default() -> ProxyOptions {
        ProxyOptions {
            connect_timeout: std::time::Duration::from_secs(60),
            read_timeout: std::time::Duration::from_secs(60),
            max_body_bytes: 64 * 1024 * 1024,
            threads: 0,
            client: crate::proxy::ClientLimits::default(),
        }
    }
}

impl Server {
    /// Opens the state, performs first-start set-up and binds the listener.
    pub async fn bind(options: ServerOptions) -> Result<Server, ServerError> {
        let prepared = setup::prepare(&options).await?;
        let addr = format!("{}:{}", options.host, options.port);
        let public = std::net::TcpListener::bind(&addr)
            .map_err(|e| ServerError::Io(format!("cannot listen on {addr}: {e}")))?;
        let api = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ServerError::Io(format!("cannot listen on 127.0.0.1: {e}")))?;
        let api_addr = api
            .local_addr()
            .map_err(|e| ServerError::Io(format!("cannot read the API address: {e}")))?;
        let dir = options.server_dir.clone();
        let runner = options.runner_exe.clone();
        let sandbox = !options.jobs.no_sandbox;
        let local = tokio::task::spawn_blocking(move || LocalBackend::new(&dir, runner, sandbox))
            .await
            .map_err(|e| ServerError::Io(format!("cannot read the host's resources: {e}")))?;
        let default_python: Arc<str> = local.default_python().unwrap_or("3.12").into();
        let server = Server {
            state: AppState {
                db: prepared.db,
                dir: Arc::new(options.server_dir.clone()),
                backend: Arc::new(local),
                default_python,
                logs: log_store::LogStore::new(&options.server_dir),
                started_at: chrono::Utc::now(),
                wake: Arc::new(tokio::sync::Notify::new()),
                tokens: Arc::default(),
                list_cache: Arc::default(),
                upload_limit: options.upload_limit,
                allow_unsandboxed: options.jobs.allow_unsandboxed,
                routes: crate::proxy::Routes::new(api_addr),
            },
            public,
            api,
            proxy: options.proxy,
            admin_token: prepared.admin_token,
            first_start: prepared.first_start,
        };
        if let Some(path) = &options.cli_config {
            let url = server.url_for(&options.host);
            setup::update_cli_config(path, "main", &url, &server.admin_token)?;
        }
        Ok(server)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The server's URL for clients, given the host it was asked to bind.
    pub fn url_for(&self, host: &str) -> String {
        let host = match host {
            "0.0.0.0" | "::" => "127.0.0.1",
            h => h,
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        format!("http://{host}:{}", self.local_addr().port())
    }

    /// Why jobs run unsandboxed on this host, if they do.
    pub fn sandbox_problem(&self) -> Option<String> {
        self.state.backend.isolation_problem()
    }

    /// The admin's token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Whether this start created the admin user.
    pub fn first_start(&self) -> bool {
        self.first_start
    }

    /// The state (for embedding and tests).
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// Serves requests until `shutdown` completes: the proxy on the public listener, the API
    /// behind it, and the background processing. In-flight requests finish first.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        route_table::refresh(&self.state).await;
        let processing = tokio::spawn(orchestrator::run(self.state.clone()));
        let config = crate::proxy::ProxyConfig {
            listen: self.local_addr(),
            connect_timeout: self.proxy.connect_timeout,
            read_timeout: self.proxy.read_timeout,
            max_body_bytes: self.proxy.max_body_bytes,
            threads: match self.proxy.threads {
                0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                n => n,
            },
            client: self.proxy.client,
        };
        let proxy = tokio::spawn(crate::proxy::serve_listener(
            self.public,
            config,
            self.state.routes.clone(),
            stop_rx.clone(),
        ));
        let app = routes::router(self.state);
        let mut api_stop = stop_rx;
        let api = axum::serve(self.api, app).with_graceful_shutdown(async move {
            let _ = api_stop.wait_for(|stopped| *stopped).await;
        });
        let api = tokio::spawn(async move { api.await });
        shutdown.await;
        let _ = stop_tx.send(true);
        processing.abort();
        let proxy_result = proxy.await;
        let _ = api.await;
        match proxy_result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Io(format!("proxy failed: {e}"))),
            Err(e) => Err(ServerError::Io(format!("proxy task failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ListCache;

    #[test]
    fn a_body_read_before_a_write_is_never_served_after_it() {
        let cache = ListCache::default();
        // A render began at generation 1; a write committed meanwhile (generation 2).
        cache.put(1, "k".into(), axum::body::Bytes::from_static(b"old"));
        assert_eq!(cache.get(2, "k"), None);
        cache.put(2, "k".into(), axum::body::Bytes::from_static(b"new"));
        assert_eq!(cache.get(2, "k").as_deref(), Some(&b"new"[..]));
        // A late render from before the write does not replace the newer body.
        cache.put(1, "k".into(), axum::body::Bytes::from_static(b"old"));
        assert_eq!(cache.get(2, "k"), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ListCache::default();
        for i in 0..10_000 {
            cache.put(7, format!("k{i}"), axum::body::Bytes::from_static(b"x"));
        }
        let held = cache
            .inner
            .lock()
            .map(|c| c.bodies.len())
            .unwrap_or(usize::MAX);
        assert!(held <= ListCache::MAX_ENTRIES, "{held}");
        let big = axum::body::Bytes::from(vec![b'x'; 1024 * 1024]);
        for i in 0..100 {
            cache.put(8, format!("b{i}"), big.clone());
        }
        let bytes = cache.inner.lock().map(|c| c.bytes).unwrap_or(usize::MAX);
        assert!(bytes <= ListCache::MAX_BYTES, "{bytes}");
    }
}
