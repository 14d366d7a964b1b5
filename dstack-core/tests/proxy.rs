#![cfg(feature = "server")]
//! End-to-end tests of the dstack proxy against real upstream servers on 127.0.0.1.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dstack_core::proxy::{
    ModelRoute, ProxyConfig, ProxyError, Replica, RouteTable, Routes, ServiceRoute, TokenInfo,
    serve_listener,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// Upstream servers
// ---------------------------------------------------------------------------------------------

/// A parsed HTTP/1.1 request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (Content-Length or chunked body) from `stream`; `None` on EOF.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().ok()?;
        while buf.len() < len {
            let mut chunk = vec![0u8; 65536];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        req.body = buf.drain(..len).collect();
    } else if req
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let line_end = loop {
                if let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") {
                    break pos;
                }
                let mut chunk = [0u8; 8192];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let size_line = String::from_utf8_lossy(&buf[..line_end]).to_string();
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                let mut chunk = [0u8; 8192];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            req.body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                break;
            }
        }
    }
    Some(req)
}

async fn spawn_server<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handler(stream));
        }
    });
    addr
}

/// Echoes method, path, query, headers and body as JSON; `name` identifies the server.
async fn echo_server(name: &'static str) -> SocketAddr {
    spawn_server(move |mut stream| async move {
        let mut buf = Vec::new();
        while let Some(req) = read_request(&mut stream, &mut buf).await {
            let (path, query) = match req.target.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (req.target.clone(), None),
            };
            let mut headers: HashMap<String, Vec<String>> = HashMap::new();
            for (n, v) in &req.headers {
                headers.entry(n.clone()).or_default().push(v.clone());
            }
            let body = json!({
                "server": name,
                "method": req.method,
                "path": path,
                "query": query,
                "headers": headers,
                "body": String::from_utf8_lossy(&req.body),
            })
            .to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// Streams 6 SSE events 300 ms apart (chunked), after reading the request.
async fn sse_server() -> SocketAddr {
    spawn_server(|mut stream| async move {
        let mut buf = Vec::new();
        while read_request(&mut stream, &mut buf).await.is_some() {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                        Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for i in 0..6 {
                let event = format!("data: event-{i}\n\n");
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            if stream.write_all(b"0\r\n\r\n").await.is_err() {
                return;
            }
        }
    })
    .await
}

/// Answers an upgrade request with 101 and then echoes bytes.
async fn upgrade_server() -> SocketAddr {
    spawn_server(|mut stream| async move {
        let mut buf = Vec::new();
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        assert_eq!(req.header("upgrade"), Some("websocket"));
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                    Connection: Upgrade\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if !buf.is_empty() && stream.write_all(&buf).await.is_err() {
            return;
        }
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await
}

/// Accepts connections, reads the request and never answers.
async fn silent_server() -> SocketAddr {
    spawn_server(|mut stream| async move {
        let mut buf = Vec::new();
        let _ = read_request(&mut stream, &mut buf).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await
}

/// An address nobody listens on.
fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Proxy harness
// ---------------------------------------------------------------------------------------------

const MAX_BODY: u64 = 1024 * 1024;

struct Proxy {
    addr: SocketAddr,
    routes: Routes,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), ProxyError>>,
}

impl Proxy {
    async fn start(api: SocketAddr) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Routes::new(api);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let config = ProxyConfig {
            listen: addr,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(2),
            max_body_bytes: MAX_BODY,
            threads: 2,
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
            shutdown,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn service(
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

fn tokens() -> HashMap<String, TokenInfo> {
    HashMap::from([
        (
            "member-token".to_owned(),
            TokenInfo {
                global_admin: false,
                projects: HashSet::from(["main".to_owned()]),
            },
        ),
        (
            "outsider-token".to_owned(),
            TokenInfo {
                global_admin: false,
                projects: HashSet::from(["other".to_owned()]),
            },
        ),
        (
            "admin-token".to_owned(),
            TokenInfo {
                global_admin: true,
                projects: HashSet::new(),
            },
        ),
    ])
}

fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"][name][0].as_str()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_pass_through_unchanged() {
    let api = echo_server("api").await;
    let proxy = Proxy::start(api).await;
    let resp = client()
        .post(proxy.url("/api/project/list?x=1&y=2"))
        .header("Authorization", "Bearer member-token")
        .header("X-Custom", "yes")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["server"], "api");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/project/list");
    assert_eq!(echo["query"], "x=1&y=2");
    assert_eq!(echo["body"], "payload");
    assert_eq!(header(&echo, "authorization"), Some("Bearer member-token"));
    assert_eq!(header(&echo, "x-custom"), Some("yes"));
    assert_eq!(header(&echo, "host"), Some(proxy.addr.to_string().as_str()));

    // Graceful shutdown: serve() returns and the listener is closed.
    proxy.shutdown.send(true).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), proxy.task)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok());
    assert!(TcpStream::connect(proxy.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix() {
    let replica = echo_server("replica").await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![
            service("main", "private", true, true, &[replica]),
            service("main", "public", false, true, &[replica]),
        ],
        tokens: tokens(),
    });
    let url = proxy.url("/proxy/services/main/private/hello");
    let denied = json!({"detail": {"msg": "Access denied", "code": null}});
    let cases: [(Option<&str>, u16); 5] = [
        (None, 403),
        (Some("Bearer wrong-token"), 403),
        (Some("Bearer outsider-token"), 403),
        (Some("Bearer member-token"), 200),
        (Some("Bearer admin-token"), 200),
    ];
    for (auth, status) in cases {
        let mut req = client().get(&url);
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "auth {auth:?}");
        if status == 403 {
            assert_eq!(
                resp.headers()["content-type"].to_str().unwrap(),
                "application/json"
            );
            assert_eq!(resp.json::<Value>().await.unwrap(), denied);
        } else {
            let echo: Value = resp.json().await.unwrap();
            assert_eq!(echo["path"], "/hello");
            assert!(echo["headers"].get("authorization").is_none(), "{echo}");
        }
    }

    // auth: false lets anyone in and forwards Authorization unchanged.
    let resp = client()
        .get(proxy.url("/proxy/services/main/public/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .get(proxy.url("/proxy/services/main/public/x"))
        .header("Authorization", "Bearer something")
        .send()
        .await
        .unwrap();
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(header(&echo, "authorization"), Some("Bearer something"));
    assert_eq!(request_count(&proxy.routes, "main", "private", 5).await, 5);
    assert_eq!(request_count(&proxy.routes, "main", "public", 2).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_prefix_and_forwarded_headers() {
    let replica = echo_server("replica").await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![
            service("main", "strip", false, true, &[replica]),
            service("main", "keep", false, false, &[replica]),
        ],
        tokens: HashMap::new(),
    });
    let resp = client()
        .get(proxy.url("/proxy/services/main/strip/a/b?q=1&r=two"))
        .header("X-Forwarded-For", "10.0.0.1")
        .header("Host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["path"], "/a/b");
    assert_eq!(echo["query"], "q=1&r=two");
    assert_eq!(header(&echo, "host"), Some("example.com"));
    assert_eq!(
        header(&echo, "x-forwarded-for"),
        Some("10.0.0.1, 127.0.0.1")
    );
    assert_eq!(header(&echo, "x-real-ip"), Some("127.0.0.1"));
    assert_eq!(header(&echo, "x-forwarded-proto"), Some("http"));
    assert_eq!(header(&echo, "x-forwarded-host"), Some("example.com"));

    let echo: Value = client()
        .get(proxy.url("/proxy/services/main/keep/a/b?q=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["path"], "/proxy/services/main/keep/a/b");
    assert_eq!(echo["query"], "q=1");
    assert_eq!(header(&echo, "x-forwarded-for"), Some("127.0.0.1"));

    // Root of a stripped service.
    let echo: Value = client()
        .get(proxy.url("/proxy/services/main/strip/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["path"], "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_not_found_and_too_large() {
    let replica = echo_server("replica").await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![
            service("main", "svc", false, true, &[replica]),
            service("main", "empty", false, true, &[]),
        ],
        tokens: HashMap::new(),
    });

    let resp = client()
        .get(proxy.url("/proxy/services/main/svc?a=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        "/proxy/services/main/svc/?a=1"
    );

    for (run, path) in [
        ("nope", "/proxy/services/main/nope/x"),
        ("empty", "/proxy/services/main/empty/"),
    ] {
        let resp = client().get(proxy.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"detail": format!("Service main/{run} not found")})
        );
    }

    let resp = client()
        .post(proxy.url("/proxy/services/main/svc/upload"))
        .body(vec![b'x'; MAX_BODY as usize + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert!(body["detail"].is_string());

    // A body at the limit passes.
    let resp = client()
        .post(proxy.url("/proxy/services/main/svc/upload"))
        .body(vec![b'x'; MAX_BODY as usize])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_live_replica() {
    let replica = echo_server("live").await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![
            service("main", "svc", false, true, &[dead_addr(), replica]),
            service("main", "dead", false, true, &[dead_addr(), dead_addr()]),
        ],
        tokens: HashMap::new(),
    });
    for _ in 0..4 {
        let resp = client()
            .get(proxy.url("/proxy/services/main/svc/x"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let echo: Value = resp.json().await.unwrap();
        assert_eq!(echo["server"], "live");
    }
    let resp = client()
        .get(proxy.url("/proxy/services/main/dead/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": "No replica of main/dead accepted the connection"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeout_is_504() {
    let silent = silent_server().await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![service("main", "slow", false, true, &[silent])],
        tokens: HashMap::new(),
    });
    let resp = client()
        .get(proxy.url("/proxy/services/main/slow/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert!(body["detail"].is_string());
}

async fn assert_streams(resp: reqwest::Response, started: Instant) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_unbuffered() {
    let sse = sse_server().await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![service("main", "sse", false, true, &[sse])],
        tokens: HashMap::new(),
    });
    let started = Instant::now();
    let resp = client()
        .get(proxy.url("/proxy/services/main/sse/events"))
        .send()
        .await
        .unwrap();
    assert_streams(resp, started).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_passthrough_echo() {
    let ws = upgrade_server().await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![service("main", "ws", true, true, &[ws])],
        tokens: tokens(),
    });
    // The client writes right after the 101, which is when a replica that answers quickly used
    // to get the tunnel closed (see vendor/README.md); repeat to give the race its chances.
    for _ in 0..50 {
        upgrade_and_echo(proxy.addr).await;
    }
}

async fn upgrade_and_echo(proxy: SocketAddr) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let req = "GET /proxy/services/main/ws/socket HTTP/1.1\r\nHost: example.com\r\n\
               Authorization: Bearer member-token\r\nUpgrade: websocket\r\n\
               Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap();
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    buf.drain(..head_end + 4);
    for msg in ["hello", "world, twice"] {
        stream.write_all(msg.as_bytes()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(5), async {
            while buf.len() < msg.len() {
                let mut chunk = [0u8; 1024];
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "tunnel closed after the 101");
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..msg.len()).collect::<Vec<u8>>()
        })
        .await
        .unwrap();
        assert_eq!(echoed, msg.as_bytes());
    }
}

fn model_service(run: &str, name: &str, replicas: &[SocketAddr]) -> ServiceRoute {
    ServiceRoute {
        model: Some(ModelRoute {
            name: name.to_owned(),
            prefix: "/v1".to_owned(),
            created: 1_700_000_000,
        }),
        ..service("main", run, true, true, replicas)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_gateway() {
    let llama = echo_server("llama").await;
    let mistral = echo_server("mistral").await;
    let sse = sse_server().await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![
            model_service("llama-run", "llama", &[llama]),
            model_service("mistral-run", "mistral", &[dead_addr(), mistral]),
            model_service("stream-run", "streamer", &[sse]),
            model_service("down-run", "down", &[]),
            service("main", "plain", false, true, &[llama]),
        ],
        tokens: tokens(),
    });

    // Listing (both paths), auth required.
    for path in ["/proxy/models/main/v1/models", "/proxy/models/main/models"] {
        let resp = client()
            .get(proxy.url(path))
            .bearer_auth("member-token")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let list: Value = resp.json().await.unwrap();
        let entry = |id: &str| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "main"});
        assert_eq!(
            list,
            json!({"object": "list", "data": [entry("llama"), entry("mistral"), entry("streamer")]})
        );
    }
    let resp = client()
        .get(proxy.url("/proxy/models/main/v1/models"))
        .bearer_auth("outsider-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Routing by model, body forwarded unchanged, Authorization removed.
    for (model, server) in [("llama", "llama"), ("mistral", "mistral")] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let resp = client()
            .post(proxy.url("/proxy/models/main/v1/chat/completions"))
            .bearer_auth("admin-token")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let echo: Value = resp.json().await.unwrap();
        assert_eq!(echo["server"], server);
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], "/v1/chat/completions");
        assert_eq!(echo["body"], body.to_string());
        assert!(echo["headers"].get("authorization").is_none());
    }
    let resp = client()
        .post(proxy.url("/proxy/models/main/v1/completions"))
        .bearer_auth("member-token")
        .json(&json!({"model": "llama", "prompt": "x"}))
        .send()
        .await
        .unwrap();
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["path"], "/v1/completions");

    // Bodies around and above Pingora's 64 KiB retry buffer.
    for size in [65_500, 65_536, 65_537, 130_000, 300 * 1024, 900_000] {
        let big = json!({"model": "llama", "prompt": "y".repeat(size)});
        let resp = client()
            .post(proxy.url("/proxy/models/main/v1/completions"))
            .bearer_auth("member-token")
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "size {size}");
        let echo: Value = resp.json().await.unwrap();
        assert_eq!(echo["body"], big.to_string());
    }
    let resp = client()
        .post(proxy.url("/proxy/models/main/v1/completions"))
        .bearer_auth("member-token")
        .json(&json!({"model": "llama", "prompt": "y".repeat(MAX_BODY as usize)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Chunked request bodies: small ones are routed, large ones rejected.
    let small = json!({"model": "llama", "prompt": "chunked"}).to_string();
    let (status, body) = raw_chunked_post(proxy.addr, &small).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["body"], small);
    assert_eq!(echo["path"], "/v1/chat/completions");
    let large = json!({"model": "llama", "prompt": "z".repeat(100_000)}).to_string();
    let (status, _) = raw_chunked_post(proxy.addr, &large).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // Unknown model (and a model service without replicas).
    for model in ["gpt-5", "down"] {
        let resp = client()
            .post(proxy.url("/proxy/models/main/v1/chat/completions"))
            .bearer_auth("member-token")
            .json(&json!({"model": model, "messages": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": {
                "message": format!("Model {model} not found"),
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }})
        );
    }

    // No token.
    let resp = client()
        .post(proxy.url("/proxy/models/main/v1/chat/completions"))
        .json(&json!({"model": "llama"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Streaming.
    let started = Instant::now();
    let resp = client()
        .post(proxy.url("/proxy/models/main/v1/chat/completions"))
        .bearer_auth("member-token")
        .json(&json!({"model": "streamer", "stream": true, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_streams(resp, started).await;

    // Requests on one keep-alive connection after a model request still work.
    let c = client();
    for _ in 0..3 {
        let resp = c
            .post(proxy.url("/proxy/models/main/v1/chat/completions"))
            .bearer_auth("member-token")
            .json(&json!({"model": "llama"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let resp = c
            .get(proxy.url("/proxy/services/main/plain/after"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_across_replicas() {
    let a = echo_server("a").await;
    let b = echo_server("b").await;
    let proxy = Proxy::start(dead_addr()).await;
    proxy.routes.replace(RouteTable {
        services: vec![service("main", "svc", false, true, &[a, b])],
        tokens: HashMap::new(),
    });
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..6 {
        let echo: Value = client()
            .get(proxy.url("/proxy/services/main/svc/x"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        *seen
            .entry(echo["server"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(seen.get("a"), Some(&3));
    assert_eq!(seen.get("b"), Some(&3));
    assert_eq!(request_count(&proxy.routes, "main", "svc", 6).await, 6);
    assert_eq!(proxy.routes.request_count("main", "unknown"), 0);
}

/// Sends a chunked model request over a raw connection; returns the status line and the body
/// (the proxy answers with Content-Length here, or closes the connection).
async fn raw_chunked_post(proxy: SocketAddr, body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let mut req = "POST /proxy/models/main/v1/chat/completions HTTP/1.1\r\nHost: x\r\n\
                   Authorization: Bearer member-token\r\nContent-Type: application/json\r\n\
                   Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_owned();
    for part in body.as_bytes().chunks(10_000) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            part.len(),
            String::from_utf8_lossy(part)
        ));
    }
    req.push_str("0\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut resp)).await;
    let resp = String::from_utf8_lossy(&resp).to_string();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The request counter is bumped in Pingora's `logging` phase, which may run just after the
/// client received the response: poll briefly until it reaches `expected`.
async fn request_count(routes: &Routes, project: &str, run: &str, expected: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let count = routes.request_count(project, run);
        if count >= expected || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
