#!/usr/bin/env bash
# Runs ferry's lvm tests in a QEMU VM whose kernel has device-mapper thin pools (this project's CI
# kernel has none): the lvm backend contract suite (ext4 and xfs), the move-snapshot contract and the
# user-snapshot / snapshot-chain contract.
#
#   sudo scripts/vm/lvm-tests.sh [--out DIR] [--all | MOCHA ARGS...]
#
# Needs a built tree (npm run build). Default: the lvm ext4 contract suite (every ability), the
# move-snapshot and snapshot-chain contracts, about 16 minutes under emulation; --all adds the xfs fixture (about 12
# more). --bench runs the backends bench section instead (node dist/bench/run.js --only backends):
# emulated figures, comparable only with the other backends of the same run. Other mocha args run
# other compiled tests inside the VM.
# Exit code: mocha's inside the VM (run-in-vm.sh's 124/125 when the VM itself failed).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=""
if [ "${1:-}" = --out ]; then OUT="$2"; shift 2; fi
MOCHA='exec node node_modules/.bin/mocha --no-config -r dist/test/setup.js --timeout 180000 --exit "$@"'
RUN="$MOCHA"
if [ "${1:-}" = --bench ]; then
  shift
  RUN='exec node dist/bench/run.js --only backends "$@"'
elif [ $# -eq 0 ]; then
  set -- --grep 'contract: lvm ext4|snapshots it does not own: lvm|snapshot chain: lvm' dist/test/contract/backends.test.js dist/test/contract/move-snapshots.test.js dist/test/contract/snapshot-chain.test.js
elif [ "$1" = --all ]; then
  set -- --grep 'lvm' dist/test/contract/backends.test.js dist/test/contract/move-snapshots.test.js dist/test/contract/snapshot-chain.test.js
fi
[ -f dist/test/setup.js ] || { echo "lvm-tests: no dist/: run npm run build first" >&2; exit 125; }
# lvm.conf for a machine without udev (test/support/lvm.ts says why); then RUN, with the args as "$@".
exec scripts/vm/run-in-vm.sh \
  --packages "lvm2 thin-provisioning-tools" \
  --modules "dm-thin-pool dm-snapshot loop ext4 xfs" \
  --mem "${FERRY_VM_MEM:-3072}" --timeout "${FERRY_VM_TIMEOUT:-2400}" ${OUT:+--out "$OUT"} \
  -- sh -c 'mkdir -p /etc/lvm && printf "%s\n" \
    "devices { obtain_device_list_from_udev = 0 use_devicesfile = 0 }" \
    "activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }" >/etc/lvm/lvm.conf &&
    '"$RUN" lvm-tests "$@"
