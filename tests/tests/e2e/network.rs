//! Each sandboxed job has a network namespace of its own (`pasta`): two services of two projects
//! listen on the same port and each answers for itself, a job cannot reach the host's loopback
//! (the server, a local database), and a service pointed at the server's port gets an error,
//! not a loop. Skipped loudly where `bwrap` or `pasta` is not installed (`scripts/test.sh`
//! installs both).

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Dstack, http_client, small, task, wait_until};

fn isolated() -> bool {
    let missing: Vec<&str> = ["bwrap", "pasta"]
        .into_iter()
        .filter(|tool| {
            !std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        })
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED: {} not installed; jobs have no network of their own here",
            missing.join(", ")
        );
    }
    missing.is_empty()
}

/// A service without auth on `port` that serves `body` at `/`.
fn web(name: &str, port: u16, body: &str) -> Value {
    json!({
        "type": "service", "name": name, "port": port, "auth": false, "resources": small(),
        "commands": [
            format!("mkdir -p site && echo {body} > site/index.html && cd site"),
            format!("exec python3 -m http.server {port} --bind 127.0.0.1"),
        ],
    })
}

/// GET through the proxy: status and body (status 0 when the request failed).
fn get(url: &str) -> (u16, String) {
    match http_client(Duration::from_secs(10)).get(url).send() {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

#[test]
fn two_services_on_the_same_port_in_two_projects_each_answer_for_themselves() {
    if !isolated() {
        return;
    }
    let d = Dstack::start("net-same-port");
    let alice = d.create_user("alice");
    d.create_project(&alice, "pa");
    let bob = d.create_user("bob");
    d.create_project(&bob, "pb");
    let port = 8000;
    d.submit("pa", &alice, &web("web", port, "from-alice"));
    d.submit("pb", &bob, &web("web", port, "from-bob"));
    d.wait_running("pa", &alice, "web");
    d.wait_running("pb", &bob, "web");
    for (project, body) in [("pa", "from-alice"), ("pb", "from-bob")] {
        let url = format!("{}/proxy/services/{project}/web/", d.url);
        let mut last = (0, String::new());
        assert!(
            wait_until(Duration::from_secs(30), || {
                last = get(&url);
                last.0 == 200
            }),
            "{project}'s service never answered: {last:?}"
        );
        assert_eq!(
            last.1.trim(),
            body,
            "{project}'s service answered for another"
        );
    }
    // Several times, in turn: each URL keeps reaching its own job.
    for _ in 0..5 {
        assert_eq!(
            get(&format!("{}/proxy/services/pa/web/", d.url)).1.trim(),
            "from-alice"
        );
        assert_eq!(
            get(&format!("{}/proxy/services/pb/web/", d.url)).1.trim(),
            "from-bob"
        );
    }
    // The jobs' port is theirs, not the host's.
    let run = d.get_run("pa", &alice, "web").json;
    let ports = &run["jobs"][0]["job_submissions"][0]["job_runtime_data"]["ports"];
    let host_port = ports[port.to_string()]
        .as_u64()
        .expect("the port's host port");
    assert_ne!(host_port, u64::from(port), "{ports}");
    d.stop("pa", &alice, &["web"], true);
    d.stop("pb", &bob, &["web"], true);
    d.wait_finished("pa", &alice, "web");
    d.wait_finished("pb", &bob, "web");
    assert!(
        wait_until(Duration::from_secs(10), || pastas_of(&d.home).is_empty()),
        "the jobs' pasta outlived them: {:?}",
        pastas_of(&d.home)
    );
}

/// The `pasta` processes of jobs under `home` (their command line names their pid file).
fn pastas_of(home: &std::path::Path) -> Vec<u32> {
    let home = home.display().to_string();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let cmdline = String::from_utf8_lossy(&cmdline);
                    cmdline.contains("pasta.pid") && cmdline.contains(&home)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_job_cannot_reach_the_hosts_loopback() {
    if !isolated() {
        return;
    }
    let d = Dstack::start("net-loopback");
    // A service of the host's on loopback (a database, say), and the server itself.
    let host_service = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let host_port = host_service.local_addr().expect("address").port();
    let server_port = d.url.rsplit(':').next().expect("port").to_string();
    let probe = format!(
        "for port in {host_port} {server_port}; do \
           if python3 -c \"import socket; socket.create_connection(('127.0.0.1', $port), 3)\" 2>/dev/null; \
           then echo REACHED $port; else echo REFUSED $port; fi; \
         done; \
         gw=$(ip route 2>/dev/null | awk '/default/ {{print $3}}'); \
         if [ -n \"$gw\" ] && python3 -c \"import socket; socket.create_connection(('$gw', {server_port}), 3)\" 2>/dev/null; \
         then echo REACHED gateway; fi; echo done"
    );
    let eve = d.create_user("eve");
    d.create_project(&eve, "evil");
    d.submit("evil", &eve, &task("probe", &[&probe]));
    let run = d.wait_finished("evil", &eve, "probe");
    let out = d.logs_text("evil", &eve, &run, 1000).0;
    assert!(out.contains("done"), "{out}");
    assert!(!out.contains("REACHED"), "a job reached the host: {out}");
    assert!(out.contains(&format!("REFUSED {server_port}")), "{out}");
}

#[test]
fn a_job_reaches_the_outside_world_where_the_host_does() {
    if !isolated() {
        return;
    }
    // Registries are the one place CI machines reach; skip where the host reaches none.
    let target = ("index.crates.io", 443);
    let host_reaches = std::net::ToSocketAddrs::to_socket_addrs(&target)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok());
    if !host_reaches {
        eprintln!("SKIPPED: this host reaches no outside address ({target:?})");
        return;
    }
    let d = Dstack::start("net-outbound");
    let probe = "python3 -c \"import socket; socket.create_connection(('index.crates.io', 443), 10); print('CONNECTED')\"";
    d.submit("main", &d.token, &task("out", &[probe]));
    let run = d.wait_finished("main", &d.token, "out");
    let out = d.logs_text("main", &d.token, &run, 1000).0;
    assert!(out.contains("CONNECTED"), "{out}");
    assert_eq!(run["status"], "done", "{run}");
}

#[test]
fn a_service_on_the_servers_port_gets_an_error_not_a_loop() {
    if !isolated() {
        return;
    }
    let d = Dstack::start("net-self");
    let server_port: u16 = d
        .url
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    d.submit(
        "main",
        &d.token,
        &json!({
            "type": "service", "name": "self", "port": server_port, "auth": false,
            "resources": small(), "commands": ["sleep 300"],
        }),
    );
    d.wait_running("main", &d.token, "self");
    let (status, _) = get(&format!("{}/proxy/services/main/self/", d.url));
    assert!(
        (500..600).contains(&status),
        "a request to a service on the server's own port: {status}"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .map(|e| e.count())
        .unwrap_or(0);
    assert!(fds < 500, "the server holds {fds} descriptors");
    assert_eq!(
        d.call(
            "POST",
            "/api/server/get_info",
            None,
            crate::util::Body::Empty
        )
        .status,
        200
    );
    d.stop("main", &d.token, &["self"], true);
    d.wait_finished("main", &d.token, "self");
}

#[test]
fn replicas_of_a_service_listen_on_one_port_and_all_answer() {
    if !isolated() {
        return;
    }
    let d = Dstack::start("net-replicas");
    let mut service = web("pair", 8000, "$(cat /proc/sys/kernel/random/uuid)");
    service["replicas"] = json!(2);
    d.submit("main", &d.token, &service);
    let url = format!("{}/proxy/services/main/pair/", d.url);
    let mut seen = std::collections::BTreeSet::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (status, body) = get(&url);
            if status == 200 {
                seen.insert(body.trim().to_string());
            }
            seen.len() == 2
        }),
        "two replicas never both answered: {seen:?}"
    );
    let run = d.get_run("main", &d.token, "pair").json;
    assert_eq!(run["jobs"].as_array().map(Vec::len), Some(2), "{run}");
    d.stop("main", &d.token, &["pair"], true);
    d.wait_finished("main", &d.token, "pair");
}
