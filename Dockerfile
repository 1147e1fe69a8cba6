# The root filesystem of ferry as a managed (v2) Docker plugin. scripts/build-plugin.sh builds
# this image, exports its filesystem into plugin/rootfs/, puts config.json beside it and runs
# `docker plugin create`; see plugin/README.md.
#
# It cannot be built on ferry's own development and CI machines: no container registry is
# reachable there, so the base image cannot be pulled (scripts/build-plugin.sh stops with a
# message saying so). Build it where a registry is reachable, or `docker load` the base image.
#
# The base must be Debian 12 (bookworm) with Node.js >= 20 at /usr/local/bin/node, on the PATH
# dockerd gives a plugin, where bin/ferry (config.json's entrypoint) looks for it; build and
# runtime stages share it, so that the better-sqlite3 addon built in the first runs in the second.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
# better-sqlite3 compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# tsconfig.json also includes test/ and bench/, which .dockerignore leaves out: only
# dist/src is built, and only it is shipped.
RUN npm run build && npm prune --omit=dev

FROM ${BASE}
# What the backends run: btrfs (btrfs-progs), loop images (e2fsprogs, xfsprogs, mount's
# losetup), findmnt and friends (util-linux); transfers may use ssh and rsync.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      btrfs-progs xfsprogs e2fsprogs util-linux mount kmod openssh-client rsync ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ferry
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY bin ./bin
# config.json mounts the host's /run at /run/host. ferry's default dockerSocket,
# /var/run/docker.sock (= /run/docker.sock), leads there; its API socket is put at
# /run/host/ferry/ferry.sock by the entrypoint's --api-socket, which is /run/ferry/ferry.sock on
# the host, where the ferry CLI looks by default. /var/lib/ferry is the propagatedMount.
RUN mkdir -p /var/lib/ferry /run/docker/plugins /run/host \
 && ln -sfn /run/host/docker.sock /run/docker.sock
