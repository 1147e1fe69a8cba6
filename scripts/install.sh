#!/usr/bin/env bash
# Installs and starts ferry on this host as a single-host Docker volume plugin (`ferry serve`:
# control + agent in one process, state under /var/lib/ferry). Debian 12, as root:
#
#   sudo bash scripts/install.sh
#
# Steps: scripts/install-deps.sh (apt), scripts/start-dockerd.sh, `npm ci` (skipped when
# node_modules already matches package-lock.json) and `npm run build` in this repository, a
# symlink /usr/local/bin/ferry -> <repo>/bin/ferry, then `ferry serve` in the background:
#
# - systemd is PID 1: scripts/ferry.service, filled in, becomes /etc/systemd/system/ferry.service
#   and `systemctl enable --now ferry` starts it (journalctl -u ferry for its log).
# - otherwise (containers, CI): setsid + nohup, log in /var/log/ferry.log, pid in
#   /run/ferry/ferry.pid.
#
# If /etc/ferry/config.json exists (or the file FERRY_CONFIG names), ferry serve gets
# `--config` with it. Keep the API socket at its default there, or `ferry status` (and this
# script's wait for it) will not find ferry.
#
# Running it again is safe. A ferry that this script started and that answers is left alone,
# unless what it runs has changed since it started (the built code in dist/, the node version,
# package-lock.json, the config file or the unit file): then it is restarted, since a rebuild
# is what a second run is usually for. A restart does not disturb running containers: ferry
# leaves its volumes mounted when it stops and finds them again when it starts, and the plugin
# socket is back within seconds. A ferry that answers but was started some other way (no pid
# file of ours, no systemd unit) is never touched.
#
# Then waits up to FERRY_START_TIMEOUT seconds (60) for `ferry status` to answer and prints it.
set -euo pipefail
FERRY_SCRIPT=install
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO="$(ferry_repo_root)"
CONFIG="${FERRY_CONFIG:-/etc/ferry/config.json}"
TIMEOUT="${FERRY_START_TIMEOUT:-60}"
RUN_DIR=/run/ferry
PIDFILE="${RUN_DIR}/ferry.pid"
# What the running ferry was started from (see build_id).
BUILDFILE="${RUN_DIR}/ferry.build"
LOG=/var/log/ferry.log
UNIT=/etc/systemd/system/ferry.service
LINK=/usr/local/bin/ferry

ferry_require_root

bash "${REPO}/scripts/install-deps.sh"
bash "${REPO}/scripts/start-dockerd.sh"

[ "$(ferry_node_major)" -ge 20 ] ||
  ferry_die "ferry needs Node.js >= 20 (node is $(node --version 2>/dev/null || echo missing)); install it and run this again"
NODE="$(command -v node)"

ferry_npm_ci "$REPO"
ferry_log "npm run build"
(cd "$REPO" && npm run build --silent)
[ -f "${REPO}/dist/src/cli/main.js" ] || ferry_die "the build made no dist/src/cli/main.js"
[ -x "${REPO}/bin/ferry" ] || ferry_die "${REPO}/bin/ferry is not executable"

ln -sfn "${REPO}/bin/ferry" "$LINK"
ferry_log "${LINK} -> ${REPO}/bin/ferry"

SERVE_ARGS=()
if [ -f "$CONFIG" ]; then
  SERVE_ARGS=(--config "$CONFIG")
  ferry_log "using config ${CONFIG}"
fi

# A digest of everything the running process depends on; a change means "restart".
build_id() {
  {
    (cd "$REPO" && find dist/src -type f -name '*.js' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum "${REPO}/package-lock.json" "${REPO}/bin/ferry"
    "$NODE" --version
    printf '%s\n' "${SERVE_ARGS[@]+"${SERVE_ARGS[@]}"}"
    if [ -f "$CONFIG" ]; then sha256sum "$CONFIG"; fi
    if ferry_have_systemd && [ -f "$UNIT" ]; then sha256sum "$UNIT"; fi
  } | sha256sum | cut -d' ' -f1
}

ferry_answers() {
  timeout 10 "$LINK" status >/dev/null 2>&1
}

# The pid in PIDFILE when that process is alive and is this repository's `ferry serve`.
our_pid() {
  local pid cmdline
  [ -f "$PIDFILE" ] || return 1
  pid="$(tr -dc '0-9' <"$PIDFILE")"
  [ -n "$pid" ] && [ -r "/proc/${pid}/cmdline" ] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null || true)"
  case "$cmdline" in
    *"${REPO}/bin/ferry serve"*) printf '%s\n' "$pid" ;;
    *) return 1 ;;
  esac
}

start_nohup() {
  mkdir -p "$RUN_DIR" "$(dirname "$LOG")"
  printf '\n=== %s: starting ferry serve %s ===\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "${SERVE_ARGS[*]+"${SERVE_ARGS[*]}"}" >>"$LOG"
  # Its own session: the end of this script, or of the shell or CI job that ran it, does not
  # take ferry with it. bin/ferry runs itself: its shebang finds $NODE on PATH and gives it
  # ferry's V8 flags.
  setsid nohup "${REPO}/bin/ferry" serve "${SERVE_ARGS[@]+"${SERVE_ARGS[@]}"}" >>"$LOG" 2>&1 </dev/null &
  printf '%s\n' "$!" >"$PIDFILE"
  printf '%s\n' "$1" >"$BUILDFILE"
  ferry_log "started ferry serve (pid $!, log ${LOG})"
}

stop_nohup() {
  local pid="$1" _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 1
  done
  ferry_warn "ferry (pid ${pid}) did not stop within 30s of SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 1
}

sed_escape() {
  printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

if ferry_have_systemd; then
  rendered="$(mktemp)"
  trap 'rm -f "$rendered"' EXIT
  unit_args=""
  # Quoted for systemd's ExecStart, which splits on spaces.
  if [ -f "$CONFIG" ]; then unit_args="--config \"${CONFIG}\""; fi
  sed -e "s|@NODE_DIR@|$(sed_escape "$(dirname "$NODE")")|g" \
    -e "s|@REPO@|$(sed_escape "$REPO")|g" \
    -e "s|@SERVE_ARGS@|$(sed_escape "$unit_args")|g" \
    "${REPO}/scripts/ferry.service" >"$rendered"
  if ! cmp -s "$rendered" "$UNIT"; then
    install -m 0644 "$rendered" "$UNIT"
    systemctl daemon-reload
    ferry_log "installed ${UNIT}"
  fi
  want="$(build_id)"
  if systemctl is-active --quiet ferry; then
    if [ "$(cat "$BUILDFILE" 2>/dev/null || true)" != "$want" ]; then
      ferry_log "restarting ferry: its code, config or unit changed"
      systemctl restart ferry
    else
      ferry_log "ferry is running (unchanged)"
    fi
    systemctl enable --quiet ferry
  else
    ferry_log "systemctl enable --now ferry"
    systemctl enable --quiet --now ferry
  fi
  mkdir -p "$RUN_DIR"
  printf '%s\n' "$want" >"$BUILDFILE"
else
  want="$(build_id)"
  if pid="$(our_pid)"; then
    if [ "$(cat "$BUILDFILE" 2>/dev/null || true)" != "$want" ]; then
      ferry_log "restarting ferry (pid ${pid}): its code or config changed"
      stop_nohup "$pid"
      start_nohup "$want"
    else
      ferry_log "ferry is running (pid ${pid}, unchanged)"
    fi
  elif ferry_answers; then
    ferry_log "ferry answers but was not started by this script (no live ${PIDFILE}): leaving it as it is"
  else
    start_nohup "$want"
  fi
fi

# Wait for the API.
deadline=$((SECONDS + TIMEOUT))
until ferry_answers; do
  if ! ferry_have_systemd && ! pid="$(our_pid)" && [ -f "$PIDFILE" ]; then
    printf '%s: ERROR: ferry serve exited while starting; last lines of %s:\n' "$FERRY_SCRIPT" "$LOG" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    printf '%s: ERROR: ferry status did not answer within %ss:\n' "$FERRY_SCRIPT" "$TIMEOUT" >&2
    timeout 10 "$LINK" status >&2 || true
    if ferry_have_systemd; then
      journalctl -u ferry -n 40 --no-pager >&2 || true
    else
      tail -n 40 "$LOG" >&2
    fi
    exit 1
  fi
  sleep 1
done

"$LINK" status
echo
echo "try: docker volume create -d ferry -o size=1G demo"
