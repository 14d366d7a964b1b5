//! The dstack server: state, first-start set-up, and the HTTP API the original's CLI speaks.
//!
//! [`Server::bind`] prepares everything (database and migrations, the admin user, project
//! `main`, `config.yml`, the CLI's config) and binds the listener; [`Server::serve`] answers
//! requests until the shutdown future completes.

mod error;
mod files;
mod process;
mod routes;
mod runs;
mod secrets;
mod setup;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use error::ApiError;
pub use setup::{DEFAULT_UPLOAD_LIMIT, ServerError, ServerOptions, sqlite_url, update_cli_config};

use crate::backends::local::HostResources;
use crate::state::Db;

/// What handlers share.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) db: Db,
    pub(crate) dir: Arc<PathBuf>,
    pub(crate) host: Arc<HostResources>,
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
    pub(crate) runner_exe: Option<Arc<PathBuf>>,
    /// Users by token, so that authentication costs no query; cleared when users change.
    pub(crate) tokens:
        Arc<std::sync::RwLock<std::collections::HashMap<String, crate::state::user::Model>>>,
    /// Rendered `runs/list` answers by request, valid while the database generation is unchanged.
    pub(crate) list_cache: Arc<std::sync::Mutex<ListCache>>,
    /// The largest accepted file archive, bytes (0 = no limit).
    pub(crate) upload_limit: u64,
    /// The proxy's route table (services, replicas, tokens).
    pub(crate) routes: crate::proxy::Routes,
}

/// Cached `runs/list` bodies and the database generation they were rendered at.
#[derive(Debug, Default)]
pub(crate) struct ListCache {
    pub(crate) generation: u64,
    pub(crate) bodies: std::collections::HashMap<String, axum::body::Bytes>,
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

/// Proxy settings (timeouts and the body limit), with the original's defaults.
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
}

impl Default for ProxyOptions {
    fn default() -> ProxyOptions {
        ProxyOptions {
            connect_timeout: std::time::Duration::from_secs(60),
            read_timeout: std::time::Duration::from_secs(60),
            max_body_bytes: 64 * 1024 * 1024,
            threads: 0,
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
        let server = Server {
            state: AppState {
                db: prepared.db,
                dir: Arc::new(options.server_dir.clone()),
                host: Arc::new(HostResources::detect(&options.server_dir)),
                started_at: chrono::Utc::now(),
                wake: Arc::new(tokio::sync::Notify::new()),
                runner_exe: options.runner_exe.clone().map(Arc::new),
                tokens: Arc::default(),
                list_cache: Arc::default(),
                upload_limit: options.upload_limit,
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
        process::refresh_routes(&self.state).await;
        let processing = tokio::spawn(process::run_loop(self.state.clone()));
        let config = crate::proxy::ProxyConfig {
            listen: self.local_addr(),
            connect_timeout: self.proxy.connect_timeout,
            read_timeout: self.proxy.read_timeout,
            max_body_bytes: self.proxy.max_body_bytes,
            threads: match self.proxy.threads {
                0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                n => n,
            },
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
