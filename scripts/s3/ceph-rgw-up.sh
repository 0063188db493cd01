#!/usr/bin/env bash
# Starts a single-node Ceph cluster (1 mon + 1 osd + radosgw, no mgr, no cephx) under DIR,
# everything bound to 127.0.0.1, for the S3 tests. Needs the Debian packages
#   ceph-mon ceph-osd radosgw ceph-common
# and root (or a user that may run the daemons). Idempotent: if DIR already holds a running
# cluster it is reused; if only radosgw died, radosgw alone is restarted.
#
#   bash scripts/s3/ceph-rgw-up.sh /tmp/ferry-ceph
#   eval "$(bash scripts/s3/ceph-rgw-up.sh /tmp/ferry-ceph)"   # sets FERRY_TEST_S3_*
#
# stdout: the FERRY_TEST_S3_* exports (and nothing else); stderr: progress and timings.
# Settings (environment): STORE=bluestore|memstore (memstore keeps objects in RAM: quick to
# start, fine for small objects), MON_V2=3300 MON_V1=6789 RGW_PORT=7480, ACCESS_KEY, SECRET_KEY.
# Exit status: 0 running, 1 failed to start, 2 a port is taken by something else.
set -euo pipefail

DIR=${1:?usage: ceph-rgw-up.sh DIR}
STORE=${STORE:-bluestore}
MON_V2=${MON_V2:-3300}
MON_V1=${MON_V1:-6789}
RGW_PORT=${RGW_PORT:-7480}
ACCESS_KEY=${ACCESS_KEY:-FERRYTESTACCESSKEY01}
SECRET_KEY=${SECRET_KEY:-ferryTestSecretKey0000000000000000000001}

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CONF=$DIR/ceph.conf
T0=$(date +%s.%N)
say() { printf '[ceph-rgw-up %5.1fs] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*" >&2; }
die() { say "ERROR: $*"; exit "${2:-1}"; }

for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph uuidgen ss; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common"
done

# PID 1 in some sandboxes does not reap daemonised processes, so a killed daemon lingers as a
# zombie and `kill -0` still succeeds: read the state from /proc instead.
alive() {
  local pidfile=$1 pid state
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
rgw_answers() (
  # Any HTTP answer from the gateway will do: anonymous GET / is a ListBuckets (200 or 403).
  # A subshell, so the redirections of exec stay inside it.
  exec 2>/dev/null
  exec 3<>"/dev/tcp/127.0.0.1/$RGW_PORT" || exit 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 line <&3 || true
  [[ ${line:-} == HTTP/1.* ]]
)
exports() {
  echo "export FERRY_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT"
  echo "export FERRY_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
  echo "export FERRY_TEST_S3_SECRET_KEY=$SECRET_KEY"
  echo "export FERRY_TEST_CEPH_DIR=$DIR"
}
start_rgw() {
  radosgw -c "$CONF" -n client.rgw.a
  for _ in $(seq 1 200); do
    rgw_answers && return 0
    alive "$DIR/run/client.rgw.a.pid" || [[ ! -s $DIR/run/client.rgw.a.pid ]] || die "radosgw exited; see $DIR/log/client.rgw.a.log"
    sleep 0.05
  done
  die "radosgw did not answer on 127.0.0.1:$RGW_PORT within 10 s; see $DIR/log/client.rgw.a.log"
}

# --- reuse ---------------------------------------------------------------------------------
if [[ -f $CONF ]] && alive "$DIR/run/mon.a.pid" && alive "$DIR/run/osd.0.pid"; then
  if alive "$DIR/run/client.rgw.a.pid" && rgw_answers; then
    say "reusing the running cluster in $DIR (S3 at http://127.0.0.1:$RGW_PORT)"
    exports
    exit 0
  fi
  port_busy "$RGW_PORT" && die "port $RGW_PORT is taken by something that is not this cluster's radosgw" 2
  say "mon and osd are running, radosgw is not: restarting radosgw"
  start_rgw
  say "radosgw answers on http://127.0.0.1:$RGW_PORT"
  exports
  exit 0
fi

# --- fresh start ---------------------------------------------------------------------------
# A leftover radosgw on the port would silently answer for the new cluster: refuse instead.
for p in "$MON_V2" "$MON_V1" "$RGW_PORT"; do
  port_busy "$p" && die "port $p on this machine is taken (another Ceph? stop it with ceph-rgw-down.sh, or set MON_V2/MON_V1/RGW_PORT)" 2
done
# Whatever is left in DIR belongs to a dead cluster; stop any survivor before wiping it.
if [[ -e $DIR/run ]]; then
  GRACE=0 bash "$(dirname "$0")/ceph-rgw-down.sh" "$DIR" >/dev/null 2>&1 || true
  mkdir -p "$DIR"
fi
rm -rf "${DIR:?}"/{mon,osd,run,log,rgw,monmap,ceph.conf}
mkdir -p "$DIR"/{mon/ceph-a,osd/ceph-0,run,log,rgw}

FSID=$(uuidgen)
cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]
mon_initial_members = a
# No cephx on a throw-away loopback cluster; crc mode, or radosgw asks the mon for "secure"
# mode and waits rgw_init_timeout (300 s) before giving up.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
# Without cluster_addr/cluster_network the OSD heartbeat ports bind 0.0.0.0.
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
public_network = 127.0.0.0/8
cluster_network = 127.0.0.0/8
ms_bind_port_min = 6800
ms_bind_port_max = 7300
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_warn_on_pool_no_redundancy = false
# The default 1 s makes every pool command wait a second; setup took 20 s instead of 6.
paxos_propose_interval = 0.05
run_dir = $DIR/run
pid_file = $DIR/run/\$name.pid
admin_socket = $DIR/run/\$name.asok
log_file = $DIR/log/\$name.log
mon_data = $DIR/mon/ceph-\$id
osd_data = $DIR/osd/ceph-\$id
osd_objectstore = $STORE
bluestore_block_path = $DIR/osd/ceph-\$id/block.file
bluestore_block_create = true
bluestore_block_size = 21474836480
bluestore_fsck_on_mkfs = false
osd_memory_target = 1073741824
# A radosgw that dies (the kill tests SIGKILL one) leaves its watches on the control objects; until
# they time out, every bucket create or delete on the cluster waits for it (30 s by default).
osd_client_watch_timeout = 5
[client.rgw.a]
# tcp_nodelay: without it every small request waits ~40 ms (Nagle + delayed ACK).
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw_data = $DIR/rgw
# One lifecycle "day" lasts 10 s, so lifecycle rules can be tested.
rgw_lc_debug_interval = 10
EOF
say "config written ($STORE)"

monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]" "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" 2>>"$DIR/log/mkfs.log"
ceph-mon -c "$CONF" -i a
C="ceph -c $CONF --connect-timeout 15"
$C mon stat >/dev/null
say "mon up"

OSD_UUID=$(uuidgen)
OSD_ID=$($C osd new "$OSD_UUID")
[[ $OSD_ID == 0 ]] || die "unexpected osd id $OSD_ID"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>>"$DIR/log/mkfs.log" >/dev/null
ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/osd.0.start.log"
say "osd started"

# RGW would create its pools lazily, stalling the first CreateBucket and PutObject ~2 s each.
# One ceph process reads all the commands from stdin (one CLI start instead of fourteen).
pools=(.rgw.root default.rgw.log default.rgw.control default.rgw.meta default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec)
{
  for p in "${pools[@]}"; do
    echo "osd pool create $p 8 8"
    echo "osd pool application enable $p rgw"
  done
} | $C >/dev/null 2>>"$DIR/log/pools.log" || {
  for p in "${pools[@]}"; do
    $C osd pool create "$p" 8 8 >/dev/null 2>&1
    $C osd pool application enable "$p" rgw >/dev/null 2>&1
  done
}
say "pools created"

for _ in $(seq 1 300); do
  $C osd stat 2>/dev/null | grep -q '1 up' && break
  sleep 0.1
done
$C osd stat 2>/dev/null | grep -q '1 up' || die "osd.0 did not come up; see $DIR/log/osd.0.log"
say "osd up"

radosgw-admin -c "$CONF" -n client.rgw.a user create --uid=ferry-test --display-name="Ferry tests" \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>>"$DIR/log/radosgw-admin.log"
say "S3 user created"

start_rgw
say "radosgw answers on http://127.0.0.1:$RGW_PORT"
# Only loopback: a leak here would expose an unauthenticated cluster.
if ss -Hltnp 2>/dev/null | grep -E 'ceph-(mon|osd)|radosgw' | awk '{print $4}' | grep -v -E '^127\.' | grep -q .; then
  ss -Hltnp | grep -E 'ceph-(mon|osd)|radosgw' >&2
  die "a Ceph daemon listens on an address other than 127.0.0.1"
fi
exports
