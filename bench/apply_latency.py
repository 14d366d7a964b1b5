"""Apply → job process started, against a running server (driven by bench/apply_latency.sh).

Usage: apply_latency.py PORT TOKEN WORKDIR N GOAL_MS HOME

For each of N tasks (plus one warm-up that is not counted): the wall clock (ns) is read just
before `POST /api/project/main/runs/apply` of a task whose first command is
`date +%s%N > "$BENCH_OUT"` (a file in its working directory, found on the host in its job
directory: jobs are sandboxed); the file is polled (1 ms) until it holds a full line; latency =
the time in the file - the time before the request. Each run is waited for until it finishes
before the next is applied. The floor: the same command spawned directly (`bash -c`), N times,
measured the same way.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import Client, job_file, median, pct, submission_id  # noqa: E402

FINISHED = {"done", "failed", "terminated"}
RESOURCES = {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."}
COMMAND = 'date +%s%N > "$BENCH_OUT"'


def wait_file(path, timeout=30.0):
    """Polls until `path` holds a full line; returns the integer in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text.endswith("\n"):
                return int(text.strip())
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise TimeoutError(f"{path} did not appear within {timeout:.0f} s")


def apply_body(name, out):
    spec = {
        "run_name": name,
        "configuration": {
            "type": "task",
            "commands": [COMMAND],
            "env": {"BENCH_OUT": out},
            "resources": RESOURCES,
        },
        "profile": None,
    }
    return {"plan": {"run_spec": spec}, "force": False}


def one_ours(client, home, name):
    body = apply_body(name, "start.ns")
    t0 = time.time_ns()
    run = client.post("/api/project/main/runs/apply", body)
    t_answer = time.time_ns()
    t_file = wait_file(job_file(home, submission_id(client, run, name), "start.ns"))
    # Let the run finish before the next one (a tiny task: exits at once).
    deadline = time.monotonic() + 30
    status = run.get("status") if isinstance(run, dict) else None
    while status not in FINISHED and time.monotonic() < deadline:
        time.sleep(0.02)
        status = client.post("/api/project/main/runs/get", {"run_name": name})["status"]
    if status not in FINISHED:
        client.post("/api/project/main/runs/stop", {"runs_names": [name], "abort": True})
        print(f"  warning: {name} still {status} after 30 s; aborted", file=sys.stderr)
    elif status != "done":
        print(f"  warning: {name} ended {status}", file=sys.stderr)
    return (t_file - t0) / 1e6, (t_answer - t0) / 1e6


def one_floor(workdir, i):
    out = os.path.join(workdir, f"floor-{i}.ns")
    t0 = time.time_ns()
    p = subprocess.Popen(["bash", "-c", f"date +%s%N > {out}"])
    t_file = wait_file(out)
    p.wait()
    return (t_file - t0) / 1e6


def summary(values):
    return median(values), pct(values, 90), max(values)


def main():
    port, token, workdir, n, goal, home = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                           int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    client = Client(port, token)
    stamp = time.strftime("%H%M%S")
    print("warm-up apply (not counted)...", flush=True)
    one_ours(client, home, f"lat-warmup-{stamp}")
    ours, answers = [], []
    for i in range(n):
        lat, ans = one_ours(client, home, f"lat-{stamp}-{i}")
        ours.append(lat)
        answers.append(ans)
        print(f"\r  ours: {i + 1}/{n} (last {lat:.1f} ms)", end="", flush=True)
    print()
    one_floor(workdir, "warmup")
    floor = []
    for i in range(n):
        floor.append(one_floor(workdir, i))
    print(f"  floor: {n}/{n} done")

    om, o90, omax = summary(ours)
    fm, f90, fmax = summary(floor)
    am, a90, amax = summary(answers)
    print(f"apply -> job process started, N={n} sequential tasks")
    print(f"  ours:  median {om:.1f} ms, p90 {o90:.1f} ms, max {omax:.1f} ms")
    print(f"  floor: median {fm:.1f} ms, p90 {f90:.1f} ms, max {fmax:.1f} ms (bash -c spawned directly)")
    print(f"  apply answered after: median {am:.1f} ms, p90 {a90:.1f} ms, max {amax:.1f} ms")
    print(f"  ratio ours/floor: median {om / fm:.1f}x, p90 {o90 / f90:.1f}x")
    verdict = "PASS" if om < goal else "FAIL"
    print(f"{verdict}: median apply -> started {om:.1f} ms (goal < {goal:.0f} ms)")


if __name__ == "__main__":
    main()
