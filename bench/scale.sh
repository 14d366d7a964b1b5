#!/usr/bin/env bash
# The control plane at scale, ours vs the Python original (dstack[server]==0.22.5), in one run on
# 127.0.0.1:
#   ours:     SEEDED (10,000) finished runs (one `done` job each) written straight into the
#             server's SQLite database while it is stopped, copied from a run applied through the
#             API; then ACTIVE (200) `sleep 3600` tasks applied through the API, waited for until
#             all are running; then
#               * the orchestrator pass (`--log-level debug`, the `orchestrator pass runs=… micros=…`
#                 lines) over an idle window of PASS_WINDOW (10) s with all of them running,
#               * POST /api/runs/list, REQUESTS (100) sequential requests per series: A the CLI's
#                 body, B the same with only_active=true (A and B alternated), C the CLI's body
#                 with a distinct far-future prev_submitted_at each time (same answer, every
#                 request renders),
#               * VmRSS of the server process with all of that loaded (after A/B, and after C,
#                 whose distinct bodies the server may keep cached).
#   original: the same SEEDED finished runs copied into its database (it runs jobs only with
#             Docker, which this machine lacks, so it holds no active jobs), the same runs/list
#             series and its VmRSS. Skipped with ORIG=0.
# Prints the figures, PASS/FAIL against the goals (runs/list p99 < 20 ms, a pass < 50 ms,
# RSS < 100 MB) and the ratios ours/original. Stops all jobs at the end.
# Usage: bench/scale.sh     (env: SEEDED, ACTIVE, REQUESTS, PASS_WINDOW, ORIG=0)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SEEDED="${SEEDED:-10000}"
ACTIVE="${ACTIVE:-200}"
REQUESTS="${REQUESTS:-100}"
PASS_WINDOW="${PASS_WINDOW:-10}"
ORIG="${ORIG:-1}"
PY="waited python3 $REPO/bench/scale.py"
UTIL="python3 $REPO/bench/benchutil.py"

WORK="$(mktemp -d)"
RES="$WORK/results"
mkdir -p "$RES" "$WORK/ours" "$WORK/orig"
OURS_PID=""
ORIG_PID=""
T_START=$(date +%s)

stop_server() { # PID: TERM, then KILL after 30 s
    local pid="$1"
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill $(jobs -p) 2>/dev/null || true
    stop_server "$OURS_PID"
    stop_server "$ORIG_PID"
    $UTIL kill-jobs "$WORK/ours" || true
    if [[ $rc -ne 0 ]]; then
        for log in "$WORK"/ours*.log "$WORK"/orig*.log; do
            [[ -f "$log" ]] || continue
            echo "--- $(basename "$log") (last 20 lines) ---" >&2; tail -n 20 "$log" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# waited CMD...: runs CMD as a background job and waits for it, so that a signal runs the trap at once.
waited() { "$@" & wait $!; }

step() { echo "[$(( $(date +%s) - T_START ))s] $*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TOKEN="bench-$(date +%s)-token"

# start_server VAR HOME LOG READY_TIMEOUT CMD...: starts a server, stores its pid in VAR.
start_server() {
    local var="$1" home="$2" log="$3" timeout="$4"; shift 4
    HOME="$home" DSTACK_SERVER_ADMIN_TOKEN="$TOKEN" "$@" >>"$log" 2>&1 &
    printf -v "$var" '%s' "$!"
    local port; port=$(echo "$*" | sed -n 's/.*--port \([0-9]*\).*/\1/p')
    $UTIL wait-ready "$port" "$timeout" || { echo "error: the server did not answer within $timeout s" >&2; exit 1; }
}

if [[ "$ORIG" != 0 ]]; then
    VENV="$REPO/target/bench-server-venv"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    if ! "$VENV/bin/python" -c 'import dstack._internal.server.main' 2>/dev/null; then
        step "installing dstack[server]==0.22.5 into $VENV..."
        "$VENV/bin/python" -m pip install --progress-bar on "dstack[server]==0.22.5"
    fi
fi
step "building target/release/dstack (cargo build --release -p dstack-cli)..."
cargo build --release -p dstack-cli
DSTACK="$REPO/target/release/dstack"

echo "{\"seeded\": $SEEDED, \"active\": $ACTIVE, \"requests\": $REQUESTS, \"cpus\": $(nproc), \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"$([[ "$ORIG" != 0 ]] && echo ", \"orig_seeded\": $SEEDED")}" >"$RES/params.json"
echo "parameters: SEEDED=$SEEDED ACTIVE=$ACTIVE REQUESTS=$REQUESTS PASS_WINDOW=${PASS_WINDOW}s ORIG=$ORIG, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- ours
PORT=$(free_port)
OURS_HOME="$WORK/ours"
OURS_DB="$OURS_HOME/.dstack/server/data/sqlite.db"
step "ours: first start, one real run to copy..."
start_server OURS_PID "$OURS_HOME" "$WORK/ours-first.log" 60 "$DSTACK" server --host 127.0.0.1 --port "$PORT"
$PY apply-one "$PORT" "$TOKEN" scale-template wait
stop_server "$OURS_PID"; OURS_PID=""
[[ -f "$OURS_DB" ]] || { echo "error: no database at $OURS_DB" >&2; exit 1; }
step "ours: seeding $SEEDED finished runs into $OURS_DB..."
$PY seed-ours "$OURS_DB" scale-template "$SEEDED"
step "ours: starting with --log-level debug, applying $ACTIVE sleep-3600 tasks..."
LOG="$WORK/ours.log"
start_server OURS_PID "$OURS_HOME" "$LOG" 60 "$DSTACK" server --host 127.0.0.1 --port "$PORT" --log-level debug
OURS_RSS_IDLE=$($UTIL rss-mb "$OURS_PID")
$PY apply-active "$PORT" "$TOKEN" "$ACTIVE" "$RES/ours-active.json"
FROM=$(stat -c %s "$LOG")
step "ours: all $ACTIVE running; watching orchestrator passes for ${PASS_WINDOW}s..."
waited sleep "$PASS_WINDOW"
TO=$(stat -c %s "$LOG")
OURS_RSS_RUNNING=$($UTIL rss-mb "$OURS_PID")
$PY passes "$LOG" "$FROM" "$TO" "$RES/ours-passes-steady.json"
$PY passes "$LOG" 0 "$TO" "$RES/ours-passes-all.json"
step "ours: runs/list, 3 series x $REQUESTS requests..."
$PY measure-list "$PORT" "$TOKEN" "$REQUESTS" "$RES/ours-list.json" "$OURS_PID"
OURS_RSS=$($UTIL rss-mb "$OURS_PID")
step "ours: stopping the $ACTIVE runs..."
$PY stop-all "$PORT" "$TOKEN" active-
if sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep -qE ' (ERROR|WARN) |panicked'; then
    echo "note: our server logged warnings or errors:"
    sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep -E ' (ERROR|WARN) |panicked' | head -n 10
fi
stop_server "$OURS_PID"; OURS_PID=""
$UTIL kill-jobs "$OURS_HOME"

# ---------------------------------------------------------------- the original
ORIG_RSS="null"
if [[ "$ORIG" != 0 ]]; then
    PORT=$(free_port)
    ORIG_HOME="$WORK/orig"
    ORIG_DB="$ORIG_HOME/.dstack/server/data/sqlite.db"
    step "original: first start (its migrations; it also tries to fetch offer catalogs, which fails offline)..."
    start_server ORIG_PID "$ORIG_HOME" "$WORK/orig-first.log" 240 "$VENV/bin/dstack" server --host 127.0.0.1 --port "$PORT"
    $PY apply-one "$PORT" "$TOKEN" scale-template
    stop_server "$ORIG_PID"; ORIG_PID=""
    step "original: seeding $SEEDED finished runs into $ORIG_DB..."
    $PY seed-orig "$ORIG_DB" scale-template "$SEEDED"
    step "original: starting again..."
    start_server ORIG_PID "$ORIG_HOME" "$WORK/orig.log" 240 "$VENV/bin/dstack" server --host 127.0.0.1 --port "$PORT"
    step "original: runs/list, 3 series x $REQUESTS requests..."
    $PY measure-list "$PORT" "$TOKEN" "$REQUESTS" "$RES/orig-list.json" "$ORIG_PID"
    ORIG_RSS=$($UTIL rss-mb "$ORIG_PID")
    if [[ -n "$(ps -o pid= --ppid "$ORIG_PID")" ]]; then
        echo "note: the original's server process has children; RSS is of the main process only"
    fi
    stop_server "$ORIG_PID"; ORIG_PID=""
fi

echo "{\"ours\": $OURS_RSS, \"ours_idle\": $OURS_RSS_IDLE, \"ours_running\": $OURS_RSS_RUNNING, \"orig\": $ORIG_RSS}" >"$RES/rss.json"
$PY report "$RES"
step "done"
