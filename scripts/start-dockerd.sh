#!/usr/bin/env bash
# Makes sure a dockerd answers at /var/run/docker.sock.
#
#   sudo bash scripts/start-dockerd.sh
#
# - dockerd already answers: nothing to do.
# - systemd is PID 1: `systemctl start docker`.
# - otherwise (containers, CI): starts `dockerd` in its own session with setsid + nohup, logging
#   to /var/log/ferry-dockerd.log. A dockerd that is still starting (its pid file names a live
#   dockerd) is waited for, never started twice; a stale pid file is removed first.
# Then waits up to FERRY_DOCKERD_TIMEOUT seconds (60) for `docker info`; fails with the log's
# tail otherwise. If dockerd fails because iptables does not work here, it is started once more
# with --iptables=false (containers then get no NAT, which ferry's tests do not need).
#
# dockerd gets its defaults plus FERRY_DOCKERD_ARGS (word-split), and /etc/docker/daemon.json if
# there is one. live-restore stays off (dockerd's default): with it, dockerd would not re-send
# Mount after a restart, and the tests expect the plain behaviour.
set -euo pipefail
FERRY_SCRIPT=start-dockerd
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOG=/var/log/ferry-dockerd.log
PIDFILE=/var/run/docker.pid
TIMEOUT="${FERRY_DOCKERD_TIMEOUT:-60}"

ferry_require_root

if ferry_docker_answers; then
  ferry_log "dockerd is running"
  exit 0
fi

command -v dockerd >/dev/null 2>&1 || ferry_die "dockerd not found: run scripts/install-deps.sh first (package docker.io)"
command -v docker >/dev/null 2>&1 || ferry_die "docker (the client) not found: run scripts/install-deps.sh first"

# overlay2 is dockerd's storage driver of choice and loop devices back ferry's pools; both are
# often built into the kernel or not loadable in a container. dockerd falls back to another
# storage driver by itself, and the tests say what they miss, so a failure here is no error.
for mod in overlay loop btrfs; do
  modprobe -q "$mod" >/dev/null 2>&1 || true
done

# The pid of the dockerd named by PIDFILE, if that process is alive and is a dockerd.
live_dockerd_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid="$(tr -dc '0-9' <"$PIDFILE")"
  [ -n "$pid" ] && [ -r "/proc/${pid}/comm" ] || return 1
  [ "$(cat "/proc/${pid}/comm" 2>/dev/null)" = "dockerd" ] || return 1
  printf '%s\n' "$pid"
}

# wait_for_docker PID: 0 once dockerd answers, 1 on timeout, 2 when PID (if given) exits first.
wait_for_docker() {
  local pid="${1:-}" deadline=$((SECONDS + TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ferry_docker_answers; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    sleep 1
  done
  ferry_docker_answers
}

fail_with_log() {
  printf '%s: ERROR: %s\n' "$FERRY_SCRIPT" "$1" >&2
  if [ -f "$LOG" ]; then
    printf -- '--- last lines of %s ---\n' "$LOG" >&2
    tail -n 40 "$LOG" >&2
  fi
  exit 1
}

if ferry_have_systemd; then
  ferry_log "systemctl start docker"
  systemctl start docker || true
  if wait_for_docker ""; then
    ferry_log "dockerd is running"
    exit 0
  fi
  systemctl --no-pager status docker >&2 || true
  ferry_die "dockerd (docker.service) did not answer within ${TIMEOUT}s; see: journalctl -u docker"
fi

# start_dockerd ARGS...: starts dockerd in the background and sets DOCKERD_PID.
DOCKERD_PID=
start_dockerd() {
  printf '\n=== %s: starting dockerd %s ===\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >>"$LOG"
  # setsid: its own session, so that neither this script's end nor a CI job's process group
  # kill takes dockerd (and the containers of other users of this machine) down with it.
  # Every descriptor above 2 is closed first: dockerd must not inherit (and hold for as long as it
  # runs) the lock below, nor a lock of whoever called this script (`flock FILE bash start-dockerd.sh`
  # would otherwise leave FILE locked until dockerd stops).
  # shellcheck disable=SC2016
  setsid nohup bash -c 'for f in /proc/$$/fd/*; do n="${f##*/}"; if [ "$n" -gt 2 ] && [ -e "$f" ]; then eval "exec ${n}>&-"; fi; done; exec dockerd "$@"' \
    dockerd "$@" >>"$LOG" 2>&1 </dev/null &
  DOCKERD_PID=$!
}

# One starter at a time: two runs at once (two terminals, a test and CI) would each start a
# dockerd before either had written its pid file, and the second would fail on it.
mkdir -p /run/lock
exec 9>/run/lock/ferry-start-dockerd.lock
flock -w $((TIMEOUT * 2 + 30)) 9 || ferry_die "another scripts/start-dockerd.sh holds /run/lock/ferry-start-dockerd.lock"
if ferry_docker_answers; then
  ferry_log "dockerd is running"
  exit 0
fi

if pid="$(live_dockerd_pid)"; then
  ferry_log "dockerd (pid ${pid}) is starting; waiting up to ${TIMEOUT}s"
  if wait_for_docker "$pid"; then
    ferry_log "dockerd is running"
    exit 0
  fi
  fail_with_log "dockerd (pid ${pid}, from ${PIDFILE}) runs but does not answer at ${FERRY_DOCKER_SOCKET}; not starting another one"
fi
if [ -f "$PIDFILE" ]; then
  # dockerd refuses to start while its pid file names a live process, even an unrelated one.
  ferry_log "removing stale ${PIDFILE}"
  rm -f "$PIDFILE"
fi

read -r -a extra_args <<<"${FERRY_DOCKERD_ARGS:-}"
mkdir -p "$(dirname "$LOG")"
ferry_log "starting dockerd (log: ${LOG})"
log_start=$(($(stat -c %s "$LOG" 2>/dev/null || echo 0) + 1))
start_dockerd "${extra_args[@]}"
pid="$DOCKERD_PID"
if wait_for_docker "$pid"; then
  ferry_log "dockerd is running (pid ${pid})"
  exit 0
fi

if ! kill -0 "$pid" 2>/dev/null && tail -c "+${log_start}" "$LOG" | grep -qi 'iptables'; then
  ferry_warn "dockerd failed on iptables; starting it again with --iptables=false"
  rm -f "$PIDFILE"
  start_dockerd "${extra_args[@]}" --iptables=false
  pid="$DOCKERD_PID"
  if wait_for_docker "$pid"; then
    ferry_log "dockerd is running (pid ${pid}, --iptables=false)"
    exit 0
  fi
fi

if kill -0 "$pid" 2>/dev/null; then
  fail_with_log "dockerd (pid ${pid}) did not answer at ${FERRY_DOCKER_SOCKET} within ${TIMEOUT}s"
fi
fail_with_log "dockerd exited while starting"
