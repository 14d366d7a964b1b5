"""Steps of bench/scale.sh (the control plane at scale). Standard library only.

  scale.py apply-one PORT TOKEN NAME [WAIT_FINISHED]   apply one `true` task (the row to copy)
  scale.py seed-ours DB RUN_NAME N                     N finished runs (one job each) into our DB
  scale.py seed-orig DB RUN_NAME N                     the same into the original's DB
  scale.py apply-active PORT TOKEN N OUT_JSON          N `sleep 3600` tasks, wait until running
  scale.py measure-list PORT TOKEN N OUT_JSON          runs/list latencies (three series)
  scale.py passes LOG FROM TO OUT_JSON                 orchestrator passes logged between offsets
  scale.py stop-all PORT TOKEN PREFIX                  stop active runs named PREFIX*, wait
  scale.py report RESULTS_DIR                          print the figures, goals and ratios

Seeding copies every column of the real run and job rows (so the rows are realistic: the real
run_spec/job_spec JSON, with the names replaced) and overrides ids, names, times and statuses.
"""

import datetime as dt
import json
import os
import re
import sqlite3
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import Client, median, pct, rss_mb  # noqa: E402

RESOURCES = {"cpu": "1..", "memory": "0.1GB..", "disk": "0.1GB.."}
FINISHED = {"done", "failed", "terminated"}
# The CLI's runs/list body (`dstack ps`).
LIST_BODY = {
    "project_name": "main", "repo_id": None, "username": None, "only_active": False,
    "include_jobs": True, "job_submissions_limit": 1, "prev_submitted_at": None,
    "prev_run_id": None, "limit": 100, "ascending": False,
}


def apply_body(name, commands):
    spec = {
        "run_name": name,
        "configuration": {"type": "task", "commands": commands, "resources": RESOURCES},
        "profile": None,
    }
    return {"plan": {"run_spec": spec}, "force": False}


def dump(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


# ---------------------------------------------------------------- seeding

def _rename_json(text, old, new):
    """The JSON text with every string value equal to, or starting with `old-`, renamed."""
    def walk(v):
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str) and (v == old or v.startswith(old + "-")):
            return new + v[len(old):]
        return v
    return json.dumps(walk(json.loads(text)), separators=(",", ":"))


def _copy_rows(db, run_name, n, *, new_id, fmt_time, run_over, job_over, job_name_col=None):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    run = con.execute("SELECT * FROM runs WHERE run_name = ?", (run_name,)).fetchone()
    if run is None:
        raise SystemExit(f"seed: no run named {run_name} in {db}")
    job = con.execute("SELECT * FROM jobs WHERE run_id = ?", (run["id"],)).fetchone()
    if job is None:
        raise SystemExit(f"seed: the run {run_name} has no job in {db}")
    run_cols, job_cols = list(run.keys()), list(job.keys())
    spec_col = "job_spec" if "job_spec" in job_cols else "job_spec_data"
    base = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=n + 10)
    runs, jobs = [], []
    for i in range(n):
        name = f"seed-{i:05d}"
        rid, jid = new_id(), new_id()
        submitted = base + dt.timedelta(minutes=i)
        finished = submitted + dt.timedelta(seconds=7)
        r = dict(run)
        r.update(id=rid, run_name=name, submitted_at=fmt_time(submitted),
                 last_processed_at=fmt_time(finished),
                 run_spec=_rename_json(run["run_spec"], run_name, name), **run_over)
        j = dict(job)
        j.update(id=jid, run_id=rid, submitted_at=fmt_time(submitted),
                 last_processed_at=fmt_time(finished),
                 **{spec_col: _rename_json(job[spec_col], run_name, name)}, **job_over)
        if "finished_at" in job_cols:
            j["finished_at"] = fmt_time(finished)
        if "run_name" in job_cols:
            j["run_name"] = name
        if job_name_col and job_name_col in job_cols and job[job_name_col].startswith(run_name):
            j[job_name_col] = name + job[job_name_col][len(run_name):]
        runs.append(tuple(r[c] for c in run_cols))
        jobs.append(tuple(j[c] for c in job_cols))
    with con:
        con.executemany(
            f"INSERT INTO runs ({','.join(run_cols)}) VALUES ({','.join('?' * len(run_cols))})", runs)
        con.executemany(
            f"INSERT INTO jobs ({','.join(job_cols)}) VALUES ({','.join('?' * len(job_cols))})", jobs)
    total = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    size = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p)) / 1e6
    con.close()
    print(f"  seeded {n} finished runs ({total} runs in the database, {size:.0f} MB)")


def seed_ours(db, run_name, n):
    # Our timestamps: RFC 3339 with nanoseconds and +00:00 (what sea-orm writes).
    _copy_rows(
        db, run_name, n,
        new_id=lambda: str(uuid.uuid4()),
        fmt_time=lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000+00:00",
        run_over=dict(status="done", termination_reason="all_jobs_done", active_name=None,
                      stop_request=None, deleted=0, resubmission_attempt=0),
        job_over=dict(status="done", termination_reason="done_by_runner",
                      termination_reason_message=None, exit_status=0),
    )


def seed_orig(db, run_name, n):
    # The original's: UUIDs as 32 hex digits, naive UTC timestamps, enum names as statuses.
    _copy_rows(
        db, run_name, n,
        new_id=lambda: uuid.uuid4().hex,
        fmt_time=lambda t: t.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"),
        run_over=dict(status="DONE", termination_reason="ALL_JOBS_DONE", deleted=0,
                      lock_expires_at=None, lock_token=None, lock_owner=None),
        job_over=dict(status="DONE", termination_reason="DONE_BY_RUNNER",
                      termination_reason_message=None, exit_status=0,
                      lock_expires_at=None, lock_token=None, lock_owner=None),
        job_name_col="job_name",
    )


# ---------------------------------------------------------------- the API steps

def apply_one(port, token, name, wait_finished):
    c = Client(port, token)
    c.post("/api/project/main/runs/apply", apply_body(name, ["true"]))
    if not wait_finished:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = c.post("/api/project/main/runs/get", {"run_name": name})["status"]
        if status in FINISHED:
            if status != "done":
                print(f"  warning: {name} ended {status}", file=sys.stderr)
            return
        time.sleep(0.1)
    raise SystemExit(f"{name} did not finish within 60 s")


def active_statuses(c):
    body = dict(LIST_BODY, only_active=True, limit=1000)
    runs = c.post("/api/runs/list", body)
    counts = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def apply_active(port, token, n, out):
    c = Client(port, token)
    t0 = time.monotonic()
    stamp = time.strftime("%H%M%S")
    apply_ms = []
    for i in range(n):
        a = time.monotonic()
        c.post("/api/project/main/runs/apply", apply_body(f"active-{stamp}-{i:03d}", ["sleep 3600"]))
        apply_ms.append((time.monotonic() - a) * 1000)
        if (i + 1) % 20 == 0 or i + 1 == n:
            print(f"\r  applied {i + 1}/{n}", end="", flush=True)
    t_applied = time.monotonic() - t0
    print()
    deadline = time.monotonic() + 300
    while True:
        counts = active_statuses(c)
        running = counts.get("running", 0)
        print(f"\r  running {running}/{n} {counts}   ", end="", flush=True)
        if running >= n:
            break
        if time.monotonic() > deadline:
            print()
            raise SystemExit(f"only {running} of {n} runs running after 300 s: {counts}")
        time.sleep(0.5)
    print()
    dump(out, {"n": n, "apply_s": t_applied, "all_running_s": time.monotonic() - t0,
               "apply_p50_ms": median(apply_ms), "apply_max_ms": max(apply_ms)})


def measure_list(port, token, n, out, pid=None):
    """Three series, n requests each, sequential on one keep-alive connection:
    A: the CLI's body (only_active false) and B: the same with only_active true, alternated;
    C: body A with a distinct `prev_submitted_at` far in the future each time (the same
       answer, a key no cache has seen: every request renders)."""
    c = Client(port, token)
    series = {"a": [], "b": [], "c": []}
    sizes = {}
    body_b = dict(LIST_BODY, only_active=True)
    for body in (LIST_BODY, body_b):  # one warm-up each
        c.post_raw("/api/runs/list", body)

    def timed(key, body):
        data = json.dumps(body).encode()
        t0 = time.perf_counter()
        status, resp = c.post_raw("/api/runs/list", data)
        ms = (time.perf_counter() - t0) * 1000
        if status != 200:
            raise SystemExit(f"runs/list ({key}): HTTP {status}: {resp[:300]!r}")
        series[key].append(ms)
        sizes.setdefault(key, (len(resp), len(json.loads(resp))))

    for i in range(n):
        timed("a", LIST_BODY)
        timed("b", body_b)
        if (i + 1) % 25 == 0:
            print(f"\r  runs/list A/B: {i + 1}/{n}", end="", flush=True)
    print()
    rss_ab = rss_mb(pid) if pid else None
    far = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
    prev_id = str(uuid.UUID(int=0))
    for i in range(n):
        at = (far + dt.timedelta(seconds=i)).isoformat()
        timed("c", dict(LIST_BODY, prev_submitted_at=at, prev_run_id=prev_id))
        if (i + 1) % 25 == 0:
            print(f"\r  runs/list C: {i + 1}/{n}", end="", flush=True)
    print()
    res = {}
    for k, v in series.items():
        res[k] = {"n": len(v), "p50": median(v), "p99": pct(v, 99), "max": max(v),
                  "bytes": sizes[k][0], "runs": sizes[k][1]}
    res["rss_after_ab"] = rss_ab
    res["rss_after_c"] = rss_mb(pid) if pid else None
    dump(out, res)


ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
PASS_RE = re.compile(r"orchestrator pass")
RUNS_RE = re.compile(r"\bruns=(\d+)")
MICROS_RE = re.compile(r"\bmicros=(\d+)")


def passes(log, start, end, out):
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    found = []
    for line in ANSI_RE.sub("", text).splitlines():
        if PASS_RE.search(line):
            r, m = RUNS_RE.search(line), MICROS_RE.search(line)
            if r and m:
                found.append((int(r.group(1)), int(m.group(1)) / 1000.0))
    dump(out, found)


def stop_all(port, token, prefix):
    c = Client(port, token)
    runs = c.post("/api/runs/list", dict(LIST_BODY, only_active=True, limit=1000))
    names = [r["run_spec"]["run_name"] for r in runs if r["run_spec"]["run_name"].startswith(prefix)]
    if not names:
        return
    c.post("/api/project/main/runs/stop", {"runs_names": names, "abort": False})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = [r for r in c.post("/api/runs/list", dict(LIST_BODY, only_active=True, limit=1000))
                if r["run_spec"]["run_name"].startswith(prefix)]
        if not left:
            print(f"  stopped {len(names)} runs")
            return
        time.sleep(0.5)
    print(f"  warning: {len(left)} runs still active 60 s after runs/stop", file=sys.stderr)


# ---------------------------------------------------------------- the report

def load(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def report(d):
    params = load(d, "params.json")
    act = load(d, "ours-active.json")
    ours = load(d, "ours-list.json")
    orig = load(d, "orig-list.json")
    steady = load(d, "ours-passes-steady.json") or []
    ramp = load(d, "ours-passes-all.json") or []
    rss = load(d, "rss.json") or {}
    n_active = params["active"]
    labels = {"a": "A the CLI's body, only_active=false", "b": "B only_active=true (alternated with A)",
              "c": "C distinct keys (each request renders; no cache can answer)"}
    print()
    print("=== scale benchmark ===")
    print(f"parameters: {params['seeded']} finished runs seeded (original: {params.get('orig_seeded', 'n/a')}), "
          f"{n_active} active `sleep 3600` tasks (ours), runs/list limit=100 job_submissions_limit=1, "
          f"{params['requests']} sequential requests per series (A and B alternated), "
          f"{params['cpus']} CPUs, load average at start {params['load']}")
    if act:
        print(f"ours: {act['n']} applies took {act['apply_s']:.1f} s (apply p50 {act['apply_p50_ms']:.1f} ms, "
              f"max {act['apply_max_ms']:.1f} ms); all {act['n']} running after {act['all_running_s']:.1f} s")
    print("runs/list latency (ms):")
    for k in "abc":
        o = ours[k]
        line = (f"  {labels[k]}: ours p50 {o['p50']:.2f} p99 {o['p99']:.2f} max {o['max']:.2f} "
                f"({o['runs']} runs, {o['bytes'] / 1e3:.0f} kB)")
        if orig:
            p = orig[k]
            line += (f"; original p50 {p['p50']:.1f} p99 {p['p99']:.1f} max {p['max']:.1f} "
                     f"({p['runs']} runs, {p['bytes'] / 1e3:.0f} kB); ours/original p50 "
                     f"{o['p50'] / p['p50']:.3f} ({p['p50'] / o['p50']:.0f}x faster), p99 "
                     f"{o['p99'] / p['p99']:.3f} ({p['p99'] / o['p99']:.0f}x faster)")
            if k == "b":
                line += " [not like for like: the original holds no active jobs]"
        print(line)
    full = [ms for runs, ms in steady if runs == n_active]
    all200 = [ms for runs, ms in ramp if runs == n_active]
    if full:
        print(f"orchestrator pass, {n_active} runs, all running (idle window): {len(full)} passes, "
              f"median {median(full):.2f} ms, max {max(full):.2f} ms")
    else:
        print(f"orchestrator pass: no pass with {n_active} runs was logged in the idle window")
    if all200:
        print(f"orchestrator pass, every pass with {n_active} runs (ramp-up included): {len(all200)} passes, "
              f"median {median(all200):.2f} ms, max {max(all200):.2f} ms")
    print("RSS (VmRSS of the server process, MB):")
    print(f"  ours: {rss['ours_idle']:.1f} just after start ({params['seeded']} finished runs stored, none active), "
          f"{rss['ours_running']:.1f} with all {n_active} running, {ours['rss_after_ab']:.1f} after runs/list A/B, "
          f"{ours['rss_after_c']:.1f} after series C ({ours['c']['n']} distinct runs/list bodies of "
          f"{ours['c']['bytes'] / 1e3:.0f} kB rendered)")
    if orig:
        print(f"  original: {orig['rss_after_ab']:.1f} after runs/list A/B, {orig['rss_after_c']:.1f} after series C "
              f"({params.get('orig_seeded')} finished runs); ours/original after A/B "
              f"{ours['rss_after_ab'] / orig['rss_after_ab']:.2f}, after C {ours['rss_after_c'] / orig['rss_after_c']:.2f}")
    print("goals:")
    for k in "abc":
        print(f"  {verdict(ours[k]['p99'] < 20)}: runs/list p99 {ours[k]['p99']:.2f} ms, series {k.upper()} (goal < 20 ms)")
    if full:
        print(f"  {verdict(median(full) < 50)}: orchestrator pass with {n_active} runs, median {median(full):.2f} ms "
              f"(goal < 50 ms){'' if max(full) < 50 else f'; max {max(full):.2f} ms is over'}")
    else:
        print("  FAIL: orchestrator pass: not measured")
    print(f"  {verdict(ours['rss_after_ab'] < 100)}: RSS {ours['rss_after_ab']:.1f} MB with everything loaded, "
          f"after runs/list A/B (goal < 100 MB)")
    print(f"  {verdict(ours['rss_after_c'] < 100)}: RSS {ours['rss_after_c']:.1f} MB after series C too (goal < 100 MB)")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "apply-one":
        apply_one(int(args[0]), args[1], args[2], len(args) > 3 and args[3] == "wait")
    elif cmd == "seed-ours":
        seed_ours(args[0], args[1], int(args[2]))
    elif cmd == "seed-orig":
        seed_orig(args[0], args[1], int(args[2]))
    elif cmd == "apply-active":
        apply_active(int(args[0]), args[1], int(args[2]), args[3])
    elif cmd == "measure-list":
        measure_list(int(args[0]), args[1], int(args[2]), args[3], int(args[4]) if len(args) > 4 else None)
    elif cmd == "passes":
        passes(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == "stop-all":
        stop_all(int(args[0]), args[1], args[2])
    elif cmd == "report":
        report(args[0])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
