//! The OpenAI-compatible model gateway: listing, routing by model, bodies around Pingora's
//! retry buffer, chunked bodies, errors, streaming and keep-alive.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dstack_core::proxy::{ModelRoute, RouteTable, ServiceRoute};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{MAX_BODY, Proxy, assert_streams, client, service, tokens};
use crate::upstream::{dead_addr, echo_server, sse_server};

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
