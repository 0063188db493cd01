#!/usr/bin/env bash
# Starts one more radosgw on a cluster that ceph-rgw-up.sh runs under CEPH_DIR, on its own port,
# so that a test can kill this S3 endpoint (and restart it with this script) while every other
# test keeps using the cluster's main radosgw. Same pools, same users, same buckets.
# Idempotent: a running instance NAME that answers is reused.
#
#   eval "$(bash scripts/s3/rgw-extra-up.sh /tmp/ferry-ceph kill1 7481)"   # FERRY_TEST_S3_EXTRA_*
#
# stdout: the export lines; stderr: progress. Its pid file: CEPH_DIR/run/client.rgw.NAME.pid.
# Stop it with: kill "$(cat CEPH_DIR/run/client.rgw.NAME.pid)" (ceph-rgw-down.sh stops it too).
set -euo pipefail

DIR=${1:?usage: rgw-extra-up.sh CEPH_DIR NAME PORT}
NAME=${2:?usage: rgw-extra-up.sh CEPH_DIR NAME PORT}
PORT=${3:?usage: rgw-extra-up.sh CEPH_DIR NAME PORT}
[[ $NAME =~ ^[a-z0-9]+$ ]] || { echo "[rgw-extra-up] NAME must be lower-case letters and digits" >&2; exit 1; }
CONF=$DIR/ceph.conf
[[ -f $CONF ]] || { echo "[rgw-extra-up] no cluster in $DIR (run ceph-rgw-up.sh first)" >&2; exit 1; }
PIDFILE=$DIR/run/client.rgw.$NAME.pid

alive() {
  local pid state
  [[ -s $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}
answers() (
  exec 2>/dev/null
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 line <&3 || true
  [[ ${line:-} == HTTP/1.* ]]
)
exports() { echo "export FERRY_TEST_S3_EXTRA_ENDPOINT=http://127.0.0.1:$PORT"; echo "export FERRY_TEST_S3_EXTRA_PIDFILE=$PIDFILE"; }

if alive && answers; then
  echo "[rgw-extra-up] reusing radosgw $NAME on 127.0.0.1:$PORT" >&2
  exports
  exit 0
fi
if ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; then
  echo "[rgw-extra-up] port $PORT is taken" >&2
  exit 2
fi
mkdir -p "$DIR/rgw-$NAME"
radosgw -c "$CONF" -n "client.rgw.$NAME" \
  --rgw_frontends "beast endpoint=127.0.0.1:$PORT tcp_nodelay=1" \
  --rgw_data "$DIR/rgw-$NAME" --rgw_lc_debug_interval 10
for _ in $(seq 1 200); do
  answers && { echo "[rgw-extra-up] radosgw $NAME answers on 127.0.0.1:$PORT" >&2; exports; exit 0; }
  sleep 0.05
done
echo "[rgw-extra-up] radosgw $NAME did not answer within 10 s; see $DIR/log/client.rgw.$NAME.log" >&2
exit 1
