#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server under DIR for the tests: 127.0.0.1 only, a fixed port,
# trust authentication (loopback only), durability switched off for speed, and a database
# `ferry_test`. Needs the Debian package postgresql (15). As root, the server runs as the
# `postgres` user. Idempotent: a server already running from DIR is reused.
#
#   bash scripts/postgres/pg-up.sh /tmp/ferry-pg
#   eval "$(bash scripts/postgres/pg-up.sh /tmp/ferry-pg)"   # sets FERRY_TEST_POSTGRES_URL
#
# stdout: the export line (and nothing else); stderr: progress and timings.
# Settings (environment): PG_PORT=55432, PG_DB=ferry_test, PG_BIN (default: newest
# /usr/lib/postgresql/*/bin). Exit status: 0 running, 1 failed, 2 the port is taken by something else.
set -euo pipefail

DIR=${1:?usage: pg-up.sh DIR}
PG_PORT=${PG_PORT:-55432}
PG_DB=${PG_DB:-ferry_test}
T0=$(date +%s.%N)
say() { printf '[pg-up %5.1fs] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*" >&2; }
die() { say "ERROR: $*"; exit "${2:-1}"; }

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[[ -x ${PG_BIN:-}/pg_ctl ]] || die "PostgreSQL server binaries not found: apt-get install --no-install-recommends postgresql"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
DATA=$DIR/data
# initdb refuses to run as root: as root, everything runs as the postgres user.
if [[ $(id -u) == 0 ]]; then
  id postgres >/dev/null 2>&1 || die "no postgres user (is the postgresql package installed?)"
  chown postgres: "$DIR"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
URL="postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"
psql_admin() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }
ensure_db() {
  if [[ $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") != 1 ]]; then
    psql_admin -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
    say "database $PG_DB created"
  fi
}
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

if [[ -f $DATA/postmaster.pid ]] && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  running_port=$(sed -n 4p "$DATA/postmaster.pid")
  [[ $running_port == "$PG_PORT" ]] || die "the server in $DATA runs on port $running_port, not $PG_PORT"
  ensure_db
  say "reusing the server running from $DATA on 127.0.0.1:$PG_PORT"
  echo "export FERRY_TEST_POSTGRES_URL=$URL"
  exit 0
fi

port_busy "$PG_PORT" && die "port $PG_PORT is taken by something else (another PostgreSQL? set PG_PORT)" 2

if [[ ! -f $DATA/PG_VERSION ]]; then
  rm -rf "$DATA"
  # --no-sync: a test cluster need not survive a power cut; it saves seconds on slow disks.
  as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 ||
    { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
  mkdir -p "$DIR/run"
  if [[ $(id -u) == 0 ]]; then chown postgres: "$DIR/run"; fi
  cat >>"$DATA/postgresql.conf" <<EOF

# --- Ferry test server (scripts/postgres/pg-up.sh) ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/run'
max_connections = 200
# Test data is disposable: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  # Trust only over loopback (and the private socket directory); nothing else may connect.
  cat >"$DATA/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
  say "initdb done ($("$PG_BIN/postgres" --version))"
fi

as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 -s start || { tail -n 20 "$DIR/server.log" >&2; die "the server did not start"; }
say "server up on 127.0.0.1:$PG_PORT"
ensure_db
if ss -Hltnp 2>/dev/null | grep postgres | awk '{print $4}' | grep -v -E '^127\.' | grep -q .; then
  die "PostgreSQL listens on an address other than 127.0.0.1"
fi
echo "export FERRY_TEST_POSTGRES_URL=$URL"
