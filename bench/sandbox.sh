#!/usr/bin/env bash
# What the sandbox costs, in one run on 127.0.0.1: two servers, one sandboxing jobs (the
# default: bubblewrap + a network namespace joined by pasta) and one started with
# --no-sandbox; the same tasks on both, interleaved:
#   - start latency: apply -> the job's first command (N tasks each, default 20);
#   - a CPU-bound job's run time, timed inside the job (CPU_N tasks each, default 5), and the
#     same loop run directly by the script.
# Prints median/p90/max and the ratios sandboxed/bare.
# Usage: bench/sandbox.sh [N] [CPU_N]
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${1:-${N:-20}}"
CPU_N="${2:-${CPU_N:-5}}"

for tool in bwrap pasta; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (scripts/test.sh installs it)" >&2; exit 1; }
done

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill $(jobs -p) 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    for mode in sandboxed bare; do
        python3 "$REPO/bench/benchutil.py" kill-jobs "$WORK/$mode" >/dev/null || true
        if [[ $rc -ne 0 && -f "$WORK/$mode.log" ]]; then
            echo "--- $mode server log (last 20 lines) ---" >&2; tail -n 20 "$WORK/$mode.log" >&2
        fi
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building target/release/dstack (cargo build --release -p dstack-cli)..."
cargo build --release -p dstack-cli
DSTACK="$REPO/target/release/dstack"
TOKEN="bench-$(date +%s)-token"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -A PORTS
for mode in sandboxed bare; do
    PORTS[$mode]=$(free_port)
    mkdir -p "$WORK/$mode"
    flags=()
    [[ $mode == bare ]] && flags=(--no-sandbox)
    echo "starting the $mode server on 127.0.0.1:${PORTS[$mode]} (HOME=$WORK/$mode)..."
    HOME="$WORK/$mode" DSTACK_SERVER_ADMIN_TOKEN="$TOKEN" \
        "$DSTACK" server --host 127.0.0.1 --port "${PORTS[$mode]}" "${flags[@]}" >"$WORK/$mode.log" 2>&1 &
    PIDS+=($!)
    python3 "$REPO/bench/benchutil.py" wait-ready "${PORTS[$mode]}" 60 || { echo "error: the $mode server did not answer" >&2; exit 1; }
done
if sed 's/\x1b\[[0-9;]*m//g' "$WORK/sandboxed.log" | grep -q 'not fully isolated\|unsandboxed'; then
    echo "error: the sandboxed server does not isolate jobs here:" >&2
    grep -i 'isolated\|unsandboxed' "$WORK/sandboxed.log" >&2
    exit 1
fi

echo "parameters: N=$N start-latency tasks and CPU_N=$CPU_N CPU-bound tasks per server, $(nproc) CPUs, $(pasta --version 2>/dev/null | head -n1), $(bwrap --version)"
mkdir -p "$WORK/direct"
BENCH_WORK="$WORK/direct" python3 "$REPO/bench/sandbox.py" "$N" "$CPU_N" \
    "${PORTS[sandboxed]}" "$WORK/sandboxed" "${PORTS[bare]}" "$WORK/bare" "$TOKEN" &
wait $!
