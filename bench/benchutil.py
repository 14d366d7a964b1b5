"""Helpers shared by the benchmark scripts (standard library only).

Command line:
  python3 benchutil.py wait-ready PORT [SECONDS]   wait until POST /api/server/get_info answers
  python3 benchutil.py kill-jobs HOME              kill what our local fleet started under HOME:
                                                   every process of each job's session and every
                                                   `dstack job-runner` whose command line names HOME
  python3 benchutil.py rss-mb PID                  VmRSS of PID in MB
"""

import http.client
import json
import os
import signal
import sys
import time


class Client:
    """Keep-alive JSON client for one server on 127.0.0.1."""

    def __init__(self, port, token=None, timeout=60):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def post_raw(self, path, body):
        """POST `body` (bytes or a JSON-able value); returns (status, response bytes)."""
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in range(2):
            if self.conn is None:
                self._connect()
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, data
            except (http.client.HTTPException, ConnectionError, OSError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def post(self, path, body):
        """POST and decode the JSON answer; raises on a non-2xx status."""
        status, data = self.post_raw(path, body)
        if status // 100 != 2:
            raise RuntimeError(f"POST {path}: HTTP {status}: {data[:500]!r}")
        return json.loads(data) if data else None


def submission_id(client, run, name, timeout=30.0):
    """The id of the latest job submission of `run` (an apply answer), asking the server
    again until it has one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return run["jobs"][0]["job_submissions"][-1]["id"]
        except (KeyError, IndexError, TypeError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} has no job submission after {timeout:.0f} s")
        time.sleep(0.002)
        run = client.post("/api/project/main/runs/get", {"run_name": name})


def job_file(home, job_id, rel):
    """Where a file the job wrote at `rel` (relative to its working directory) lies on the
    host, sandboxed or not: `<server dir>/local/jobs/<id>/workdir/<rel>`."""
    return os.path.join(home, ".dstack", "server", "local", "jobs", job_id, "workdir", rel)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))  # ceil(n * p / 100), at least 1
    return s[min(len(s), int(k)) - 1]


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def wait_ready(port, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("POST", "/api/server/get_info", body=b"{}",
                      headers={"Content-Type": "application/json"})
            if c.getresponse().status // 100 in (2, 4):
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _procs():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def _session(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat.rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_jobs(home):
    """Kills the jobs our local fleet started under `home`, and their runners. Returns a count."""
    home = os.path.abspath(home)
    jobs_dir = os.path.join(home, ".dstack", "server", "local", "jobs")
    sessions = set()
    if os.path.isdir(jobs_dir):
        for job in os.listdir(jobs_dir):
            try:
                with open(os.path.join(jobs_dir, job, "job.pgid")) as f:
                    sid = int(f.read().strip())
                if sid > 1:
                    sessions.add(sid)
            except (OSError, ValueError):
                pass
    me = os.getpid()
    victims = []
    for pid in _procs():
        if pid == me:
            continue
        if _session(pid) in sessions:
            victims.append(pid)
            continue
        cmd = _cmdline(pid)
        if "job-runner" in cmd and home in cmd:
            victims.append(pid)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(victims)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "wait-ready":
        ok = wait_ready(int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 60.0)
        sys.exit(0 if ok else 1)
    elif cmd == "kill-jobs":
        n = kill_jobs(sys.argv[2])
        if n:
            print(f"cleanup: killed {n} leftover job process(es) under {sys.argv[2]}", file=sys.stderr)
    elif cmd == "rss-mb":
        print(f"{rss_mb(int(sys.argv[2])):.1f}")
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
