//! Long-lived responses: server-sent events arrive unbuffered, and upgraded connections
//! (WebSocket) are tunnelled both ways.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dstack_core::proxy::RouteTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Proxy, assert_streams, client, service, tokens};
use crate::upstream::{dead_addr, sse_server, upgrade_server};

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
