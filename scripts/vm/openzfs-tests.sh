#!/usr/bin/env bash
# Runs ferry's zfs tests once against a real OpenZFS (this project's hosts have only zfs-fuse), in
# run-in-vm.sh's QEMU VM: Debian's zfs-dkms source built on this host against the headers of the
# kernel the VM boots, Debian's zfsutils-linux unpacked beside it (nothing installed here: this host
# keeps zfs-fuse's zfs and zpool; inside the VM OpenZFS's tools stand at the same paths).
#
#   sudo scripts/vm/openzfs-tests.sh [--out DIR] [--capture | MOCHA ARGS...]
#
# Needs a built tree (npm run build), gcc-12 and make. Default: the zfs backend contract suite, the
# move-snapshot contract and the zfs unit tests (`--grep zfs`). --capture instead writes fresh
# captures of OpenZFS's outputs (test/fixtures/zfs/openzfs/capture.sh) to OUT/openzfs-fixtures.
# The first run builds the spl and zfs modules (11-20 minutes with make -j2) and caches them, with
# the unpacked kernel and tools, under $FERRY_VM_CACHE/openzfs (default /var/cache/ferry-vm/openzfs);
# later runs only boot the VM.
# zfs-dkms is in Debian's contrib: a private apt configuration under that cache reaches it (this
# host's apt sources are not changed). CI does not run this script.
# Exit code: mocha's inside the VM (run-in-vm.sh's 124/125 when the VM itself failed).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=""
if [ "${1:-}" = --out ]; then OUT="$2"; shift 2; fi
MOCHA='exec node node_modules/.bin/mocha --no-config -r dist/test/setup.js --timeout 180000 --exit "$@"'
RUN="$MOCHA"
if [ "${1:-}" = --capture ]; then shift; RUN='exec bash test/fixtures/zfs/openzfs/capture.sh'; fi
[ $# -gt 0 ] || [ "$RUN" != "$MOCHA" ] || set -- --grep zfs dist/test/contract/backends.test.js dist/test/contract/move-snapshots.test.js dist/test/agent/backends/zfs/
[ -f dist/test/setup.js ] || { echo "openzfs-tests: no dist/: run npm run build first" >&2; exit 125; }
[ "$(id -u)" = 0 ] || { echo "openzfs-tests: must run as root" >&2; exit 125; }
for tool in apt-get apt-cache dpkg-deb depmod make gcc-12; do
  command -v "$tool" >/dev/null 2>&1 || { echo "openzfs-tests: lacks the command $tool" >&2; exit 125; }
done

CACHE="${FERRY_VM_CACHE:-/var/cache/ferry-vm}"
Z="$CACHE/openzfs"
SUITE="${FERRY_DEBIAN_SUITE:-bookworm}"
say() { echo "openzfs-tests: $*" >&2; }
mkdir -p "$Z"
exec 8>"$Z/.lock"
flock 8

# --- a private apt with contrib: its own sources, lists and archives under $Z/apt -----------------
A="$Z/apt"
mkdir -p "$A/lists/partial" "$A/archives/partial" "$A/sources.list.d"
cat >"$A/sources.list" <<EOF
deb http://deb.debian.org/debian $SUITE main contrib
deb http://deb.debian.org/debian $SUITE-updates main contrib
deb http://deb.debian.org/debian-security $SUITE-security main contrib
EOF
APTOPTS=(-o "Dir::Etc::SourceList=$A/sources.list" -o "Dir::Etc::SourceParts=$A/sources.list.d"
  -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
# Refresh the lists once a day.
if [ -z "$(find "$A/lists" -maxdepth 1 -name '*contrib*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  say "apt-get update (private, with contrib)"
  apt-get "${APTOPTS[@]}" update -q >"$A/update.log" 2>&1 || { tail -5 "$A/update.log" >&2; exit 125; }
fi
acache() { apt-cache "${APTOPTS[@]}" "$@"; }
download() { # dir packages...
  local dir="$1"; shift
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && apt-get "${APTOPTS[@]}" download -q "$@" >"$dir/.log" 2>&1) || { tail -5 "$dir/.log" >&2; exit 125; }
}

# The kernel run-in-vm.sh boots by default (linux-image-amd64 names it), and the zfs version.
KPKG="$(acache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
KVER="${KPKG#linux-image-}"
ZVER="$(acache policy zfs-dkms | awk '/Candidate:/ {print $2}')"
[ -n "$KPKG" ] && [ -n "$ZVER" ] && [ "$ZVER" != "(none)" ] || { say "cannot tell the kernel ($KPKG) or zfs-dkms ($ZVER) version"; exit 125; }
say "kernel $KPKG, OpenZFS $ZVER"

# --- the modules: zfs-dkms's source built against the kernel's headers ----------------------------
MODS="$Z/modules/$KVER-zfs-$ZVER"
if [ ! -f "$MODS/.done" ]; then
  say "building spl and zfs $ZVER for $KVER (about 11 minutes; log in $Z/build/make.log)"
  B="$Z/build"
  download "$Z/debs-build" "linux-headers-$KVER" $(acache depends "linux-headers-$KVER" | awk '/Depends: linux-(headers|kbuild)-/ {print $2}') "zfs-dkms=$ZVER"
  rm -rf "$B"; mkdir -p "$B/hdr" "$B/src"
  for d in "$Z/debs-build"/linux-*.deb; do dpkg-deb -x "$d" "$B/hdr"; done
  dpkg-deb -x "$Z/debs-build"/zfs-dkms_*.deb "$B/src"
  H="$B/hdr/usr/src"
  COMMON="$(cd "$H" && ls -d linux-headers-*-common | head -1)"
  # The arch headers' Makefile includes the common one by its installed path: point it here.
  sed -i "s#^include /usr/src/#include $H/#" "$H/linux-headers-$KVER/Makefile"
  SRC="$(ls -d "$B/src/usr/src"/zfs-*)"
  (cd "$SRC" && ./configure --prefix=/usr --with-config=kernel --with-linux="$H/$COMMON" \
    --with-linux-obj="$H/linux-headers-$KVER" >"$B/configure.log" 2>&1) || { tail -20 "$B/configure.log" >&2; exit 125; }
  (cd "$SRC" && make -j2 >"$B/make.log" 2>&1) || { tail -20 "$B/make.log" >&2; exit 125; }
  rm -rf "$MODS"; mkdir -p "$MODS"
  find "$SRC/module" -name '*.ko' -exec cp {} "$MODS/" \;
  ls "$MODS"/zfs.ko "$MODS"/spl.ko >/dev/null || { say "the build made no zfs.ko/spl.ko"; exit 125; }
  touch "$MODS/.done"
  rm -rf "$B" "$Z/debs-build"
fi

# --- the VM's layer: the kernel with the zfs modules, and OpenZFS's tools ------------------------
# run-in-vm.sh takes its kernel from CACHE/kernel/PKG (unpacking it there unless .done is present)
# and lays that directory over the host's /: given --cache VMCACHE, this prepared one is used.
VMCACHE="$Z/vm-$KVER-zfs-$ZVER"
L="$VMCACHE/kernel/$KPKG"
if [ ! -f "$L/.done" ]; then
  say "making the VM's layer in $L"
  rm -rf "$L"; mkdir -p "$L"
  download "$Z/debs-vm" "$KPKG" "zfsutils-linux=$ZVER" "libzfs4linux=$ZVER" "libzpool5linux=$ZVER" \
    "libnvpair3linux=$ZVER" "libuutil3linux=$ZVER"
  for d in "$Z/debs-vm"/*.deb; do dpkg-deb -x "$d" "$L"; done
  rm -rf "$Z/debs-vm"
  # Fold /sbin, /lib into /usr as the host's merged /usr has them (else the layer's /sbin would
  # hide the host's /sbin -> usr/sbin link); zfsutils' /sbin/zfs then replaces zfs-fuse's.
  for d in bin sbin lib lib64; do
    if [ -d "$L/$d" ] && [ ! -L "$L/$d" ]; then mkdir -p "$L/usr/$d"; cp -a "$L/$d/." "$L/usr/$d/"; rm -rf "${L:?}/$d"; fi
  done
  mkdir -p "$L/usr/lib/modules/$KVER/extra"
  cp "$MODS"/*.ko "$L/usr/lib/modules/$KVER/extra/"
  depmod -b "$L/usr" "$KVER"
  touch "$L/.done"
fi

flock -u 8
# In the VM: a small ARC (the VM's memory also holds its writes), the versions, then RUN.
exec scripts/vm/run-in-vm.sh --cache "$VMCACHE" --kernel-package "$KPKG" --modules "zfs loop" \
  --mem "${FERRY_VM_MEM:-3072}" --timeout "${FERRY_VM_TIMEOUT:-3600}" ${OUT:+--out "$OUT"} \
  -- sh -c 'echo $((384 << 20)) >/sys/module/zfs/parameters/zfs_arc_max &&
    mkdir -p /etc/zfs /tmp/zfs-pools && export FERRY_ZFS_POOL_DIR=/tmp/zfs-pools &&
    echo "openzfs-tests: $(zfs version | tr "\n" " ")on $(uname -r)" && zpool list &&
    '"$RUN" openzfs-tests "$@"
