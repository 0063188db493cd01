#!/usr/bin/env bash
# Stops the server pg-up.sh started under DIR and removes DIR.
#   GRACE=0: immediate shutdown (no checkpoint; the data is thrown away anyway). KEEP=1: keep DIR.
set -uo pipefail

DIR=${1:?usage: pg-down.sh DIR}
[[ -d $DIR ]] || { echo "[pg-down] nothing in $DIR" >&2; exit 0; }
T0=$(date +%s%N)
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [[ $(id -u) == 0 ]]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

mode=fast
[[ ${GRACE:-} == 0 ]] && mode=immediate
if [[ -f $DIR/data/postmaster.pid && -x $PG_BIN/pg_ctl ]]; then
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -m "$mode" -w -t 10 -s stop || echo "[pg-down] pg_ctl stop failed" >&2
fi
[[ ${KEEP:-0} == 1 ]] || rm -rf "$DIR"
printf '[pg-down] stopped in %d ms\n' $((($(date +%s%N) - T0) / 1000000)) >&2
