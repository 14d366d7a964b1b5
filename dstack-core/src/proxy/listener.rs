//! The listener: [`serve`] and [`serve_listener`] start one thread per worker, each with a
//! single-threaded tokio runtime accepting on its own handle of the shared listening socket,
//! and wait for all of them after shutdown. Each accepted connection is counted against its
//! client address, wrapped in a [`ClientStream`] (deadlines and request head limits, see
//! `conn`) and handed to Pingora's HTTP proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use tokio::io::AsyncReadExt;

use super::conn::{ClientStream, ClientTable, LINGER, Refusal, Slot};
use super::service::DstackProxy;
use super::{ClientLimits, ProxyConfig, ProxyError, Routes};

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
    // Replicas at this address would send the proxy its own requests.
    routes.add_own_listener(addr);

    let threads = config.threads.max(1);
    let clients = ClientTable::new(config.client.max_connections_per_client);
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
            limits: config.client,
            clients: Arc::clone(&clients),
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

/// Refused connections (over the per-address cap) answered at once per thread; beyond this
/// they are closed without an answer.
const MAX_REFUSING: usize = 64;

/// One proxy thread: a single-threaded runtime accepting on one handle of the listening socket
/// and handing each connection, wrapped in a [`ClientStream`], to Pingora's HTTP proxy.
struct Worker {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    app: DstackProxy,
    limits: ClientLimits,
    clients: Arc<ClientTable>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Worker {
    /// Serves until the shutdown watch turns `true`.
    fn run(self) -> Result<(), ProxyError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProxyError::Service(format!("cannot start the proxy runtime: {e}")))?;
        runtime.block_on(self.serve())
    }

    /// The accept loop. Pingora's own listening service is not used: it hands the accepted
    /// stream to the HTTP layer directly, and the limits on clients need the stream wrapped
    /// (and the client's address counted) first.
    async fn serve(self) -> Result<(), ProxyError> {
        let addr = self.addr;
        let listener = tokio::net::TcpListener::from_std(self.listener)
            .map_err(|source| ProxyError::Listen { addr, source })?;
        let app = Arc::new(http_proxy(&Arc::new(ServerConf::default()), self.app));
        let refusing = Arc::new(AtomicUsize::new(0));
        let mut shutdown = self.shutdown;
        loop {
            let accepted = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stopped| *stopped) => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "the proxy cannot accept a connection");
                    // Out of descriptors or memory: accept() would fail again at once.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(slot) = self.clients.admit(peer.ip()) else {
                refuse(tcp, peer, self.limits, &refusing);
                continue;
            };
            let stream = ClientStream::accept(tcp, peer, self.limits, slot);
            let app = Arc::clone(&app);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut next: Option<Stream> = Some(Box::new(stream));
                while let Some(stream) = next {
                    next = ServerApp::process_new(&app, stream, &shutdown).await;
                }
            });
        }
        drop(listener);
        // Wakes kept-alive connections waiting for a request so that they close.
        ServerApp::cleanup(&*app).await;
        Ok(())
    }
}

/// Answers a connection over the per-address cap with 429 and closes it.
fn refuse(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    limits: ClientLimits,
    refusing: &Arc<AtomicUsize>,
) {
    tracing::debug!(client = %peer.ip(), "too many connections from one address");
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let mut stream = ClientStream::accept(tcp, peer, limits, Slot::none());
    stream.refuse(Refusal::TOO_MANY_CONNECTIONS);
    let refusing = Arc::clone(refusing);
    tokio::spawn(async move {
        // Writes the answer, then reads until the client closes or the linger time is over.
        let mut byte = [0u8; 1];
        let _ = tokio::time::timeout(LINGER * 2, stream.read(&mut byte)).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}
