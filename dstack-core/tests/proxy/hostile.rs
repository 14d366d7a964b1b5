//! The proxy under hostile clients: slow and silent connections, idle kept-alive connections,
//! connection floods from one address, oversized request heads, and services pointed back at
//! the server (directly, or through a replica that forwards to it).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dstack_core::proxy::{ClientLimits, RouteTable};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Proxy, client, request_count, service, tokens};
use crate::upstream::{echo_server, relay_server};

/// The head and idle timeouts of the tests that wait for them.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Lower bound of a measured timeout (timers may round).
const AT_LEAST: Duration = Duration::from_millis(900);
/// Upper bound of a measured timeout, with room for a loaded machine.
const AT_MOST: Duration = Duration::from_secs(4);

fn limits(header: Duration, idle: Duration) -> ClientLimits {
    ClientLimits {
        header_timeout: Some(header),
        idle_timeout: Some(idle),
        max_connections_per_client: None,
        max_header_bytes: 8 * 1024,
        max_headers: 20,
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// A response read off a raw connection.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn detail(&self) -> String {
        self.json()["detail"].as_str().unwrap().to_owned()
    }

    /// Parses a complete response (head and `Content-Length` body) from the start of `buf`.
    fn parse(buf: &[u8]) -> Option<(Response, usize)> {
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let end = head_end + 4 + len;
        let body = buf.get(head_end + 4..end)?.to_vec();
        Some((Response { status, head, body }, end))
    }
}

/// Reads one response from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some((resp, end)) = Response::parse(&buf) {
            assert_eq!(end, buf.len(), "more than one response");
            return resp;
        }
        let n = tokio::time::timeout(AT_MOST, stream.read(&mut chunk))
            .await
            .expect("no response in time")
            .unwrap();
        assert!(n > 0, "closed before a complete response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the proxy closes the connection; what came, and when (from `since`).
async fn until_closed(
    reader: &mut (impl AsyncRead + Unpin),
    since: Instant,
) -> (Vec<u8>, Duration) {
    let mut all = Vec::new();
    let mut chunk = [0u8; 8192];
    let read_all = async {
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(15), read_all).await;
    assert!(outcome.is_ok(), "the proxy kept the connection open");
    (all, since.elapsed())
}

/// Sends `request` (while reading) and reads until the proxy closes the connection; the one
/// response that came.
async fn refused(addr: SocketAddr, request: Vec<u8>) -> Response {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // The proxy stops reading once a limit is broken: write on while it answers.
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let (bytes, _) = until_closed(&mut reader, Instant::now()).await;
    drop(write.await);
    let (resp, end) = Response::parse(&bytes).expect("no complete response");
    assert_eq!(end, bytes.len(), "more than one response: {bytes:?}");
    assert!(resp.head.to_ascii_lowercase().contains("connection: close"));
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off_after_the_header_timeout() {
    let api = echo_server("api").await;
    let proxy = Proxy::start_with(api, limits(TIMEOUT, Duration::from_secs(30))).await;
    // The adversary's 600 connections: half send a request head a byte at a time, half nothing.
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..600 {
        let addr = proxy.addr;
        clients.spawn(async move {
            let slow = i % 2 == 0;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let since = Instant::now();
            let (mut reader, mut writer) = stream.split();
            let trickle = async {
                if slow {
                    writer
                        .write_all(b"GET /api/slow HTTP/1.1\r\nHost: test\r\nX-Slow: ")
                        .await
                        .unwrap();
                    while writer.write_all(b"a").await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                std::future::pending::<()>().await;
            };
            let (bytes, elapsed) = tokio::select! {
                closed = until_closed(&mut reader, since) => closed,
                () = trickle => unreachable!(),
            };
            (slow, bytes, elapsed)
        });
    }
    let mut counted = 0;
    while let Some(outcome) = clients.join_next().await {
        let (slow, bytes, elapsed) = outcome.unwrap();
        assert!(
            (AT_LEAST..AT_MOST).contains(&elapsed),
            "closed after {elapsed:?} (slow: {slow}, {:?})",
            String::from_utf8_lossy(&bytes)
        );
        if slow {
            let (resp, _) = Response::parse(&bytes).expect("no 408");
            assert_eq!(resp.status, 408);
            assert_eq!(resp.detail(), "The request head was not received in time");
        } else {
            assert!(bytes.is_empty(), "{bytes:?}");
        }
        counted += 1;
    }
    assert_eq!(counted, 600);
    // The proxy still serves.
    let resp = client().get(proxy.url("/api/after")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_kept_alive_connections_are_closed_after_the_idle_timeout() {
    let api = echo_server("api").await;
    // A long head timeout: what closes the connections below is the idle timeout.
    let proxy = Proxy::start_with(api, limits(Duration::from_secs(30), TIMEOUT)).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(&get("/api/one")).await.unwrap();
    assert_eq!(read_response(&mut stream).await.status, 200);
    // A request within the idle time is served and starts it again.
    tokio::time::sleep(TIMEOUT / 2).await;
    stream.write_all(&get("/api/two")).await.unwrap();
    assert_eq!(read_response(&mut stream).await.status, 200);
    let (rest, elapsed) = until_closed(&mut stream, Instant::now()).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        (AT_LEAST..AT_MOST).contains(&elapsed),
        "closed {elapsed:?} after the last response"
    );

    // 300 idle connections at once are all closed.
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..300 {
        let addr = proxy.addr;
        clients.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&get(&format!("/api/{i}"))).await.unwrap();
            assert_eq!(read_response(&mut stream).await.status, 200);
            until_closed(&mut stream, Instant::now()).await
        });
    }
    while let Some(outcome) = clients.join_next().await {
        let (rest, elapsed) = outcome.unwrap();
        assert!(rest.is_empty());
        assert!((AT_LEAST..AT_MOST).contains(&elapsed), "{elapsed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_is_not_taken_for_a_request_head() {
    let api = echo_server("api").await;
    let proxy = Proxy::start_with(api, limits(TIMEOUT, Duration::from_secs(30))).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // A body of many short lines (as a head it would break the 20-field and 8 KiB limits),
    // then the next request on the same connection.
    let body = "line\n".repeat(20_000);
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let resp = read_response(&mut stream).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["body"].as_str().unwrap().len(), body.len());
    stream.write_all(&get("/api/next")).await.unwrap();
    let resp = read_response(&mut stream).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/api/next");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_client_address_are_capped() {
    let api = echo_server("api").await;
    let cap = ClientLimits {
        max_connections_per_client: Some(4),
        ..limits(Duration::from_secs(30), Duration::from_secs(30))
    };
    let proxy = Proxy::start_with(api, cap).await;
    // Four connections, each answered (so each is accepted and counted).
    let mut held = Vec::new();
    for i in 0..4 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(&get(&format!("/api/{i}"))).await.unwrap();
        assert_eq!(read_response(&mut stream).await.status, 200);
        held.push(stream);
    }
    // A fifth gets 429 and is closed, whether it sends a request or not.
    let mut fifth = TcpStream::connect(proxy.addr).await.unwrap();
    let (bytes, _) = until_closed(&mut fifth, Instant::now()).await;
    let (resp, _) = Response::parse(&bytes).expect("no 429");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.detail(), "Too many open connections from this address");
    let resp = refused(proxy.addr, get("/api/fifth")).await;
    assert_eq!(resp.status, 429);
    // The four still work.
    for stream in &mut held {
        stream.write_all(&get("/api/again")).await.unwrap();
        assert_eq!(read_response(stream).await.status, 200);
    }
    // Closing one frees its place once the proxy has seen the close.
    drop(held.pop());
    let deadline = Instant::now() + AT_MOST;
    loop {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(&get("/api/freed")).await.unwrap();
        let answer = tokio::time::timeout(TIMEOUT, read_response(&mut stream))
            .await
            .expect("no answer");
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 429);
        assert!(
            Instant::now() < deadline,
            "the closed connection's place was kept"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431() {
    let api = echo_server("api").await;
    let proxy =
        Proxy::start_with(api, limits(Duration::from_secs(5), Duration::from_secs(5))).await;
    let head_with =
        |fields: &str| format!("GET /api/x HTTP/1.1\r\nHost: test\r\n{fields}\r\n").into_bytes();

    // Within the limits: 20 fields, most of the 8 KiB.
    let fields: String = (1..20)
        .map(|i| format!("X-F{i}: {}\r\n", "v".repeat(300)))
        .collect();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(&head_with(&fields)).await.unwrap();
    let resp = read_response(&mut stream).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json()["headers"]["x-f19"][0].as_str().unwrap().len(),
        300
    );

    // One field too large.
    let big = format!("X-Big: {}\r\n", "b".repeat(16 * 1024));
    let resp = refused(proxy.addr, head_with(&big)).await;
    assert_eq!(resp.status, 431);
    assert_eq!(resp.detail(), "Request header fields too large");

    // Past Pingora's own 1 MiB limit (where it would answer a bare 400).
    let huge = format!("X-Huge: {}\r\n", "h".repeat(2 * 1024 * 1024));
    let resp = refused(proxy.addr, head_with(&huge)).await;
    assert_eq!(resp.status, 431);

    // Too many fields, each small.
    let many: String = (0..30).map(|i| format!("X-M{i}: 1\r\n")).collect();
    let resp = refused(proxy.addr, head_with(&many)).await;
    assert_eq!(resp.status, 431);
    assert_eq!(resp.detail(), "Too many request header fields");

    // A request line that alone is too long.
    let long = format!("/api/{}", "u".repeat(16 * 1024));
    let resp = refused(proxy.addr, get(&long)).await;
    assert_eq!(resp.status, 414);

    // The defaults (64 KiB) refuse a 100 KiB head too.
    let defaults = Proxy::start(api).await;
    let big = format!("X-Big: {}\r\n", "b".repeat(100 * 1024));
    let resp = refused(defaults.addr, head_with(&big)).await;
    assert_eq!(resp.status, 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_at_the_servers_own_address_gets_502_not_a_loop() {
    let api = echo_server("api").await;
    let replica = echo_server("replica").await;
    let proxy = Proxy::start(api).await;
    let wildcard = SocketAddr::from(([0, 0, 0, 0], proxy.addr.port()));
    proxy.routes.replace(RouteTable {
        services: vec![
            // Without the prefix stripped, the proxy would get the same request again.
            service("main", "itself", false, false, &[proxy.addr]),
            service("main", "wildcard", false, false, &[wildcard]),
            service("main", "api", false, false, &[api]),
            service("main", "mixed", false, true, &[proxy.addr, replica]),
        ],
        tokens: tokens(),
    });
    for run in ["itself", "wildcard", "api"] {
        let resp = client()
            .get(proxy.url(&format!("/proxy/services/main/{run}/x")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{run}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["detail"],
            format!(
                "Service main/{run} has no usable replica: its address is the dstack server's own"
            )
        );
        assert_eq!(request_count(&proxy.routes, "main", run, 1).await, 1);
    }
    // The other replica of a service keeps serving, every time.
    for _ in 0..3 {
        let resp = client()
            .get(proxy.url("/proxy/services/main/mixed/x"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["server"], "replica");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_comes_back_through_a_replica_gets_508() {
    let api = echo_server("api").await;
    let replica = echo_server("replica").await;
    let proxy = Proxy::start(api).await;
    let (relay, relayed) = relay_server(proxy.addr).await;
    proxy.routes.replace(RouteTable {
        services: vec![
            service("main", "relay", false, false, &[relay]),
            service("main", "echo", false, true, &[replica]),
        ],
        tokens: tokens(),
    });
    let resp = client()
        .get(proxy.url("/proxy/services/main/relay/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 508);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "Loop detected: the request for service main/relay came back to the proxy"
    );
    // Once through the relay, twice through the proxy: no more.
    assert_eq!(relayed.load(Ordering::SeqCst), 1);
    assert_eq!(request_count(&proxy.routes, "main", "relay", 2).await, 2);

    // Another proxy's hop (or another service's) is kept and the request goes through.
    let resp = client()
        .get(proxy.url("/proxy/services/main/echo/"))
        .header("X-Dstack-Proxy-Hop", "elsewhere/main/echo, x/main/relay")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().await.unwrap();
    let hops = echo["headers"]["x-dstack-proxy-hop"].as_array().unwrap();
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0], "elsewhere/main/echo, x/main/relay");
    assert!(hops[1].as_str().unwrap().ends_with("/main/echo"));
}
