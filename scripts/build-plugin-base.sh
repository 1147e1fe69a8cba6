#!/usr/bin/env bash
# Builds the base image of ferry's managed plugin, unless dockerd already has it:
#
#   sudo bash scripts/build-plugin-base.sh          # prints the image's name as its last line
#   FERRY_PLUGIN_BASE_REBUILD=1 ...                 # build even if the image exists
#
# No container registry is reachable from ferry's development and CI machines, so nothing is
# pulled: `debootstrap --variant=minbase` makes a Debian 12 (bookworm) root filesystem from
# Debian's mirror (FERRY_DEBIAN_MIRROR, default the one apt uses here, else deb.debian.org)
# with the tools ferry's backends run, this machine's node (one binary) goes to
# /usr/local/bin/node with any library `ldd` names that the rootfs lacks, docs, man pages,
# locales and apt's lists are dropped, and `docker import` makes it the image
# ferry-plugin-base:<tag>. The tag names node's version and a hash of the package list, node's
# binary and this script, so a second build (and every build of a CI run after the first)
# reuses the image, and a change to any of them makes a new one. See plugin/README.md.
set -euo pipefail
FERRY_SCRIPT=build-plugin-base
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ferry_require_root
ferry_docker_answers || ferry_die "dockerd does not answer at ${FERRY_DOCKER_SOCKET}: run scripts/start-dockerd.sh first"
command -v debootstrap >/dev/null 2>&1 || ferry_die "debootstrap not found: run scripts/install-deps.sh first"

IMAGE="$(ferry_plugin_base_image)"
if [ "${FERRY_PLUGIN_BASE_REBUILD:-0}" != 1 ] && ferry_docker image inspect "$IMAGE" >/dev/null 2>&1; then
  ferry_log "${IMAGE} is there (cached)"
  echo "$IMAGE"
  exit 0
fi

NODE="$(command -v node)" || ferry_die "node not found: the plugin runs this machine's Node.js (>= 20)"
NODE="$(readlink -f "$NODE")"
[ "$(ferry_node_major)" -ge 20 ] || ferry_die "node is $(node --version): the plugin needs Node.js >= 20"

mirror="$(ferry_debian_mirror)"

workdir="$(mktemp -d /var/tmp/ferry-plugin-base-XXXXXX)"
# debootstrap mounts /proc and /sys (and may bind /dev) in the rootfs while it works, and a failed
# run can leave them: unmount whatever is under the work dir, and never delete across a mount.
cleanup() {
  findmnt -rn -o TARGET | grep -F "$workdir" | sort -r | xargs -r -d '\n' umount -l 2>/dev/null || true
  rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT
root="${workdir}/rootfs"

include="$(IFS=,; echo "${FERRY_PLUGIN_PACKAGES[*]}")"
ferry_log "debootstrap --variant=minbase bookworm from ${mirror} (with ${include}); log: ${workdir}/debootstrap.log"
started=$SECONDS
# Its downloads are kept: a rebuild (new node, new package list) fetches only what changed.
cache=/var/cache/ferry/debootstrap
mkdir -p "$cache"
if ! debootstrap --variant=minbase --cache-dir="$cache" --include="$include" bookworm "$root" "$mirror" >"${workdir}/debootstrap.log" 2>&1; then
  tail -n 20 "${workdir}/debootstrap.log" >&2
  ferry_die "debootstrap failed (above: the end of its log); is ${mirror} reachable? Set FERRY_DEBIAN_MIRROR to another mirror"
fi
ferry_log "debootstrap took $((SECONDS - started)) s"

# Node: one binary; any shared library it needs that bookworm's rootfs lacks goes to the same path.
install -m 755 "$NODE" "${root}/usr/local/bin/node"
while read -r lib; do
  [ -e "${root}${lib}" ] && continue
  ferry_log "copying ${lib} (node needs it; bookworm's rootfs lacks it)"
  mkdir -p "${root}$(dirname "$lib")"
  cp -L "$lib" "${root}${lib}"
done < <(ldd "$NODE" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot "$root" /usr/local/bin/node -e 'process.exit(0)' ||
  ferry_die "node does not run in the bookworm rootfs (copied from ${NODE})"

# xfsprogs depends on python3 and ICU for xfs_scrub and its helpers, which ferry never runs (it
# runs mkfs.xfs and xfs_admin): about 60 MB the plugin does without.
chroot "$root" dpkg --purge --force-depends $(chroot "$root" dpkg-query -W -f '${Package}\n' |
  grep -E '^(python3|libpython3|libicu)' | tr '\n' ' ') >"${workdir}/purge.log" 2>&1 || {
  tail -n 20 "${workdir}/purge.log" >&2
  ferry_die "dpkg --purge of python3 and ICU in the rootfs failed (above: the end of its output)"
}
# What a plugin never reads: keep the image small.
rm -rf "${root}"/var/lib/apt/lists/* "${root}"/var/cache/apt/* "${root}"/var/cache/debconf/*-old \
  "${root}"/usr/share/doc/* "${root}"/usr/share/man/* "${root}"/usr/share/info/* \
  "${root}"/usr/share/locale/* "${root}"/var/log/* "${root}"/tmp/* "${root}"/var/tmp/*
# The image gets the host's resolv.conf and hostname from nobody: a plugin uses the host's network.
: >"${root}/etc/resolv.conf"

ferry_log "importing ${IMAGE} ($(du -sh --apparent-size "$root" | cut -f1))"
tar --numeric-owner --one-file-system -C "$root" -cf - . |
  ferry_docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "ferry plugin base: Debian bookworm minbase, node $(node --version), ${include}" \
    - "$IMAGE" >/dev/null
# Older base images are only a cache of earlier inputs: drop them.
ferry_docker image ls --format '{{.Repository}}:{{.Tag}}' ferry-plugin-base | grep -vxF "$IMAGE" |
  xargs -r env -u DOCKER_CONTEXT docker -H "unix://${FERRY_DOCKER_SOCKET}" image rm >/dev/null 2>&1 || true
ferry_log "built ${IMAGE}"
echo "$IMAGE"
