#!/usr/bin/env bash
# Runs one command as root inside a throw-away QEMU virtual machine that sees this host's files,
# for tests that need a kernel this host lacks (device-mapper thin pools, a real OpenZFS).
#
#   scripts/vm/run-in-vm.sh [options] -- COMMAND [ARG...]
#
#   --packages "P..."  Debian packages to give the VM (with their dependencies this host lacks),
#                      fetched with `apt-get download` and unpacked: nothing is installed here
#   --modules "M..."   kernel modules the VM loads before COMMAND (modprobe names)
#   --mem MiB          VM memory (default 2048); the VM's writes live in it (a tmpfs overlay)
#   --cpus N           vCPUs (default 2, at most 2)
#   --timeout S        the whole run, boot included, in seconds (default 1800)
#   --out DIR          where COMMAND's output, the console log and the exit code land
#                      (default: a new temp dir; also visible inside the VM as $FERRY_VM_OUT)
#   --cache DIR        kernel, initramfs and unpacked packages (default /var/cache/ferry-vm,
#                      FERRY_VM_CACHE); a second run with the same packages reuses them
#   --kernel-package P the kernel's package (default linux-image-amd64, Debian's current kernel)
#
# The machine: Debian's kernel (unpacked from its package), a busybox initramfs that mounts this
# host's / read-only over 9p, under a tmpfs overlay with the unpacked packages and the kernel's
# modules on top; COMMAND runs in the current directory at the same path, as root, under
# `sh -c`; its exit code becomes this script's. No KVM is needed: QEMU emulates (TCG).
# Exit codes: COMMAND's; 124 when the VM ran out of time; 125 when the VM could not be made or
# ended without reporting an exit code (the console log says why).
set -euo pipefail

PACKAGES=""
MODULES=""
MEM=2048
CPUS=2
TIMEOUT=1800
OUT=""
CACHE="${FERRY_VM_CACHE:-/var/cache/ferry-vm}"
KERNEL_PACKAGE=linux-image-amd64

die() { echo "run-in-vm: $*" >&2; exit 125; }
say() { echo "run-in-vm: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --packages) PACKAGES="$2"; shift 2 ;;
    --modules) MODULES="$2"; shift 2 ;;
    --mem) MEM="$2"; shift 2 ;;
    --cpus) CPUS="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --kernel-package) KERNEL_PACKAGE="$2"; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1 (see the head of $0)" ;;
  esac
done
[ $# -gt 0 ] || die "no command given: run-in-vm.sh [options] -- COMMAND [ARG...]"
[ "$CPUS" -le 2 ] || CPUS=2
[ "$(id -u)" = 0 ] || die "must run as root (apt-get download into the cache, 9p export of /)"
for tool in qemu-system-x86_64 apt-get dpkg-deb depmod gzip busybox; do
  command -v "$tool" >/dev/null 2>&1 || die "lacks the command $tool (scripts/install-deps.sh installs it)"
done
BUSYBOX="$(command -v busybox)"
# The initramfs has no libc: only a static busybox runs there (a dynamic one has an interpreter).
if readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'Requesting program interpreter'; then die "$BUSYBOX is not static (install busybox-static)"; fi

mkdir -p "$CACHE"
# One run at a time builds the cache; others wait for it.
exec 9>"$CACHE/.lock"
flock 9

# --- the kernel: unpacked, modules indexed --------------------------------------------------
# linux-image-amd64 is a meta package: its one dependency names the real kernel package.
kernel_real_package() {
  local p="$1"
  if [[ "$p" =~ ^linux-image-[0-9] ]]; then echo "$p"; return; fi
  apt-cache depends "$p" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
KPKG="$(kernel_real_package "$KERNEL_PACKAGE")"
if [ -z "$KPKG" ]; then
  apt-get update -q >/dev/null 2>&1 || true
  KPKG="$(kernel_real_package "$KERNEL_PACKAGE")"
fi
[ -n "$KPKG" ] || die "cannot tell which kernel package $KERNEL_PACKAGE stands for (apt-cache depends)"
KROOT="$CACHE/kernel/$KPKG"

# Debian's packages still ship /sbin, /lib: fold them into /usr, as the host's merged /usr has
# them, or the overlay's directory would hide the host's /sbin -> usr/sbin link.
merge_usr() {
  local root="$1" d
  for d in bin sbin lib lib32 lib64 libx32; do
    if [ -d "$root/$d" ] && [ ! -L "$root/$d" ]; then
      mkdir -p "$root/usr/$d"
      cp -a "$root/$d/." "$root/usr/$d/"
      rm -rf "${root:?}/$d"
    fi
  done
}

fetch_debs() { # dir packages...
  local dir="$1"; shift
  mkdir -p "$dir"
  (cd "$dir" && apt-get download -q "$@" >/dev/null 2>"$dir/.download.log") || {
    apt-get update -q >/dev/null 2>&1 || true
    (cd "$dir" && apt-get download -q "$@" >/dev/null 2>"$dir/.download.log") || die "apt-get download $* failed: $(tail -3 "$dir/.download.log")"
  }
}

if [ ! -f "$KROOT/.done" ]; then
  say "unpacking kernel $KPKG into $KROOT"
  rm -rf "$KROOT" "$KROOT.debs"
  fetch_debs "$KROOT.debs" "$KPKG"
  mkdir -p "$KROOT"
  dpkg-deb -x "$KROOT.debs"/*.deb "$KROOT"
  rm -rf "$KROOT.debs"
  merge_usr "$KROOT"
  KVER="$(ls "$KROOT/usr/lib/modules")"
  depmod -b "$KROOT/usr" "$KVER"
  # depmod -b ROOT looks in ROOT/lib/modules; the host's kmod looks in /lib/modules -> usr/lib.
  touch "$KROOT/.done"
fi
KVER="$(ls "$KROOT/usr/lib/modules")"
VMLINUZ="$(ls "$KROOT"/boot/vmlinuz-*)"
MODDIR="$KROOT/usr/lib/modules/$KVER"

# --- the initramfs: busybox, the modules that mount the root, an init -----------------------
INITRD="$KROOT/initramfs.cpio.gz"
INIT_SRC="$(dirname "$(readlink -f "$0")")/vm-init.sh"
if [ ! -f "$INITRD" ] || [ "$INIT_SRC" -nt "$INITRD" ]; then
  say "building the initramfs"
  ir="$(mktemp -d)"
  mkdir -p "$ir"/{bin,proc,sys,dev,lower,newroot,out,mods}
  cp "$BUSYBOX" "$ir/bin/busybox"
  cp "$INIT_SRC" "$ir/init"
  chmod +x "$ir/init"
  # Modules in load order: each one's dependencies (modules.dep lists them) before it.
  : >"$ir/mods/order"
  add_module() {
    local name="$1" line rel dep
    line="$(grep -E "/${name}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | head -1)" || true
    [ -n "$line" ] || return 0 # built in
    rel="${line%%:*}"
    for dep in $(echo "${line#*:}" | tr ' ' '\n' | tac); do
      grep -qx "$(basename "$dep")" "$ir/mods/order" || { cp "$MODDIR/$dep" "$ir/mods/"; basename "$dep" >>"$ir/mods/order"; }
    done
    grep -qx "$(basename "$rel")" "$ir/mods/order" || { cp "$MODDIR/$rel" "$ir/mods/"; basename "$rel" >>"$ir/mods/order"; }
  }
  for m in virtio_pci virtio_blk 9pnet_virtio 9p overlay; do add_module "$m"; done
  (cd "$ir" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1) >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$ir"
fi

# --- the packages: unpacked into one tree, with the dependencies this host lacks -------------
PKGROOT=""
if [ -n "$PACKAGES" ]; then
  key="$(echo "$PACKAGES" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sha256sum | cut -c1-16)"
  PKGROOT="$CACHE/packages/$key"
  if [ ! -f "$PKGROOT/.done" ]; then
    say "fetching packages: $PACKAGES"
    rm -rf "$PKGROOT" "$PKGROOT.debs"
    # The whole Depends closure, less what dpkg has installed here (the VM sees this host's /).
    # shellcheck disable=SC2086
    closure="$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances $PACKAGES 2>/dev/null | grep -v '^ ' | grep -v '^<' | sort -u)"
    wanted=()
    for p in $closure; do
      if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then wanted+=("$p"); fi
    done
    [ ${#wanted[@]} -gt 0 ] || die "no package of '$PACKAGES' to fetch (all installed here?)"
    fetch_debs "$PKGROOT.debs" "${wanted[@]}"
    mkdir -p "$PKGROOT"
    for deb in "$PKGROOT.debs"/*.deb; do dpkg-deb -x "$deb" "$PKGROOT"; done
    rm -rf "$PKGROOT.debs"
    merge_usr "$PKGROOT"
    echo "$PACKAGES" >"$PKGROOT/.packages"
    touch "$PKGROOT/.done"
  fi
fi
flock -u 9

# --- the run ----------------------------------------------------------------------------------
if [ -z "$OUT" ]; then OUT="$(mktemp -d /tmp/ferry-vm.XXXXXX)"; fi
mkdir -p "$OUT"
rm -f "$OUT/exit-code" "$OUT/output.log" "$OUT/console.log"
{
  echo "cd $(printf '%q' "$PWD")"
  printf 'exec'
  printf ' %q' "$@"
  echo
} >"$OUT/command.sh"
{
  echo "FERRY_VM_MODULES=$(printf '%q' "$MODULES")"
  # The layers, as paths under the cache (the VM mounts the cache on its own).
  echo "FERRY_VM_LOWER=$(printf '%q' "${PKGROOT:+${PKGROOT#"$CACHE"/}:}${KROOT#"$CACHE"/}")"
  echo "FERRY_VM_PATH=$(printf '%q' "$PATH")"
  # The VM mounts a tmpfs of its own on /tmp: a command run from a checkout under /tmp (a CI clone)
  # gets that checkout bound back in place.
  echo "FERRY_VM_CWD=$(printf '%q' "$PWD")"
} >"$OUT/vm.env"

say "booting ($KVER, ${CPUS} vCPU, ${MEM} MiB, TCG); output in $OUT"
started=$(date +%s)
set +e
timeout --kill-after=15 "$TIMEOUT" qemu-system-x86_64 \
  -machine q35 -accel tcg,thread=multi -cpu max -smp "$CPUS" -m "$MEM" \
  -kernel "$VMLINUZ" -initrd "$INITRD" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
  -display none -monitor none -serial "file:$OUT/console.log" -no-reboot \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$CACHE,mount_tag=cache,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$OUT,mount_tag=out,security_model=none,multidevs=remap" \
  </dev/null >"$OUT/qemu.log" 2>&1 &
qemu=$!
# Show the command's output as it comes (the VM writes it to $OUT/output.log).
touch "$OUT/output.log"
tail -n +1 -f "$OUT/output.log" --pid=$qemu &
tailer=$!
wait $qemu
rc=$?
wait $tailer 2>/dev/null
set -e
say "VM ran $(($(date +%s) - started)) s"
if [ $rc = 124 ] || [ $rc = 137 ]; then
  say "the VM ran out of time (${TIMEOUT} s); console log: $OUT/console.log"
  tail -n 20 "$OUT/console.log" >&2 || true
  exit 124
fi
if [ ! -s "$OUT/exit-code" ]; then
  say "the VM ended without an exit code (qemu exit $rc); console log: $OUT/console.log"
  tail -n 30 "$OUT/console.log" "$OUT/qemu.log" >&2 || true
  exit 125
fi
exit "$(cat "$OUT/exit-code")"
