#!/usr/bin/env bash
# Ensures a private PostgreSQL server for the tests is running on 127.0.0.1 and prints its URL.
# Installs Debian's `postgresql` when it is missing. Safe to repeat.
# Usage: export DSTACK_TEST_POSTGRES_URL="$(./scripts/postgres.sh)"
set -euo pipefail

PORT="${DSTACK_TEST_POSTGRES_PORT:-54329}"
DATA="${TMPDIR:-/tmp}/dstack-test-postgres-$(id -u)"

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN="$(find_bin)"
if [[ -z "$BIN" || ! -x "$BIN/initdb" ]]; then
    echo "installing postgresql (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq postgresql >&2
    BIN="$(find_bin)"
fi

# PostgreSQL refuses to run as root: use the `postgres` account then.
as_pg() {
    if [[ "$(id -u)" -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ ! -f "$DATA/PG_VERSION" ]]; then
    mkdir -p "$DATA"
    [[ "$(id -u)" -eq 0 ]] && chown postgres: "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust >/dev/null
fi
if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
        -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1" start >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$PORT/postgres"
