#!/usr/bin/env bash
# An OpenStack Swift all-in-one with the S3 API, for the bank's tests and benchmark: one replica,
# one device, everything (config, rings, data, logs, pids) under DIR, listening on 127.0.0.1 only.
#
#   bash scripts/swift-aio.sh start DIR    # prints endpoint=…, access_key=…, secret_key=…, region=…
#   bash scripts/swift-aio.sh stop DIR [SERVER…]  # stops what `start DIR` started (DIR stays);
#                                          # SERVER: account container object proxy memcached
#
# Needs Debian's swift, swift-proxy, swift-account, swift-container, swift-object, python3-swift
# and memcached (scripts/install-deps.sh). Starting a DIR that was started before reuses its
# config, ports and data, and starts only what is not running. /etc/swift is never read: each server is started through a few lines
# of /usr/bin/python3 that point swift.common.utils.set_swift_dir() at DIR/etc first (another
# python3 on PATH may lack the swift module). `start` returns once an S3 request signed with the
# printed keys (ListBuckets) answers 200, or fails after 60 s with the servers' logs.
set -euo pipefail
FERRY_SCRIPT=swift-aio
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
# tempauth's user: S3 access key "test:tester", secret "testing" (its account is AUTH_test).
ACCESS_KEY=test:tester
SECRET_KEY=testing
REGION=us-east-1
SERVERS=(account container object proxy)

usage() { ferry_die "usage: swift-aio.sh start|stop DIR"; }

[ "$#" -ge 2 ] || usage
CMD="$1"
DIR="$(realpath -m "$2")"
shift 2

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The launcher: Swift's servers read /etc/swift/swift.conf unless set_swift_dir() says otherwise.
write_launcher() {
  cat >"$DIR/etc/run-server.py" <<'EOF'
import sys
from swift.common.utils import set_swift_dir
set_swift_dir(sys.argv[1])
from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(sys.argv[2], sys.argv[3], verbose=True))
EOF
}

write_config() {
  local etc="$DIR/etc" port_a port_c port_o port_p port_m s
  mkdir -p "$etc" "$DIR/srv/d1" "$DIR/run" "$DIR/log"
  port_a=$(free_port) port_c=$(free_port) port_o=$(free_port) port_p=$(free_port) port_m=$(free_port)
  printf 'account=%s\ncontainer=%s\nobject=%s\nproxy=%s\nmemcached=%s\n' \
    "$port_a" "$port_c" "$port_o" "$port_p" "$port_m" >"$etc/ports"
  cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = ferry-test
swift_hash_path_prefix = ferry-test

[storage-policy:0]
name = Policy-0
default = yes
EOF
  # Settings every server shares: its files under DIR, no mount check, one process, logs to stderr.
  local common="swift_dir = $etc
devices = $DIR/srv
mount_check = false
bind_ip = 127.0.0.1
workers = 0
log_level = WARNING
log_address = $DIR/run/no-syslog"
  for s in account container object; do
    local port_var="port_${s:0:1}"
    cat >"$etc/$s-server.conf" <<EOF
[DEFAULT]
$common
bind_port = ${!port_var}

[pipeline:main]
pipeline = healthcheck $s-server

[app:$s-server]
use = egg:swift#$s

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done
  cat >"$etc/proxy-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $port_p

[pipeline:main]
# s3api must come before the auth middleware (tempauth), which needs the cache (memcached).
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = $REGION
# DeleteObjects removes its keys this many at a time (default 2: 1000 keys take tens of seconds).
multi_delete_concurrency = 16

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $SECRET_KEY .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$port_m

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
  # Rings: 2^6 partitions, 1 replica, min_part_hours 1, one device each (what
  # `swift-ring-builder X create 6 1 1; add r1z1-127.0.0.1:PORT/d1 1; rebalance` makes), built in one
  # python process: nine swift-ring-builder runs take most of a start on a busy machine.
  "$PY" - "$etc" "$port_a" "$port_c" "$port_o" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(("account", "container", "object"), sys.argv[2:5]):
    b = RingBuilder(6, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "d1", "weight": 1.0, "meta": ""})
    b.rebalance()
    b.save(f"{etc}/{name}.builder")
    b.get_ring().save(f"{etc}/{name}.ring.gz")
EOF
  write_launcher
}

port_of() { sed -n "s/^$1=//p" "$DIR/etc/ports"; }

# Stops the processes named (their pids in DIR/run/NAME.pid): TERM, then KILL what is left after
# 1 s (a Swift server has fsynced every object it acknowledged, so a KILL loses nothing).
stop_some() {
  local s pid pids=() i
  for s in "$@"; do
    [ -f "$DIR/run/$s.pid" ] || continue
    pid="$(cat "$DIR/run/$s.pid")"
    if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then pids+=("$pid"); fi
    rm -f "$DIR/run/$s.pid"
  done
  for i in $(seq 10); do
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ "${#alive[@]}" -eq 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

stop_all() { stop_some "${SERVERS[@]}" memcached; }

running() { [ -f "$DIR/run/$1.pid" ] && kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null; }

# ListBuckets signed with AWS signature v2 (which s3api accepts): 200 once proxy, tempauth,
# memcached and the account server all answer.
s3_ready() {
  "$PY" - "$(port_of proxy)" "$ACCESS_KEY" "$SECRET_KEY" <<'EOF' >/dev/null 2>&1
import base64, hashlib, hmac, sys, http.client, email.utils
port, access, secret = sys.argv[1:4]
date = email.utils.formatdate(usegmt=True)
sig = base64.b64encode(hmac.new(secret.encode(), f"GET\n\n\n{date}\n/".encode(), hashlib.sha1).digest()).decode()
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
c.request("GET", "/", headers={"Date": date, "Authorization": f"AWS {access}:{sig}"})
sys.exit(0 if c.getresponse().status == 200 else 1)
EOF
}

start() {
  local s i
  [ -x "$PY" ] && "$PY" -c 'import swift' 2>/dev/null ||
    ferry_die "$PY cannot import swift: install Debian's python3-swift (scripts/install-deps.sh does)"
  command -v memcached >/dev/null || ferry_die "memcached not found (scripts/install-deps.sh installs it)"
  [ -f "$DIR/etc/ports" ] || write_config
  if ! running memcached; then
    # In the foreground of its own session, its pid taken here: memcached -d -P writes its pid
    # file after dropping to nobody, which cannot write under DIR (it then outlives `stop`).
    setsid memcached -l 127.0.0.1 -p "$(port_of memcached)" -U 0 -m 64 -u nobody \
      </dev/null >>"$DIR/log/memcached.log" 2>&1 &
    echo "$!" >"$DIR/run/memcached.pid"
  fi
  for s in "${SERVERS[@]}"; do
    running "$s" && continue
    # setsid: the servers outlive this script and the test process's group signals.
    setsid "$PY" "$DIR/etc/run-server.py" "$DIR/etc" "$DIR/etc/$s-server.conf" "$s-server" \
      </dev/null >>"$DIR/log/$s.log" 2>&1 &
    echo "$!" >"$DIR/run/$s.pid"
  done
  # Until every port accepts (bash's /dev/tcp: no process per probe), then a signed S3 request.
  local deadline=$((SECONDS + 60)) port
  while [ "$SECONDS" -lt "$deadline" ]; do
    local up=1
    for s in "${SERVERS[@]}"; do
      if ! kill -0 "$(cat "$DIR/run/$s.pid")" 2>/dev/null; then
        tail -n 30 "$DIR/log/$s.log" >&2
        stop_all
        ferry_die "swift's $s server exited at start (log above: $DIR/log/$s.log)"
      fi
      port="$(port_of "$s")"
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || up=0
    done
    if [ "$up" = 1 ] && s3_ready; then
      printf 'endpoint=http://127.0.0.1:%s\naccess_key=%s\nsecret_key=%s\nregion=%s\n' \
        "$(port_of proxy)" "$ACCESS_KEY" "$SECRET_KEY" "$REGION"
      return 0
    fi
    sleep 0.1
  done
  for s in "${SERVERS[@]}"; do tail -n 10 "$DIR/log/$s.log" >&2; done
  stop_all
  ferry_die "swift's S3 API at 127.0.0.1:$(port_of proxy) did not answer within 60 s (logs above, in $DIR/log)"
}

case "$CMD" in
  start) start ;;
  stop)
    if [ "$#" -eq 0 ]; then stop_all; else stop_some "$@"; fi
    ;;
  *) usage ;;
esac
