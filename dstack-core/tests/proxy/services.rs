//! Service traffic and API pass-through: auth, path rewriting and forwarding headers,
//! redirects and errors, fail-over, timeouts, round robin and request counters.

use std::collections::HashMap;
use std::time::Duration;

use dstack_core::proxy::RouteTable;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::support::{MAX_BODY, Proxy, client, header, request_count, service, tokens};
use crate::upstream::{dead_addr, echo_server, silent_server};

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
