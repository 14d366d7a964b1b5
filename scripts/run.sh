#!/usr/bin/env bash
# The main job. Until the server exists (next issue), it builds the `dstack` CLI and validates
# every configuration in examples/. Safe to repeat.
# Usage: ./scripts/run.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

command -v cargo >/dev/null || { echo "error: cargo not found; install the Rust toolchain (rustup) first" >&2; exit 1; }
cargo build --release -q -p dstack-cli
exec ./target/release/dstack validate examples/*.dstack.yml
