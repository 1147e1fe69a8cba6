#!/usr/bin/env bash
# Runs ferry's whole test suite on this machine, installing and starting what it needs first.
# Debian 12, as root (the tests use loop devices, mounts, namespaces and a real dockerd):
#
#   sudo bash scripts/test.sh
#
# Steps: scripts/install-deps.sh, scripts/start-dockerd.sh, scripts/start-zfs-fuse.sh,
# scripts/build-test-image.sh, scripts/build-plugin-base.sh,
# `npm ci` (skipped when node_modules already matches package.json, package-lock.json and the
# node version), then `npm test` (tsc, then mocha over unit, contract, plugin and e2e tests).
# Extra arguments go to mocha: `bash scripts/test.sh --grep btrfs`.
#
# mocha's output is also written to FERRY_TEST_LOG (default <repo>/test.log). The exit code is
# npm test's, which is mocha's (the number of failed tests) or tsc's. The last line is always
#   N passed, N failed[, N skipped]
# read from mocha's summary ("N passing", "N failing", "N pending"); CI reads that line.
set -euo pipefail
FERRY_SCRIPT="test"
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO="$(ferry_repo_root)"
LOG="${FERRY_TEST_LOG:-${REPO}/test.log}"
cd "$REPO"

ferry_require_root
bash scripts/install-deps.sh
bash scripts/start-dockerd.sh
bash scripts/start-zfs-fuse.sh
bash scripts/build-test-image.sh
[ "$(ferry_node_major)" -ge 20 ] ||
  ferry_die "the tests need Node.js >= 20 (node is $(node --version 2>/dev/null || echo missing))"
ferry_npm_ci "$REPO"
# The managed plugin's base image (debootstrap: a few minutes once, then reused by its test).
bash scripts/build-plugin-base.sh
# PostgreSQL for the cross-cluster bank test (debootstrap: 11 min once on 2 busy cores, then reused).
bash scripts/build-postgres-image.sh

ferry_log "npm test (log: ${LOG})"
mkdir -p "$(dirname "$LOG")"
set +e
if [ "$#" -gt 0 ]; then
  npm test -- "$@" 2>&1 | tee "$LOG"
else
  npm test 2>&1 | tee "$LOG"
fi
status=("${PIPESTATUS[@]}")
set -e
rc="${status[0]}"
if [ "$rc" -eq 0 ] && [ "${status[1]}" -ne 0 ]; then
  rc="${status[1]}" # tee could not write the log: the run cannot be trusted
fi

# mocha's closing summary: "  12 passing (3s)", "  2 pending", "  1 failing". The last of each
# counts (a crashed run prints none).
count() {
  sed -e 's/\x1b\[[0-9;]*m//g' "$LOG" |
    sed -n -E "s/^[[:space:]]*([0-9]+) $1( \\(.*\\))?[[:space:]]*\$/\\1/p" | tail -n 1
}
passed="$(count passing)"
failed="$(count failing)"
pending="$(count pending)"
if [ -z "$passed" ] && [ -z "$failed" ]; then
  ferry_warn "no mocha summary in ${LOG}: the build or mocha itself failed before any result (exit code ${rc})"
  if [ "$rc" -eq 0 ]; then rc=1; fi
fi
summary="${passed:-0} passed, ${failed:-0} failed"
if [ -n "$pending" ] && [ "$pending" -gt 0 ]; then
  summary="${summary}, ${pending} skipped"
fi
echo
echo "$summary"
exit "$rc"
