#!/usr/bin/env bash
# Builds ferry as a managed (v2) Docker plugin and creates it in the local dockerd:
#
#   sudo bash scripts/build-plugin.sh            # plugin "ferry"
#   FERRY_PLUGIN_NAME=ferry:dev sudo bash scripts/build-plugin.sh
#   docker plugin enable ferry
#
# 1. `docker build` of the Dockerfile (tag ferry-plugin-rootfs:build), FROM the base image
#    FERRY_PLUGIN_BASE (default node:20-bookworm-slim), which must already be in dockerd or be
#    pullable: when it is neither, this stops and says so. ferry's development and CI machines
#    reach no container registry, so there it always stops here.
# 2. that image's filesystem, through `docker create` + `docker export`, becomes plugin/rootfs/;
# 3. config.json is copied to plugin/config.json;
# 4. `docker plugin create NAME plugin/`.
# An existing plugin of that name is never replaced: `docker plugin rm` deletes the plugin's
# propagated mount, and with it every ferry volume it holds (see plugin/README.md).
set -euo pipefail
FERRY_SCRIPT=build-plugin
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO="$(ferry_repo_root)"
NAME="${FERRY_PLUGIN_NAME:-ferry}"
BASE="${FERRY_PLUGIN_BASE:-node:20-bookworm-slim}"
IMAGE=ferry-plugin-rootfs:build
PLUGIN_DIR="${REPO}/plugin"

ferry_require_root
cd "$REPO"
ferry_docker_answers || ferry_die "dockerd does not answer at ${FERRY_DOCKER_SOCKET}: run scripts/start-dockerd.sh first"

if ferry_docker plugin inspect "$NAME" >/dev/null 2>&1; then
  ferry_die "a plugin named ${NAME} exists already. To replace it: docker plugin disable ${NAME} &&" \
    "docker plugin rm ${NAME} (this deletes the ferry volumes it holds), or build under another" \
    "name: FERRY_PLUGIN_NAME=ferry:dev bash scripts/build-plugin.sh"
fi

if ! ferry_docker image inspect "$BASE" >/dev/null 2>&1; then
  ferry_log "pulling the base image ${BASE}"
  if ! out="$(ferry_docker pull "$BASE" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 5 >&2
    ferry_die "cannot pull the base image ${BASE}, which the plugin's root filesystem is built FROM." \
      "No container registry is reachable from here (as on ferry's development and CI machines)." \
      "Build on a machine that reaches one, or bring the image here: docker save ${BASE} > base.tar" \
      "there, docker load < base.tar here; or set FERRY_PLUGIN_BASE to a Debian 12 image with" \
      "Node.js >= 20 at /usr/local/bin/node that dockerd already has."
  fi
fi

# The docker CLI since 23 builds with BuildKit through the buildx plugin; without buildx, the
# classic builder (enough for this Dockerfile) is asked for explicitly.
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi
ferry_log "docker build -t ${IMAGE} (FROM ${BASE})"
ferry_docker build --build-arg "BASE=${BASE}" -t "$IMAGE" "$REPO"

cid=""
cleanup() {
  if [ -n "$cid" ]; then ferry_docker rm -f "$cid" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

ferry_log "exporting the image's filesystem to ${PLUGIN_DIR}/rootfs"
rm -rf "${PLUGIN_DIR}/rootfs"
mkdir -p "${PLUGIN_DIR}/rootfs"
cid="$(ferry_docker create "$IMAGE" true)"
ferry_docker export "$cid" | tar -x --numeric-owner -C "${PLUGIN_DIR}/rootfs"
[ -x "${PLUGIN_DIR}/rootfs/usr/local/bin/node" ] ||
  ferry_die "the image has no /usr/local/bin/node, which config.json's entrypoint runs: is ${BASE} a Node.js image?"
[ -f "${PLUGIN_DIR}/rootfs/opt/ferry/dist/src/cli/main.js" ] ||
  ferry_die "the image has no /opt/ferry/dist/src/cli/main.js: the build stage did not build ferry"
cp "${REPO}/config.json" "${PLUGIN_DIR}/config.json"

ferry_log "docker plugin create ${NAME} ${PLUGIN_DIR}"
ferry_docker plugin create "$NAME" "$PLUGIN_DIR"
ferry_log "created plugin ${NAME} (disabled). Next: docker plugin enable ${NAME}"
ferry_log "then: docker volume create -d ${NAME} -o size=1G demo"
