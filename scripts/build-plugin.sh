#!/usr/bin/env bash
# Builds ferry as a managed (v2) Docker plugin, without any container registry:
#
#   sudo bash scripts/build-plugin.sh                          # creates the plugin "ferry" (disabled)
#   sudo bash scripts/build-plugin.sh ferry:dev                # under another name
#   sudo bash scripts/build-plugin.sh --push REGISTRY/ferry:0.1.0
#        # creates it under that reference, `docker plugin push`es it, and removes the local copy;
#        # each host then: docker plugin install REGISTRY/ferry:0.1.0 --alias ferry --grant-all-permissions
#
# 1. the base image (scripts/build-plugin-base.sh: debootstrap'd Debian 12 with node and the
#    backends' tools, `docker import`ed; built once, then reused);
# 2. `npm run build` (skipped with FERRY_PLUGIN_NO_BUILD=1, when dist/ is known to be current);
# 3. a staging folder: the base image's filesystem (`docker create` + `docker export`) as rootfs/,
#    ferry in rootfs/opt/ferry (dist/src, bin, package.json, and node_modules without the dev
#    packages: `npm prune --omit=dev --offline` on a copy), rootfs/opt/ferry/BUILD saying which
#    build it is (FERRY_PLUGIN_STAMP, default: version, git commit, time), and config.json;
# 4. `docker plugin create NAME staging/`, and with --push `docker plugin push NAME`.
# No `docker build`: nothing here is FROM a registry's image. An existing plugin of that name is
# never replaced: `docker plugin rm` deletes the plugin's propagated mount, and with it every
# ferry volume it holds (see plugin/README.md).
set -euo pipefail
FERRY_SCRIPT=build-plugin
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

push=0
if [ "${1:-}" = "--push" ]; then
  push=1
  shift
  [ -n "${1:-}" ] || ferry_die "--push needs the reference to push to, e.g. 127.0.0.1:5000/ferry:0.1.0"
fi
REPO="$(ferry_repo_root)"
NAME="${1:-ferry}"
VERSION="$(node -p "require('${REPO}/package.json').version")"
STAMP="${FERRY_PLUGIN_STAMP:-ferry ${VERSION} $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown) built $(date -u +%Y-%m-%dT%H:%M:%SZ)}"

ferry_require_root
cd "$REPO"
ferry_docker_answers || ferry_die "dockerd does not answer at ${FERRY_DOCKER_SOCKET}: run scripts/start-dockerd.sh first"
if ferry_docker plugin inspect "$NAME" >/dev/null 2>&1; then
  ferry_die "a plugin named ${NAME} exists already. To replace it: docker plugin disable ${NAME} &&" \
    "docker plugin rm ${NAME} (this deletes the ferry volumes it holds), or build under another" \
    "name: bash scripts/build-plugin.sh ferry:dev"
fi

BASE="$(bash "${REPO}/scripts/build-plugin-base.sh" | tail -n 1)"
if [ "${FERRY_PLUGIN_NO_BUILD:-0}" != 1 ]; then
  ferry_log "npm run build"
  npm run build --silent
fi
[ -f "${REPO}/dist/src/cli/main.js" ] || ferry_die "dist/src/cli/main.js is missing: run npm run build first"

stage="$(mktemp -d /var/tmp/ferry-plugin-XXXXXX)"
cid=""
cleanup() {
  if [ -n "$cid" ]; then ferry_docker rm -f "$cid" >/dev/null 2>&1 || true; fi
  rm -rf "$stage"
}
trap cleanup EXIT
rootfs="${stage}/rootfs"
app="${rootfs}/opt/ferry"

started=$SECONDS
ferry_log "rootfs from ${BASE}"
mkdir -p "$rootfs"
cid="$(ferry_docker create "$BASE" /usr/local/bin/node)"
ferry_docker export "$cid" | tar -x --numeric-owner -C "$rootfs"

ferry_log "ferry ${VERSION} into /opt/ferry"
mkdir -p "${app}/dist"
cp -a "${REPO}/package.json" "${REPO}/package-lock.json" "${REPO}/bin" "$app/"
cp -a "${REPO}/dist/src" "${app}/dist/src"
# node_modules may be a symlink (worktrees share one): copy what it points at.
cp -a "${REPO}/node_modules/." "${app}/node_modules/"
(cd "$app" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
# Native addons need only their .node files at run time: not their sources, objects or archives.
for build in "${app}"/node_modules/*/build "${app}"/node_modules/@*/*/build; do
  [ -d "${build}/Release" ] || continue
  find "$build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "${build}/Release" -mindepth 1 -maxdepth 1 \( ! -name '*.node' -o -name 'test_extension.node' \) -exec rm -rf {} +
done
rm -rf "${app}/node_modules/better-sqlite3/deps" "${app}/node_modules/better-sqlite3/src" "${app}/node_modules/.ferry-npm-ci"
printf '%s\n' "$STAMP" >"${app}/BUILD"

# config.json mounts the host's /run at /run/host. ferry's default dockerSocket,
# /var/run/docker.sock (= /run/docker.sock), leads there; its API socket is put at
# /run/host/ferry/ferry.sock by the entrypoint's --api-socket, which is /run/ferry/ferry.sock on
# the host, where the ferry CLI looks by default. /var/lib/ferry is the propagatedMount.
mkdir -p "${rootfs}/var/lib/ferry" "${rootfs}/run/docker/plugins" "${rootfs}/run/host"
ln -sfn /run/host/docker.sock "${rootfs}/run/docker.sock"
env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot "$rootfs" /opt/ferry/bin/ferry --help >/dev/null ||
  ferry_die "ferry does not start in the plugin's rootfs (chroot ${rootfs} /opt/ferry/bin/ferry --help)"
cp "${REPO}/config.json" "${stage}/config.json"

ferry_log "docker plugin create ${NAME} ($(du -sh --apparent-size "$rootfs" | cut -f1), staged in $((SECONDS - started)) s)"
ferry_docker plugin create "$NAME" "$stage" >/dev/null
if [ "$push" = 1 ]; then
  ferry_log "docker plugin push ${NAME}"
  started=$SECONDS
  if ! out="$(ferry_docker plugin push "$NAME" 2>&1)"; then
    ferry_docker plugin rm "$NAME" >/dev/null 2>&1 || true
    printf '%s\n' "$out" | tail -n 5 >&2
    ferry_die "docker plugin push ${NAME} failed"
  fi
  # The local copy was made only to push; it was never enabled and holds no volume.
  ferry_docker plugin rm "$NAME" >/dev/null
  ferry_log "pushed ${NAME} in $((SECONDS - started)) s. Install it: docker plugin install ${NAME} --alias ferry --grant-all-permissions"
else
  ferry_log "created plugin ${NAME} (disabled). Next: docker plugin enable ${NAME}"
  ferry_log "then: docker volume create -d ${NAME} -o size=1G demo"
fi
