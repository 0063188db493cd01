#!/usr/bin/env bash
# Stops the cluster ceph-rgw-up.sh started under DIR and removes DIR.
#   GRACE=3 (default): seconds to wait after SIGTERM before SIGKILL; GRACE=0 kills at once.
#   KEEP=1: stop the daemons but keep DIR (logs).
set -uo pipefail

DIR=${1:?usage: ceph-rgw-down.sh DIR}
GRACE=${GRACE:-3}
[[ -d $DIR ]] || { echo "[ceph-rgw-down] nothing in $DIR" >&2; exit 0; }
T0=$(date +%s%N)

# A killed daemon may stay a zombie when PID 1 does not reap: zombies count as stopped.
alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

pids=()
for f in "$DIR"/run/*.pid; do
  [[ -s $f ]] || continue
  pid=$(<"$f")
  # Only a Ceph daemon: a stale pid file must not make us kill some unrelated process.
  if alive "$pid" && grep -qE 'ceph-(mon|osd)|radosgw' "/proc/$pid/cmdline" 2>/dev/null; then pids+=("$pid"); fi
done

# radosgw first, then the osd, then the mon, each given the grace period together.
if ((${#pids[@]})); then
  if ((GRACE > 0)); then
    kill -TERM "${pids[@]}" 2>/dev/null
    deadline=$(($(date +%s) + GRACE))
    while (($(date +%s) < deadline)); do
      left=0
      for p in "${pids[@]}"; do alive "$p" && left=1; done
      ((left)) || break
      sleep 0.1
    done
  fi
  for p in "${pids[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
  # A killed OSD can sit in uninterruptible I/O for a moment, still holding its ports: wait, so
  # that an up script right after this does not find them taken.
  for _ in $(seq 1 100); do
    left=0
    for p in "${pids[@]}"; do alive "$p" && left=1; done
    ((left)) || break
    sleep 0.05
  done
fi

[[ ${KEEP:-0} == 1 ]] || rm -rf "$DIR"
printf '[ceph-rgw-down] stopped %d daemon(s) in %d ms\n' "${#pids[@]}" $((($(date +%s%N) - T0) / 1000000)) >&2
