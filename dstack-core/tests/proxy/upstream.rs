//! Upstream servers the proxy forwards to in the tests: a minimal HTTP/1.1 request reader and
//! echo, SSE, upgrade, silent and relay servers on 127.0.0.1, plus an address nobody listens on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
pub(crate) async fn echo_server(name: &'static str) -> SocketAddr {
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
pub(crate) async fn sse_server() -> SocketAddr {
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
pub(crate) async fn upgrade_server() -> SocketAddr {
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
pub(crate) async fn silent_server() -> SocketAddr {
    spawn_server(|mut stream| async move {
        let mut buf = Vec::new();
        let _ = read_request(&mut stream, &mut buf).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await
}

/// Forwards every connection to `target`, byte for byte (a replica that sends requests back to
/// the proxy, as one at another address of the proxy's host would); counts the connections.
pub(crate) async fn relay_server(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    let addr = spawn_server(move |mut inbound| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        }
    })
    .await;
    (addr, connections)
}

/// An address nobody listens on.
pub(crate) fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
