//! A job asking for less than the host (`cpu: 1`, `memory: ..0.3GB`) is offered that much and
//! held to it (cgroups): past its memory it is killed, and two busy processes share one CPU.
//! Skipped loudly where the server may not create cgroups (it says so at start).

use base64::Engine;
use serde_json::{Value, json};

use crate::util::{Dstack, latest_submission};

fn limited(d: &Dstack) -> bool {
    if d.printed("are not limited") {
        eprintln!(
            "SKIPPED: this server cannot limit jobs here: {}",
            d.output_tail(20)
        );
        return false;
    }
    true
}

/// A task running the Python program `source`, with `resources`.
fn python_task(name: &str, source: &str, resources: Value) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(source);
    json!({
        "type": "task", "name": name, "resources": resources,
        "commands": [format!("echo {b64} | base64 -d > prog.py"), "python3 prog.py"],
    })
}

#[test]
fn a_job_is_held_to_the_memory_it_asked_for() {
    let d = Dstack::start("limits-memory");
    if !limited(&d) {
        return;
    }
    let resources = json!({"cpu": "1..", "memory": "0.1GB..0.3GB", "disk": "0.1GB.."});
    let plan = d.get_plan(
        "main",
        &d.token,
        &python_task("plan-probe", "pass", resources.clone()),
    );
    assert_eq!(plan.status, 200, "{plan}");
    let offered = &plan.json["job_plans"][0]["offers"][0]["instance"]["resources"];
    // The plan shows what the job gets: 0.3 GB, not the host's memory.
    assert_eq!(offered["memory_mib"], 307, "{offered}");
    let alloc =
        |mib: u64| format!("b = b'x' * ({mib} * 1024 * 1024)\nprint('ALLOCATED', len(b))\n");
    d.submit(
        "main",
        &d.token,
        &python_task("small", &alloc(50), resources.clone()),
    );
    d.submit(
        "main",
        &d.token,
        &python_task("big", &alloc(700), resources),
    );
    let small = d.wait_finished("main", &d.token, "small");
    let big = d.wait_finished("main", &d.token, "big");
    let small_out = d.logs_text("main", &d.token, &small, 1000).0;
    let big_out = d.logs_text("main", &d.token, &big, 1000).0;
    assert_eq!(small["status"], "done", "{small}\n{small_out}");
    assert!(small_out.contains("ALLOCATED"), "{small_out}");
    assert_eq!(
        big["status"], "failed",
        "{big}\n{big_out}\noffered: {offered}"
    );
    assert!(!big_out.contains("ALLOCATED"), "{big_out}");
    let sub = latest_submission(&big);
    assert!(!sub.is_empty());
}

#[test]
fn busy_processes_of_a_one_cpu_job_share_one_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("SKIPPED: one CPU on this host: a one-CPU limit is no limit");
        return;
    }
    let d = Dstack::start("limits-cpu");
    if !limited(&d) {
        return;
    }
    let burn = "import os, time\n\
                t = time.time()\n\
                pids = []\n\
                for _ in range(2):\n\
                \x20   pid = os.fork()\n\
                \x20   if pid == 0:\n\
                \x20       end = time.time() + 1.5\n\
                \x20       while time.time() < end:\n\
                \x20           pass\n\
                \x20       os._exit(0)\n\
                \x20   pids.append(pid)\n\
                for pid in pids:\n\
                \x20   os.waitpid(pid, 0)\n\
                c = os.times()\n\
                print('RATIO %.2f' % ((c.children_user + c.children_system) / (time.time() - t)))\n";
    let resources = json!({"cpu": 1, "memory": "0.1GB..", "disk": "0.1GB.."});
    d.submit("main", &d.token, &python_task("burn", burn, resources));
    let run = d.wait_finished("main", &d.token, "burn");
    let out = d.logs_text("main", &d.token, &run, 1000).0;
    assert_eq!(run["status"], "done", "{run}\n{out}");
    let ratio: f64 = out
        .split("RATIO ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no ratio in {out}"));
    // Unlimited, two busy processes on two free CPUs use about 2 CPU-seconds a second.
    assert!(
        ratio < 1.35,
        "CPU time / wall time {ratio}: the one-CPU limit did not hold"
    );
}
