#!/usr/bin/env bash
# Apply → job process started on the local fleet, measured in one run on 127.0.0.1:
#   ours:  N times (default 30, plus one warm-up), the wall clock just before
#          POST /api/project/main/runs/apply of a task whose first command is
#          `date +%s%N > "$BENCH_OUT"`, then the time written into that file; tasks run one
#          after another (each finishes before the next is applied), distinct run names;
#   floor: the same command spawned directly by the script (`bash -c`), N times.
# Prints median/p90/max of both, the ratio, and PASS/FAIL against the goal (median < 100 ms).
# Usage: bench/apply_latency.sh [N]        (or N=... bench/apply_latency.sh)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${1:-${N:-30}}"
GOAL_MS=100

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill $(jobs -p) 2>/dev/null || true
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    python3 "$REPO/bench/benchutil.py" kill-jobs "$WORK/home" || true
    if [[ $rc -ne 0 && -f "$WORK/server.log" ]]; then
        echo "--- server log (last 30 lines) ---" >&2; tail -n 30 "$WORK/server.log" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building target/release/dstack (cargo build --release -p dstack-cli)..."
cargo build --release -p dstack-cli
DSTACK="$REPO/target/release/dstack"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN="bench-$(date +%s)-token"
mkdir -p "$WORK/home" "$WORK/out"
echo "starting dstack server on 127.0.0.1:$PORT (HOME=$WORK/home)..."
HOME="$WORK/home" DSTACK_SERVER_ADMIN_TOKEN="$TOKEN" \
    "$DSTACK" server --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
python3 "$REPO/bench/benchutil.py" wait-ready "$PORT" 60 || { echo "error: the server did not answer" >&2; exit 1; }

echo "parameters: N=$N sequential tasks, command 'date +%s%N > \$BENCH_OUT', resources cpu=1.. memory=0.1GB.. disk=0.1GB.., $(nproc) CPUs"
# In the background and waited for, so that a signal runs the trap at once.
python3 "$REPO/bench/apply_latency.py" "$PORT" "$TOKEN" "$WORK/out" "$N" "$GOAL_MS" "$WORK/home" &
wait $!
if sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" | grep -qE ' (ERROR|WARN) |panicked'; then
    echo "note: the server logged warnings or errors:"
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" | grep -E ' (ERROR|WARN) |panicked' | head -n 10
fi
