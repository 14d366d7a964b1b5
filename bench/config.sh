#!/usr/bin/env bash
# Benchmark: Rust dstack-core config parsing vs serde_yaml floor vs the Python original
# (dstack==0.22.5), on the upstream example configurations (MANIFEST.tsv, expected_parse=yes).
# Usage: bench/config.sh        (from any directory; DSTACK_SHARED overrides ../shared)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

EXAMPLES="${DSTACK_SHARED:-$REPO/../shared}/conformance/upstream-examples"
if [[ ! -f "$EXAMPLES/MANIFEST.tsv" ]]; then
    echo "error: upstream examples not found at $EXAMPLES (set DSTACK_SHARED)" >&2
    exit 1
fi

# Python original in a private venv (target/ is git-ignored); created/installed only once.
VENV="$REPO/target/bench-venv"
PY="$VENV/bin/python"
[[ -x "$PY" ]] || python3 -m venv "$VENV"
if ! "$PY" -c 'import dstack' 2>/dev/null; then
    "$PY" -m pip install -q dstack==0.22.5
fi

# num LABEL TEXT: the us/doc figure from a line "LABEL: <N> docs, <X> us/doc ...".
num() {
    local v
    v="$(printf '%s\n' "$2" | sed -n "s/^$1: [0-9]* docs, \([0-9.]*\) us\/doc.*/\1/p" | head -n1)"
    if [[ -z "$v" ]]; then
        echo "error: no '$1: <N> docs, <X> us/doc' line in output" >&2
        exit 1
    fi
    echo "$v"
}

echo "== rust (cargo example bench_config)"
if ! RUST_OUT="$(cargo run --release -q -p dstack-core --example bench_config -- "$EXAMPLES")"; then
    echo "error: cargo bench_config failed" >&2
    exit 1
fi
echo "$RUST_OUT"

echo "== dstack validate: per-document cost inside one process (best of 10 runs each)"
# Marginal cost = (time for all files - time for one file) / (files - 1): process start-up,
# which is the same for one file or many, cancels out.
cargo build --release -q -p dstack-cli
mapfile -t YES_FILES < <(awk -F'\t' 'NR==1 {for (i=1;i<=NF;i++) col[$i]=i; next} $col["expected_parse"]=="yes" {print $col["path"]}' "$EXAMPLES/MANIFEST.tsv")
best_ns() {
    local best="" start took
    for _ in $(seq 10); do
        start=$(date +%s%N)
        (cd "$EXAMPLES" && "$REPO/target/release/dstack" validate "$@" >/dev/null)
        took=$(( $(date +%s%N) - start ))
        if [[ -z "$best" || "$took" -lt "$best" ]]; then best=$took; fi
    done
    echo "$best"
}
ONE="$(best_ns "${YES_FILES[0]}")"
ALL="$(best_ns "${YES_FILES[@]}")"
VALIDATE_OUT="$(awk -v one="$ONE" -v all="$ALL" -v n="${#YES_FILES[@]}" 'BEGIN {
    printf "dstack-validate-cli: %d docs, %.1f us/doc (marginal; %.2f ms for 1 file, %.2f ms for %d)\n", n, (all - one) / 1000 / (n - 1), one / 1e6, all / 1e6, n }')"
echo "$VALIDATE_OUT"

echo "== python original"
if ! PY_OUT="$("$PY" "$REPO/bench/upstream_parse.py" "$EXAMPLES")"; then
    echo "error: python baseline failed (see stderr above)" >&2
    exit 1
fi
echo "$PY_OUT"

OURS="$(num rust-dstack-core "$RUST_OUT")"
CLI="$(num dstack-validate-cli "$VALIDATE_OUT")"
FLOOR="$(num floor-serde-yaml-value "$RUST_OUT")"
ORIG="$(num python-original "$PY_OUT")"

echo "== summary (us/doc: ours=$OURS floor=$FLOOR cli=$CLI original=$ORIG)"
awk -v o="$OURS" -v f="$FLOOR" -v p="$ORIG" -v c="$CLI" 'BEGIN {
    if (o <= 0 || f <= 0) { print "error: non-positive rust timing" > "/dev/stderr"; exit 1 }
    printf "ours / floor = %.2fx (goal <= 1.25x)\n", o / f
    printf "original / ours = %.1fx faster\n", p / o
    printf "original / floor = %.1fx\n", p / f
    printf "dstack validate (one process, %s us/doc) / library = %.2fx\n", c, c / o
}'
