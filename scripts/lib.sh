# shellcheck shell=bash
# Helpers shared by the scripts in this folder. Source it; it does nothing by itself.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Root's PATH on Debian has the sbin folders, but CI's or sudo's may not: dockerd, losetup,
# mkfs.*, modprobe and sshd live there.
case ":${PATH}:" in
  *:/usr/sbin:*) ;;
  *) PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin" ;;
esac
export PATH

# The dockerd that ferry and its tests talk to (config.dockerSocket's default), whatever
# DOCKER_HOST or a docker context say.
FERRY_DOCKER_SOCKET="${FERRY_DOCKER_SOCKET:-/var/run/docker.sock}"

ferry_log() { printf '%s: %s\n' "${FERRY_SCRIPT:-ferry}" "$*"; }
ferry_warn() { printf '%s: WARNING: %s\n' "${FERRY_SCRIPT:-ferry}" "$*" >&2; }
ferry_die() {
  printf '%s: ERROR: %s\n' "${FERRY_SCRIPT:-ferry}" "$*" >&2
  exit 1
}

ferry_require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    ferry_die "run this as root (it installs packages, starts daemons and mounts filesystems)"
  fi
}

# The repository root: the parent of this scripts/ folder.
ferry_repo_root() {
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
  dirname "$here"
}

# True when systemd is the init system (sd_booted(3)'s test). Containers and CI machines here
# have some other PID 1, and then daemons are started by hand.
ferry_have_systemd() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

ferry_docker() {
  env -u DOCKER_CONTEXT docker -H "unix://${FERRY_DOCKER_SOCKET}" "$@"
}

# True when dockerd answers at FERRY_DOCKER_SOCKET within a few seconds.
ferry_docker_answers() {
  command -v docker >/dev/null 2>&1 || return 1
  timeout 20 env -u DOCKER_CONTEXT docker -H "unix://${FERRY_DOCKER_SOCKET}" info >/dev/null 2>&1
}

# Node's major version, or 0 when node is missing or does not run.
ferry_node_major() {
  local v
  v="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)"
  case "$v" in
    '' | *[!0-9]*) echo 0 ;;
    *) echo "$v" ;;
  esac
}

# Without network access to Node's download site, node-gyp (better-sqlite3, cpu-features) can
# only build against the headers that came with node. Point it at them when npm is not already
# configured to, and when they match the running node exactly.
ferry_use_local_node_headers() {
  local nd prefix hdr want have
  nd="$(npm config get nodedir 2>/dev/null || true)"
  if [ -n "$nd" ] && [ "$nd" != "undefined" ] && [ "$nd" != "null" ]; then return 0; fi
  [ -n "${npm_config_nodedir:-}" ] && return 0
  prefix="$(dirname "$(dirname "$(node -p 'process.execPath')")")"
  hdr="${prefix}/include/node/node_version.h"
  [ -f "$hdr" ] || return 0
  want="$(node -p 'process.versions.node')"
  have="$(awk '/#define NODE_(MAJOR|MINOR|PATCH)_VERSION /{v = v (v == "" ? "" : ".") $3} END {print v}' "$hdr")"
  if [ "$want" = "$have" ]; then
    export npm_config_nodedir="$prefix"
  fi
}

# `npm ci` in the repository, skipped when node_modules was installed by this function from the
# same package.json, package-lock.json and node version (so repeated runs are fast; a fresh
# clone has no node_modules and always installs).
ferry_npm_ci() {
  local repo="$1" stamp want
  stamp="${repo}/node_modules/.ferry-npm-ci"
  want="$(cd "$repo" && cat package.json package-lock.json | sha256sum | cut -d' ' -f1) node-$(node --version)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    ferry_log "node_modules is up to date (npm ci skipped)"
    return 0
  fi
  ferry_use_local_node_headers
  ferry_log "npm ci"
  (cd "$repo" && npm ci --no-audit --no-fund --loglevel=warn)
  printf '%s\n' "$want" >"$stamp"
}

# Debian packages in the managed plugin's base image: what ferry's backends run (btrfs, mkfs.*,
# losetup and mount, fsfreeze, fallocate, filefrag, xfs_admin; coreutils and util-linux come with
# minbase) and the C++ runtime node links to. ferry runs no ssh, rsync or modprobe: transfers are
# ssh2 in node, and a plugin cannot load kernel modules.
FERRY_PLUGIN_PACKAGES=(btrfs-progs xfsprogs e2fsprogs mount util-linux libstdc++6)

# The base image's name: node's version, and a hash of the packages, node's binary and the
# script that builds it, so that any change to them names another image.
ferry_plugin_base_image() {
  local node here sum
  node="$(readlink -f "$(command -v node)")"
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
  sum="$({
    printf '%s\n' "${FERRY_PLUGIN_PACKAGES[@]}"
    sha256sum "$node" | cut -d' ' -f1
    cat "${here}/build-plugin-base.sh"
  } | sha256sum | cut -c1-12)"
  printf 'ferry-plugin-base:bookworm-node%s-%s\n' "$(node -p 'process.versions.node')" "$sum"
}

# The Debian mirror debootstrap fetches from: FERRY_DEBIAN_MIRROR, else the one apt uses here (an
# internal one in CI), else Debian's own.
ferry_debian_mirror() {
  local mirror="${FERRY_DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror="$(grep -rhoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
      /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | awk '{print $2}' | head -n 1 || true)"
  fi
  printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}
