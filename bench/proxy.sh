#!/usr/bin/env bash
# Proxy benchmark, measured in one run on 127.0.0.1 with wrk (2 threads, 64 connections, 10 s),
# ROUNDS rounds (default 3) with the targets interleaved; medians are compared:
#   1. the backend directly: nginx (one worker) returning a short body, run as a dstack service on
#      the local fleet;
#   2. nginx as a reverse proxy to it (keepalive upstream), with 1 worker and with `auto`;
#   3. our proxy (the server's port, /proxy/services/main/<run>/) at its defaults, auth on.
# Prints requests/s, p99 latency and the ratios. Installs Debian's nginx and wrk when missing.
# Usage: bench/proxy.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SUDO=""; [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]] || ! command -v wrk >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light wrk >/dev/null || \
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx wrk >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
cargo build --release -q -p dstack-cli
DSTACK="$REPO/target/release/dstack"
WORK="$(mktemp -d)"
export HOME="$WORK/home"; mkdir -p "$HOME"
cleanup() {
    "$DSTACK" stop bench-backend -y -x >/dev/null 2>&1 || true
    kill $(jobs -p) 2>/dev/null || true
    for conf in "$WORK"/proxy-*.conf; do [[ -f "$conf" ]] && "$NGINX" -c "$conf" -s stop 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVER_PORT=$(free_port); BACKEND_PORT=$(free_port); NGINX1_PORT=$(free_port); NGINXA_PORT=$(free_port)

"$DSTACK" server --host 127.0.0.1 --port "$SERVER_PORT" >"$WORK/server.log" 2>&1 &
for _ in $(seq 200); do curl -sf -o /dev/null -X POST "http://127.0.0.1:$SERVER_PORT/api/server/get_info" && break; sleep 0.05; done
TOKEN="$(sed -n 's/The admin token is "\(.*\)"/\1/p' "$WORK/server.log")"

# The backend: nginx with one worker returning a short body, as a dstack service.
mkdir -p "$WORK/backend"
cat >"$WORK/backend/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 "hello from the backend\n"; } }
}
CONF
cat >"$WORK/service.dstack.yml" <<YML
type: service
name: bench-backend
port: $BACKEND_PORT
commands:
  - exec $NGINX -c $WORK/backend/nginx.conf -g 'daemon off;'
resources: {cpu: 1.., memory: 0.1GB.., disk: 0.1GB..}
YML
"$DSTACK" apply -f "$WORK/service.dstack.yml" -y -d >/dev/null
URL="http://127.0.0.1:$SERVER_PORT/proxy/services/main/bench-backend/"
for _ in $(seq 200); do curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL" && break; sleep 0.1; done

# nginx as a reverse proxy to the backend, keepalive upstream.
proxy_conf() {
    local workers="$1" port="$2"
    cat >"$WORK/proxy-$port.conf" <<CONF
worker_processes $workers;
pid $WORK/proxy-$port.pid;
error_log $WORK/proxy-$port.log;
events { worker_connections 4096; }
http {
    access_log off;
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
    "$NGINX" -c "$WORK/proxy-$port.conf"
}
proxy_conf 1 "$NGINX1_PORT"
proxy_conf auto "$NGINXA_PORT"
sleep 0.5

run_wrk() {
    local label="$1" url="$2"; shift 2
    local out; out=$(wrk -t2 -c64 -d10s --latency "$@" "$url")
    local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    local p99; p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    echo "$label rps=$rps p99=$p99"
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v); print v } else { sub(/s/, "", v); print v * 1000 } }'; }

# Several rounds, the targets interleaved in each, so that a slow spell of this shared machine
# hits them alike; the median of each target is compared.
ROUNDS="${ROUNDS:-3}"
: >"$WORK/results"
for round in $(seq "$ROUNDS"); do
    for target in direct nginx-1-worker nginx-auto ours; do
        case "$target" in
            direct) line=$(run_wrk direct "http://127.0.0.1:$BACKEND_PORT/") ;;
            nginx-1-worker) line=$(run_wrk nginx-1-worker "http://127.0.0.1:$NGINX1_PORT/") ;;
            nginx-auto) line=$(run_wrk nginx-auto "http://127.0.0.1:$NGINXA_PORT/") ;;
            ours) line=$(run_wrk ours "$URL" -H "Authorization: Bearer $TOKEN") ;;
        esac
        echo "round $round: $line"
        echo "$line" >>"$WORK/results"
    done
done
# The median requests/s of a target over the rounds, with the p99 of that same run.
median_of() {
    grep "^$1 " "$WORK/results" | sort -t= -k2 -g | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'
}
DIRECT=$(median_of direct); N1=$(median_of nginx-1-worker); NA=$(median_of nginx-auto); OURS=$(median_of ours)
echo "medians over $ROUNDS rounds:"; printf '  %s\n' "$DIRECT" "$N1" "$NA" "$OURS"

field() { echo "$1" | sed -n "s/.*$2=\([^ ]*\).*/\1/p"; }
best_nginx="$N1"
if awk -v a="$(field "$NA" rps)" -v b="$(field "$N1" rps)" 'BEGIN { exit !(a > b) }'; then best_nginx="$NA"; fi
awk -v d="$(field "$DIRECT" rps)" -v n="$(field "$best_nginx" rps)" -v o="$(field "$OURS" rps)" \
    -v np="$(to_ms "$(field "$best_nginx" p99)")" -v op="$(to_ms "$(field "$OURS" p99)")" 'BEGIN {
    printf "nginx (best of 1 worker / auto): %.0f rps = %.2fx of direct, p99 %.2f ms\n", n, n / d, np
    printf "ours: %.0f rps = %.2fx of direct, p99 %.2f ms\n", o, o / d, op
    printf "ours / nginx = %.2fx requests/s, p99 %.2fx (goal: >= 1x, p99 no worse)\n", o / n, op / np
}'
# With `auto` the faster by requests/s, its p99 can be far worse than one worker's; show both.
awk -v n="$(field "$N1" rps)" -v o="$(field "$OURS" rps)" \
    -v np="$(to_ms "$(field "$N1" p99)")" -v op="$(to_ms "$(field "$OURS" p99)")" 'BEGIN {
    printf "ours / nginx with 1 worker = %.2fx requests/s, p99 %.2fx\n", o / n, op / np
}'
