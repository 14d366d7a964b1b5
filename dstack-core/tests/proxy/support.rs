//! The proxy harness: a proxy on an ephemeral port (stopped when dropped, also when a test
//! fails), a client that follows no redirects, route and token fixtures, and assertions shared
//! by several test modules.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dstack_core::proxy::{
    ClientLimits, ProxyConfig, ProxyError, Replica, Routes, ServiceRoute, TokenInfo, serve_listener,
};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) const MAX_BODY: u64 = 1024 * 1024;

/// The proxy's shutdown switch; turned on when dropped, so that the proxy threads end with the
/// test whatever its outcome.
pub(crate) struct Stop(watch::Sender<bool>);

impl Stop {
    pub(crate) fn send(&self, stop: bool) -> Result<(), watch::error::SendError<bool>> {
        self.0.send(stop)
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    pub(crate) routes: Routes,
    pub(crate) shutdown: Stop,
    pub(crate) task: JoinHandle<Result<(), ProxyError>>,
}

impl Proxy {
    pub(crate) async fn start(api: SocketAddr) -> Proxy {
        Proxy::start_with(api, ClientLimits::default()).await
    }

    /// A proxy with the given limits on clients.
    pub(crate) async fn start_with(api: SocketAddr, client: ClientLimits) -> Proxy {
        // The server's listen backlog, not std's 128: the tests open hundreds of connections.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let listener = socket.listen(1024).unwrap().into_std().unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Routes::new(api);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let config = ProxyConfig {
            listen: addr,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(2),
            max_body_bytes: MAX_BODY,
            threads: 2,
            client,
        };
        let task = tokio::spawn(serve_listener(
            listener,
            config,
            routes.clone(),
            shutdown_rx,
        ));
        Proxy {
            addr,
            routes,
            shutdown: Stop(shutdown),
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn service(
    project: &str,
    run: &str,
    auth: bool,
    strip: bool,
    replicas: &[SocketAddr],
) -> ServiceRoute {
    ServiceRoute {
        project: project.to_owned(),
        run: run.to_owned(),
        auth,
        strip_prefix: strip,
        replicas: replicas.iter().map(|&addr| Replica { addr }).collect(),
        model: None,
    }
}

/// The tokens the tests use, keyed by their hashes as the server's table is.
pub(crate) fn tokens() -> HashMap<String, TokenInfo> {
    HashMap::from([
        (
            dstack_core::state::token_hash("member-token"),
            TokenInfo {
                global_admin: false,
                projects: HashSet::from(["main".to_owned()]),
            },
        ),
        (
            dstack_core::state::token_hash("outsider-token"),
            TokenInfo {
                global_admin: false,
                projects: HashSet::from(["other".to_owned()]),
            },
        ),
        (
            dstack_core::state::token_hash("admin-token"),
            TokenInfo {
                global_admin: true,
                projects: HashSet::new(),
            },
        ),
    ])
}

pub(crate) fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"][name][0].as_str()
}

pub(crate) async fn assert_streams(resp: reqwest::Response, started: Instant) {
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let first = resp.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("event-0"));
    assert!(
        first_at < Duration::from_secs(1),
        "first chunk after {first_at:?}"
    );
    let mut all = first.to_vec();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        all.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    assert!(
        total >= Duration::from_millis(1500),
        "stream ended after {total:?}"
    );
    assert!(String::from_utf8_lossy(&all).contains("event-5"));
}

/// The request counter is bumped in Pingora's `logging` phase, which may run just after the
/// client received the response: poll briefly until it reaches `expected`.
pub(crate) async fn request_count(routes: &Routes, project: &str, run: &str, expected: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let count = routes.request_count(project, run);
        if count >= expected || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
