#!/usr/bin/env bash
# Installs, with Debian's apt, what ferry and its tests need, when it is missing.
#
#   sudo bash scripts/install-deps.sh
#
# Idempotent and quiet: a package counts as present when dpkg has it installed or when the
# commands ferry uses from it are already on PATH (say, dockerd from docker-ce instead of
# docker.io); when everything is present apt is not touched at all. Otherwise one
# `apt-get update`, one `apt-get install`, output in /var/log/ferry-install-deps.log.
#
# Without systemd (containers, CI), package scripts are kept from starting services (sshd,
# dockerd) through a temporary /usr/sbin/policy-rc.d: scripts/start-dockerd.sh starts dockerd.
#
# Node.js >= 20 is expected to be there already. When node is missing or older, Debian's nodejs
# and npm are installed, and a warning says so if that is still older than 20.
set -euo pipefail
FERRY_SCRIPT=install-deps
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_LOG=/var/log/ferry-install-deps.log

# package -> commands ferry or its tests run from it ("" = only dpkg's word counts).
declare -A PROBES=(
  [docker.io]="dockerd docker"
  [docker-compose]="docker-compose"
  [btrfs-progs]="btrfs mkfs.btrfs"
  [xfsprogs]="mkfs.xfs xfs_quota xfs_growfs"
  [e2fsprogs]="mkfs.ext4 resize2fs e2fsck"
  [util-linux]="findmnt lsblk nsenter unshare setsid"
  [mount]="mount umount losetup"
  # The test image needs the static busybox; the dynamic one cannot run in an empty rootfs.
  [busybox-static]=""
  [iproute2]="ip bridge"
  [rsync]="rsync"
  [openssh-client]="ssh ssh-keygen"
  [openssh-server]="sshd"
  [kmod]="modprobe"
  # The managed plugin: its base image is made with debootstrap, and its test installs it from
  # a registry of its own (the package's service stays off without systemd; the test starts one).
  [debootstrap]="debootstrap"
  [docker-registry]="docker-registry"
  # The zfs backend's tests run on zfs-fuse (no ZFS in the kernel here); scripts/start-zfs-fuse.sh starts it.
  [zfs-fuse]="zfs-fuse zfs zpool"
  # node-gyp builds better-sqlite3 (and ssh2's optional cpu-features) from source here.
  [make]="make"
  [g++]="g++"
  [python3]="python3"
  # The lvm backend's tests run in a QEMU VM (scripts/vm/run-in-vm.sh): this kernel has no device-mapper.
  [qemu-system-x86]="qemu-system-x86_64"
  # The dashboard's browser tests drive it (playwright-core, no browser download).
  [chromium]="chromium"
  # The bank's s3:// tests run on an OpenStack Swift all-in-one (scripts/swift-aio.sh) through its s3api.
  [swift]=""
  [swift-proxy]="swift-proxy-server"
  [swift-account]="swift-account-server"
  [swift-container]="swift-container-server"
  [swift-object]="swift-object-server"
  [python3-swift]=""
  [memcached]="memcached"
  # The bank's benchmark runs restic beside ferry; the tree archive's tests set xattrs with setfattr.
  [restic]="restic"
  [attr]="setfattr getfattr"
  # The tree archive's tests set POSIX ACLs (setfacl) to see them restored.
  [acl]="setfacl getfacl"
)
# Install order (bash associative arrays have none).
PACKAGES=(docker.io docker-compose btrfs-progs xfsprogs e2fsprogs util-linux mount busybox-static
  iproute2 rsync openssh-client openssh-server kmod debootstrap docker-registry make g++ python3
  chromium zfs-fuse qemu-system-x86
  swift swift-proxy swift-account swift-container swift-object python3-swift memcached
  restic attr acl)

dpkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

commands_present() {
  local cmd
  [ -n "$1" ] || return 1
  for cmd in $1; do
    command -v "$cmd" >/dev/null 2>&1 || return 1
  done
}

present() {
  dpkg_installed "$1" || commands_present "${PROBES[$1]:-}"
}

export DEBIAN_FRONTEND=noninteractive
# needrestart (if installed) would otherwise print its report after every install.
export NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
APT_OPTS=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)

APT_UPDATED=0
POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_OURS=0

cleanup() {
  if [ "$POLICY_RC_D_OURS" = 1 ]; then rm -f "$POLICY_RC_D"; fi
}
trap cleanup EXIT

prepare_apt() {
  if [ "$APT_UPDATED" = 1 ]; then return 0; fi
  : >"$APT_LOG"
  if ! ferry_have_systemd && [ ! -e "$POLICY_RC_D" ]; then
    # 101 = "action forbidden by policy": invoke-rc.d then skips starting the service.
    printf '#!/bin/sh\n# temporary, written by ferry scripts/install-deps.sh\nexit 101\n' >"$POLICY_RC_D"
    chmod 755 "$POLICY_RC_D"
    POLICY_RC_D_OURS=1
  fi
  ferry_log "apt-get update"
  if ! apt-get update -q -o DPkg::Lock::Timeout=300 >>"$APT_LOG" 2>&1; then
    tail -n 20 "$APT_LOG" >&2
    ferry_die "apt-get update failed (full output in $APT_LOG)"
  fi
  APT_UPDATED=1
}

# apt_install REQUIRED PKG...: installs; on failure dies when REQUIRED=1, else warns.
apt_install() {
  local required="$1"
  shift
  prepare_apt
  ferry_log "apt-get install $*"
  if apt-get install "${APT_OPTS[@]}" "$@" >>"$APT_LOG" 2>&1; then
    return 0
  fi
  tail -n 20 "$APT_LOG" >&2
  if [ "$required" = 1 ]; then
    ferry_die "apt-get install $* failed (full output in $APT_LOG)"
  fi
  ferry_warn "apt-get install $* failed (full output in $APT_LOG)"
  return 1
}

ferry_require_root
command -v apt-get >/dev/null 2>&1 || ferry_die "apt-get not found: this script is for Debian (12, bookworm)"

missing=()
for pkg in "${PACKAGES[@]}"; do
  present "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install 1 "${missing[@]}"
fi

# Node.js: kept apart from the rest, because Debian's npm conflicts with a nodejs package that
# bundles its own npm (NodeSource's): a failure here must not block the other packages.
if [ "$(ferry_node_major)" -lt 20 ]; then
  node_pkgs=()
  # Debian's nodejs already in place (and still old): apt has nothing newer to give.
  if ! dpkg_installed nodejs || ! command -v node >/dev/null 2>&1; then node_pkgs+=(nodejs); fi
  command -v npm >/dev/null 2>&1 || node_pkgs+=(npm)
  if [ "${#node_pkgs[@]}" -gt 0 ]; then
    apt_install 0 "${node_pkgs[@]}" || true
    hash -r
  fi
  if [ "$(ferry_node_major)" -lt 20 ]; then
    ferry_warn "ferry needs Node.js >= 20, but node is $(node --version 2>/dev/null || echo 'missing')" \
      "(Debian 12's nodejs is 18). Install Node.js 20 or newer (for example from NodeSource) and run this again."
  fi
elif ! command -v npm >/dev/null 2>&1; then
  apt_install 0 npm || true
fi
command -v npm >/dev/null 2>&1 || ferry_warn "npm not found: ferry is built with npm (npm ci, npm run build)"

# Say what is still missing, for the cases where a package came but a command did not.
hash -r
still=()
for pkg in "${PACKAGES[@]}"; do
  [ -n "${PROBES[$pkg]}" ] || continue
  for cmd in ${PROBES[$pkg]}; do
    command -v "$cmd" >/dev/null 2>&1 || still+=("$cmd ($pkg)")
  done
done
if [ "${#still[@]}" -gt 0 ]; then
  ferry_warn "still not on PATH: ${still[*]}"
fi
if [ "${#missing[@]}" -eq 0 ]; then
  ferry_log "all dependencies present"
else
  ferry_log "installed: ${missing[*]}"
fi
