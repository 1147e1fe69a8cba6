#!/usr/bin/env bash
# Makes sure a zfs-fuse daemon answers (`zpool list`), for the zfs backend on hosts whose kernel
# has no ZFS (Debian's zfs-fuse 0.7; the zfs and zpool commands talk to it over a socket).
#
#   sudo bash scripts/start-zfs-fuse.sh
#
# - `zpool list` answers already (zfs-fuse running, or a kernel with OpenZFS): nothing to do.
# - otherwise: any fuse.zfs mount left by a killed daemon answers "Transport endpoint is not
#   connected" until it is lazily unmounted; those go first. Then `zfs-fuse --no-daemon` starts in
#   its own session (its --pidfile is ignored, so this script writes the pid to
#   /run/ferry-zfs-fuse.pid), logging to /var/log/ferry-zfs-fuse.log, and the script waits up to
#   FERRY_ZFS_FUSE_TIMEOUT seconds (30) for `zpool list`.
# Debian's package starts its own daemon only through invoke-rc.d, which install-deps.sh's
# policy-rc.d forbids on hosts without systemd; with systemd, `systemctl start zfs-fuse` is used.
# Pools ferry and its tests make use cachefile=none, so a started daemon imports nothing.
set -euo pipefail
FERRY_SCRIPT=start-zfs-fuse
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOG=/var/log/ferry-zfs-fuse.log
PIDFILE=/run/ferry-zfs-fuse.pid
TIMEOUT="${FERRY_ZFS_FUSE_TIMEOUT:-30}"

ferry_require_root

zfs_answers() { timeout 10 zpool list >/dev/null 2>&1; }

if command -v zpool >/dev/null 2>&1 && zfs_answers; then
  ferry_log "zfs answers"
  exit 0
fi
command -v zfs-fuse >/dev/null 2>&1 || ferry_die "zfs-fuse not found: run scripts/install-deps.sh first (package zfs-fuse)"

# No daemon answers, so every fuse.zfs mount is a dead one's.
awk '$3 == "fuse.zfs" { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
  m="$(printf '%b' "$m")" # /proc/self/mounts writes a space as \040
  ferry_log "lazily unmounting ${m}, left by a zfs-fuse that is gone"
  umount -l "$m" || ferry_warn "cannot unmount ${m}"
done

if ferry_have_systemd; then
  systemctl start zfs-fuse
else
  modprobe -q fuse >/dev/null 2>&1 || true
  # A pid file naming a live zfs-fuse: it is still starting; wait for it, never start two.
  pid=""
  if [ -f "$PIDFILE" ]; then
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    if [ -z "$pid" ] || [ "$(cat "/proc/${pid}/comm" 2>/dev/null)" != "zfs-fuse" ]; then pid=""; fi
  fi
  if [ -z "$pid" ]; then
    # --no-kstat-mount: no /zfs-kstat mount to clean up after it.
    setsid nohup zfs-fuse --no-daemon --no-kstat-mount >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    ferry_log "started zfs-fuse (pid ${pid}, log ${LOG})"
  fi
fi

deadline=$((SECONDS + TIMEOUT))
until zfs_answers; do
  if [ -n "${pid:-}" ] && ! kill -0 "$pid" 2>/dev/null; then
    tail -n 20 "$LOG" >&2 || true
    ferry_die "zfs-fuse exited (log: ${LOG})"
  fi
  [ "$SECONDS" -lt "$deadline" ] || ferry_die "zfs-fuse did not answer within ${TIMEOUT} s (log: ${LOG})"
  sleep 0.2
done
ferry_log "zfs-fuse answers"
