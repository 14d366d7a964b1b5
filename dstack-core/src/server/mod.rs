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
}

/// Cached `runs/list` bodies and the database generation they were rendered at.
#[derive(Debug, Default)]
pub(crate) struct ListCache {
    pub(crate) generation: u64,
    pub(crate) bodies: std::collections::HashMap<String, axum::body::Bytes>,
}

/// A server ready to serve.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    listener: TcpListener,
    admin_token: String,
    first_start: bool,
}

impl Server {
    /// Opens the state, performs first-start set-up and binds the listener.
    pub async fn bind(options: ServerOptions) -> Result<Server, ServerError> {
        let prepared = setup::prepare(&options).await?;
        let addr = format!("{}:{}", options.host, options.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| ServerError::Io(format!("cannot listen on {addr}: {e}")))?;
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
            },
            listener,
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
        self.listener
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

    /// Serves requests until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let processing = tokio::spawn(process::run_loop(self.state.clone()));
        let app = routes::router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| ServerError::Io(format!("server failed: {e}")))?;
        processing.abort();
        Ok(())
    }
}
