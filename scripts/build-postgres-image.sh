#!/usr/bin/env bash
# Builds the local test image ferry-test/postgres:15, unless dockerd already has it.
#
#   sudo bash scripts/build-postgres-image.sh
#   FERRY_POSTGRES_IMAGE=ferry-test/postgres:try ...   (another tag)
#   FERRY_POSTGRES_IMAGE_REBUILD=1 ...                 (build even if the image exists)
#   FERRY_POSTGRES_ROOTFS_ONLY=1 ...                   (only make the rootfs tarball: no dockerd needed)
#
# No registry is reachable, so nothing is pulled: `debootstrap --variant=minbase` makes a Debian 12
# (bookworm) root filesystem with Debian's postgresql-15 (and its psql), docs, man pages, locales
# and the cluster its postinst made are dropped, /usr/local/bin/ferry-postgres is the entrypoint,
# and `docker import` makes the image. The entrypoint runs initdb when PGDATA
# (/var/lib/postgresql/data/pgdata: a subdirectory, since a volume's root may hold lost+found)
# has no PG_VERSION, then execs postgres as the postgres user (trust auth, listening on the unix
# socket and on every address). The cross-cluster bank test backs up and restores its data.
# debootstrap's downloads are kept in /var/cache/ferry/debootstrap (shared with the plugin base),
# and the finished rootfs as /var/cache/ferry/postgres-rootfs-<hash of this script>.tar: debootstrap
# takes 2-10 minutes on 2 cores, and a dockerd that lost its images imports it again in seconds.
set -euo pipefail
FERRY_SCRIPT=build-postgres-image
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${FERRY_POSTGRES_IMAGE:-ferry-test/postgres:15}"

ferry_require_root
rootfs_only="${FERRY_POSTGRES_ROOTFS_ONLY:-0}"
if [ "$rootfs_only" != 1 ]; then
  ferry_docker_answers || ferry_die "dockerd does not answer at ${FERRY_DOCKER_SOCKET}: run scripts/start-dockerd.sh first"
  if [ "${FERRY_POSTGRES_IMAGE_REBUILD:-0}" != 1 ] && ferry_docker image inspect "$IMAGE" >/dev/null 2>&1; then
    ferry_log "${IMAGE} is there"
    exit 0
  fi
fi

cache=/var/cache/ferry
mkdir -p "${cache}/debootstrap"
rootfs_tar="${cache}/postgres-rootfs-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12).tar"
started=$SECONDS
if [ ! -s "$rootfs_tar" ]; then
  command -v debootstrap >/dev/null 2>&1 || ferry_die "debootstrap not found: run scripts/install-deps.sh first"
  mirror="$(ferry_debian_mirror)"
  workdir="$(mktemp -d /var/tmp/ferry-postgres-image-XXXXXX)"
  # debootstrap mounts /proc and /sys in the rootfs while it works, and a failed run can leave them:
  # unmount whatever is under the work dir, and never delete across a mount.
  cleanup() {
    findmnt -rn -o TARGET | grep -F "$workdir" | sort -r | xargs -r -d '\n' umount -l 2>/dev/null || true
    rm -rf --one-file-system "$workdir"
  }
  trap cleanup EXIT
  root="${workdir}/rootfs"

  ferry_log "debootstrap --variant=minbase bookworm from ${mirror} (with postgresql-15); log: ${workdir}/debootstrap.log"
  if ! debootstrap --variant=minbase --cache-dir="${cache}/debootstrap" --include=postgresql-15 bookworm "$root" "$mirror" \
    >"${workdir}/debootstrap.log" 2>&1; then
    tail -n 20 "${workdir}/debootstrap.log" >&2
    ferry_die "debootstrap failed (above: the end of its log); is ${mirror} reachable? Set FERRY_DEBIAN_MIRROR to another mirror"
  fi
  ferry_log "debootstrap took $((SECONDS - started)) s"

  # postgresql-common's postinst may have made a 'main' cluster: the entrypoint makes its own.
  rm -rf "${root}/etc/postgresql/15" "${root}/var/lib/postgresql/15"
  # LLVM is only postgres's optional JIT (off without llvmjit.so): about 110 MB the tests do without.
  rm -f "${root}"/usr/lib/postgresql/15/lib/llvmjit*
  rm -rf "${root}/usr/lib/postgresql/15/lib/bitcode"
  chroot "$root" dpkg --purge --force-depends $(chroot "$root" dpkg-query -W -f '${Package}\n' | grep -E '^(libllvm|libz3)') \
    >"${workdir}/purge.log" 2>&1 || {
    tail -n 20 "${workdir}/purge.log" >&2
    ferry_die "dpkg --purge of LLVM in the rootfs failed (above: the end of its output)"
  }
  chroot "$root" /usr/lib/postgresql/15/bin/postgres --version >/dev/null ||
    ferry_die "postgres does not run in the rootfs without LLVM"
  rm -rf "${root}"/var/lib/apt/lists/* "${root}"/var/cache/apt/* "${root}"/var/cache/debconf/*-old \
    "${root}"/usr/share/doc/* "${root}"/usr/share/man/* "${root}"/usr/share/info/* \
    "${root}"/usr/share/locale/* "${root}"/var/log/* "${root}"/tmp/* "${root}"/var/tmp/*
  : >"${root}/etc/resolv.conf"
  mkdir -p "${root}/var/lib/postgresql/data" "${root}/run/postgresql"
  chroot "$root" chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/data /run/postgresql

  cat >"${root}/usr/local/bin/ferry-postgres" <<'ENTRY'
#!/bin/sh
# initdb an empty PGDATA, then run postgres as the postgres user (its arguments pass through).
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data/pgdata}"
export PGDATA
bin=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
if [ ! -s "${PGDATA}/PG_VERSION" ]; then
  as_postgres "${bin}/initdb" -D "$PGDATA" --username=postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
  echo "listen_addresses = '*'" >>"${PGDATA}/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >>"${PGDATA}/pg_hba.conf"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${bin}/postgres" -D "$PGDATA" "$@"
ENTRY
  chmod 755 "${root}/usr/local/bin/ferry-postgres"
  ferry_log "rootfs of $(du -sh --apparent-size "$root" | cut -f1) into ${rootfs_tar}"
  tar --numeric-owner --one-file-system -C "$root" -cf "${rootfs_tar}.part" .
  mv "${rootfs_tar}.part" "$rootfs_tar"
  # Older rootfs tarballs are only a cache of earlier scripts.
  find "$cache" -maxdepth 1 -name 'postgres-rootfs-*.tar' ! -path "$rootfs_tar" -delete
fi
[ "$rootfs_only" != 1 ] || exit 0

ferry_log "importing ${IMAGE} from ${rootfs_tar}"
ferry_docker import \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data/pgdata' \
    --change 'ENTRYPOINT ["/usr/local/bin/ferry-postgres"]' \
    --message 'ferry test image: Debian bookworm minbase with postgresql-15' \
    "$rootfs_tar" "$IMAGE" >/dev/null

# It must start on an empty data directory and answer a query.
name="ferry-postgres-check-$$"
ferry_docker run -d --name "$name" --network none "$IMAGE" >/dev/null
ok=0
for _ in $(seq 1 60); do
  if ferry_docker exec "$name" psql -U postgres -tAc 'select 40+2' 2>/dev/null | grep -qx 42; then
    ok=1
    break
  fi
  sleep 0.5
done
logs="$(ferry_docker logs "$name" 2>&1 | tail -n 20 || true)"
ferry_docker rm -f "$name" >/dev/null 2>&1 || true
if [ "$ok" != 1 ]; then
  ferry_docker image rm "$IMAGE" >/dev/null 2>&1 || true
  ferry_die "postgres in ${IMAGE} did not answer within 30 s; its log: ${logs}"
fi
ferry_log "built ${IMAGE} in $((SECONDS - started)) s"
