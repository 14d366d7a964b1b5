"""What the sandbox costs, against two running servers (driven by bench/sandbox.sh): one
sandboxing jobs (bubblewrap, a network namespace joined by pasta, the job as `nobody` when
root), one started with `--no-sandbox` (jobs as plain processes on the host).

Usage: sandbox.py N CPU_N PORT_SANDBOXED HOME_SANDBOXED PORT_BARE HOME_BARE TOKEN

Start latency: for each server, N tasks (plus one warm-up) applied one after another; the wall
clock (ns) just before `POST runs/apply`, then the time the task's first command
`date +%s%N > start.ns` wrote (found in the job's directory on the host).
CPU-bound run time: CPU_N tasks per server (plus the same command run directly by this script)
timing, inside the job, a pure-Python loop run by /usr/bin/python3 (`perf_counter` around it, written to cpu.s).
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import Client, job_file, median, pct, submission_id  # noqa: E402

FINISHED = {"done", "failed", "terminated"}
RESOURCES = {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."}
# One interpreter for all three (a `python3` first on PATH may be one the sandbox hides).
PYTHON = "/usr/bin/python3"
CPU_LOOP = ("import time; t = time.perf_counter(); s = sum(i * i for i in range(30_000_000)); "
            "open('cpu.s', 'w').write(f'{time.perf_counter() - t:.6f}\\n')")


def wait_file(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text.endswith("\n"):
                return text.strip()
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise TimeoutError(f"{path} did not appear within {timeout:.0f} s")


def apply(client, name, commands):
    spec = {
        "run_name": name,
        "configuration": {"type": "task", "commands": commands, "resources": RESOURCES},
        "profile": None,
    }
    return client.post("/api/project/main/runs/apply", {"plan": {"run_spec": spec}, "force": False})


def wait_finished(client, name):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.post("/api/project/main/runs/get", {"run_name": name})["status"]
        if status in FINISHED:
            if status != "done":
                print(f"  warning: {name} ended {status}", file=sys.stderr)
            return
        time.sleep(0.01)
    client.post("/api/project/main/runs/stop", {"runs_names": [name], "abort": True})
    raise TimeoutError(f"{name} did not finish within 120 s")


def start_latency(client, home, name):
    t0 = time.time_ns()
    run = apply(client, name, ["date +%s%N > start.ns"])
    t = int(wait_file(job_file(home, submission_id(client, run, name), "start.ns")))
    wait_finished(client, name)
    return (t - t0) / 1e6


def cpu_run(client, home, name):
    run = apply(client, name, [f'{PYTHON} -c "{CPU_LOOP}"'])
    seconds = float(wait_file(job_file(home, submission_id(client, run, name), "cpu.s")))
    wait_finished(client, name)
    return seconds


def cpu_direct(workdir):
    subprocess.run([PYTHON, "-c", CPU_LOOP], cwd=workdir, check=True)
    with open(os.path.join(workdir, "cpu.s")) as f:
        return float(f.read())


def main():
    n, cpu_n = int(sys.argv[1]), int(sys.argv[2])
    servers = {
        "sandboxed": (Client(int(sys.argv[3]), sys.argv[7]), sys.argv[4]),
        "bare": (Client(int(sys.argv[5]), sys.argv[7]), sys.argv[6]),
    }
    stamp = time.strftime("%H%M%S")
    starts = {mode: [] for mode in servers}
    cpus = {mode: [] for mode in servers}
    for mode, (client, home) in servers.items():
        start_latency(client, home, f"warm-{mode}-{stamp}")
    # Interleaved, so that drift on the machine hits both alike.
    for i in range(n):
        for mode, (client, home) in servers.items():
            starts[mode].append(start_latency(client, home, f"start-{mode}-{stamp}-{i}"))
        print(f"\r  start latency: {i + 1}/{n}", end="", flush=True)
    print()
    direct = []
    workdir = os.environ.get("BENCH_WORK", "/tmp")
    for i in range(cpu_n):
        for mode, (client, home) in servers.items():
            cpus[mode].append(cpu_run(client, home, f"cpu-{mode}-{stamp}-{i}"))
        direct.append(cpu_direct(workdir))
        print(f"\r  CPU-bound: {i + 1}/{cpu_n}", end="", flush=True)
    print()

    def line(label, values, unit, scale):
        vals = [v * scale for v in values]
        return f"  {label:<10} median {median(vals):8.2f} {unit}, p90 {pct(vals, 90):8.2f} {unit}, max {max(vals):8.2f} {unit}"

    print(f"apply -> first command of the job, N={n} sequential tasks per server")
    print(line("sandboxed", starts["sandboxed"], "ms", 1))
    print(line("bare", starts["bare"], "ms", 1))
    sm, bm = median(starts["sandboxed"]), median(starts["bare"])
    print(f"  sandbox cost: +{sm - bm:.1f} ms per job start (ratio sandboxed/bare {sm / bm:.2f}x)")
    print(f"CPU-bound job (pure-Python loop, timed inside the job), N={cpu_n} per server")
    print(line("sandboxed", cpus["sandboxed"], "s", 1))
    print(line("bare", cpus["bare"], "s", 1))
    print(line("direct", direct, "s", 1))
    cs, cb, cd = median(cpus["sandboxed"]), median(cpus["bare"]), median(direct)
    print(f"  ratio sandboxed/bare {cs / cb:.3f}x, sandboxed/direct {cs / cd:.3f}x")


if __name__ == "__main__":
    main()
