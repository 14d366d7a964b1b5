#!/usr/bin/env bash
# Runs every test of the project. Safe to repeat; installs what is missing:
#   - rustfmt/clippy components (rustup); Debian's cmake (Pingora's zlib-ng), bubblewrap and passt (the
#     jobs' sandbox and network); Debian's postgresql for the state tests (a private
#     server on 127.0.0.1); a Python venv with maturin + pytest (pip) for the bindings.
# Usage: ./scripts/test.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "error: cargo not found; install the Rust toolchain (rustup) first" >&2; exit 1; }
# Debian packages: cmake (Pingora's zlib-ng builds with it), bubblewrap (the jobs' sandbox),
# passt (`pasta`: each job's own network).
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v pasta >/dev/null || missing+=(passt)
# acl (`setfacl`): the unprivileged-server test lets its account open /dev/net/tun where only root may.
command -v setfacl >/dev/null || missing+=(acl)
if (( ${#missing[@]} )); then
    step "installing ${missing[*]} (Debian packages)"
    SUDO=""; [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    step "installing rustfmt and clippy"
    rustup component add rustfmt clippy
fi
if [[ ! -f "$REPO/../shared/conformance/config-vectors.yaml" ]]; then
    echo "warning: ../shared is absent: conformance, upstream-example and transcript tests will SKIP" >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy -q --workspace --all-targets -- -D warnings

step "PostgreSQL for the state tests"
DSTACK_TEST_POSTGRES_URL="$(./scripts/postgres.sh)"
export DSTACK_TEST_POSTGRES_URL
echo "using $DSTACK_TEST_POSTGRES_URL"

step "the upstream CLI (dstack==0.22.5) in a venv, for the compatibility test"
UPSTREAM_VENV="$REPO/target/upstream-venv"
[[ -x "$UPSTREAM_VENV/bin/python" ]] || python3 -m venv "$UPSTREAM_VENV"
if [[ ! -x "$UPSTREAM_VENV/bin/dstack" ]]; then
    "$UPSTREAM_VENV/bin/python" -m pip install -q "dstack==0.22.5"
fi
export DSTACK_UPSTREAM_VENV="$UPSTREAM_VENV"

step "cargo test (dstack-core with the server, dstack-cli)"
cargo test -q -p dstack-core -p dstack-cli --features dstack-core/server

step "end-to-end: the server and CLIs as processes (dstack-tests: runs, logs, security, robustness, the API surface, the upstream CLI)"
cargo build -q -p dstack-cli
cargo test -q -p dstack-tests

step "conformance vectors (release build, as documented)"
if [[ -f "$REPO/../shared/conformance/config-vectors.yaml" ]]; then
    cargo run --release -q -p dstack-core --example conformance -- "$REPO/../shared/conformance/config-vectors.yaml" | tail -n 1
fi

step "Python bindings (maturin develop + pytest)"
VENV="$REPO/target/py-venv"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" -c 'import maturin, pytest, jsonschema, yaml' 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "maturin>=1.7,<2" "pytest>=8" "jsonschema>=4" "pyyaml>=6"
fi
(cd dstack-bindings && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop -q)
"$VENV/bin/python" -m pytest -q dstack-bindings/tests
