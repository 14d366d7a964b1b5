#!/usr/bin/env bash
# The main job: build dstack, start `dstack server` (state in ~/.dstack/server), apply the example
# service (examples/service.dstack.yml) to it, and keep the server in the foreground until Ctrl-C.
# Safe to repeat: a second start reuses the state and re-applies the service.
# Usage: ./scripts/run.sh   (DSTACK_SERVER_PORT overrides the port, 3000 by default)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

command -v cargo >/dev/null || { echo "error: cargo not found; install the Rust toolchain (rustup) first" >&2; exit 1; }
# Debian packages: cmake (Pingora's zlib-ng builds with it), bubblewrap (the jobs' sandbox),
# passt (`pasta`: each job's own network).
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v pasta >/dev/null || missing+=(passt)
if (( ${#missing[@]} )); then
    echo "installing ${missing[*]} (Debian packages)"
    SUDO=""; [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release -q -p dstack-cli
DSTACK="$REPO/target/release/dstack"
PORT="${DSTACK_SERVER_PORT:-3000}"

"$DSTACK" validate examples/*.dstack.yml

"$DSTACK" server --host 127.0.0.1 --port "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' INT TERM EXIT
for _ in $(seq 200); do
    curl -sf -o /dev/null -X POST "http://127.0.0.1:$PORT/api/server/get_info" && break
    sleep 0.05
done

# Replace the example service if an earlier run left it active.
"$DSTACK" stop hello -y >/dev/null 2>&1 || true
for _ in $(seq 100); do
    "$DSTACK" ps -a --json | grep -q '"status": "running"' || break
    sleep 0.2
done
"$DSTACK" apply -f examples/service.dstack.yml -y -d
TOKEN="$(awk '/token:/ {print $2; exit}' "$HOME/.dstack/config.yml" | tr -d '"')"
for _ in $(seq 100); do
    curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/proxy/services/main/hello/" && break
    sleep 0.2
done
"$DSTACK" ps
echo
echo "The example service is reachable through the server's proxy:"
echo "  curl -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$PORT/proxy/services/main/hello/"
curl -s -o /dev/null -w "  (it answers with HTTP %{http_code})\n" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/proxy/services/main/hello/"
wait $SERVER
