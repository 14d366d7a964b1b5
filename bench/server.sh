#!/usr/bin/env bash
# Server benchmark, ours vs the Python original (dstack[server]==0.22.5), measured in one run:
#   1. time from process start to the first answered API call (POST /api/server/get_info),
#   2. resident memory (VmRSS) when idle, 10 s after start with 10 finished runs,
#   3. POST /api/runs/list requests per second with wrk at 8 connections (10 runs stored).
# Installs what it needs (a venv with dstack[server], Debian's wrk). Loopback only.
# Usage: bench/server.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/target/bench-server-venv"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import dstack._internal.server.main' 2>/dev/null || "$VENV/bin/python" -m pip install -q "dstack[server]==0.22.5"
if ! command -v wrk >/dev/null; then
    SUDO=""; [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p dstack-cli
OURS_BIN="$REPO/target/release/dstack"
TOKEN="bench-$(date +%s)-token"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

now_ms() { date +%s%3N; }

# start NAME PORT CMD...: starts a server with its own HOME; prints "pid start_ms ready_ms".
start() {
    local name="$1" port="$2"; shift 2
    mkdir -p "$WORK/$name"
    local t0; t0=$(now_ms)
    HOME="$WORK/$name" DSTACK_SERVER_ADMIN_TOKEN="$TOKEN" "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    for _ in $(seq 6000); do
        if curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/api/server/get_info"; then
            echo "$pid $t0 $(now_ms)"; return 0
        fi
        sleep 0.005
    done
    echo "error: $name did not answer" >&2; cat "$WORK/$name.log" >&2; exit 1
}

seed() {
    local port="$1"
    for i in $(seq 10); do
        local spec="{\"run_spec\":{\"run_name\":\"bench-$i\",\"configuration\":{\"type\":\"task\",\"commands\":[\"true\"],\"resources\":{\"cpu\":\"1..\",\"memory\":\"0.1GB..\",\"disk\":\"0.1GB..\"}},\"profile\":null}}"
        curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/api/project/main/runs/apply" \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            -d "{\"plan\":$(echo "$spec" | sed 's/^{"run_spec"/{"run_spec"/'),\"force\":false}" || true
    done
}

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

cat >"$WORK/list.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"project_name":"main","only_active":false,"include_jobs":true,"job_submissions_limit":1,"limit":100}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA

measure() {
    local name="$1" port="$2"; shift 2
    read -r pid t0 t1 < <(start "$name" "$port" "$@")
    seed "$port"
    sleep 10
    local rss; rss=$(rss_mb "$pid")
    local rps; rps=$(wrk -t2 -c8 -d10s -s "$WORK/list.lua" "http://127.0.0.1:$port/api/runs/list" | awk '/Requests\/sec/ {print $2}')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name: start_to_first_answer_ms=$((t1 - t0)) idle_rss_mb=$rss runs_list_rps=$rps"
}

OURS="$(measure ours 3901 "$OURS_BIN" server --host 127.0.0.1 --port 3901)"
echo "$OURS"
if [[ -n "${OURS_ONLY:-}" ]]; then exit 0; fi
ORIG="$(measure original 3902 "$VENV/bin/dstack" server --host 127.0.0.1 --port 3902)"
echo "$ORIG"
val() { echo "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }
awk -v os="$(val "$OURS" start_to_first_answer_ms)" -v ps="$(val "$ORIG" start_to_first_answer_ms)" \
    -v om="$(val "$OURS" idle_rss_mb)" -v pm="$(val "$ORIG" idle_rss_mb)" \
    -v orps="$(val "$OURS" runs_list_rps)" -v prps="$(val "$ORIG" runs_list_rps)" 'BEGIN {
    printf "start to first answer: ours %d ms, original %d ms: %.0fx faster (goal < 100 ms)\n", os, ps, ps / os
    printf "idle memory: ours %.1f MB, original %.1f MB: %.1fx less (goal < 25 MB)\n", om, pm, pm / om
    printf "runs/list at 8 connections: ours %.0f/s, original %.0f/s: %.1fx (goal >= 40x)\n", orps, prps, orps / prps
}'
