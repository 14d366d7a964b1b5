//! The listener: [`serve`] and [`serve_listener`] start one thread per worker, each with a
//! single-threaded tokio runtime running a Pingora service on its own handle of the shared
//! listening socket, and wait for all of them after shutdown.

use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::Arc;

use pingora::proxy::http_proxy_service;
use pingora::server::configuration::ServerConf;
use pingora::server::{Fds, ListenFds};

use super::service::DstackProxy;
use super::{ProxyConfig, ProxyError, Routes};

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
