#!/usr/bin/env bash
# Builds the local test image ferry-test/busybox:latest, unless dockerd already has it.
#
#   sudo bash scripts/build-test-image.sh
#   FERRY_TEST_IMAGE=ferry-test/busybox:try sudo bash scripts/build-test-image.sh
#   FERRY_TEST_IMAGE_REBUILD=1 ...   (build even if the image exists)
#
# No registry is reachable, so nothing is pulled: the image is a rootfs holding Debian's static
# busybox (package busybox-static) as /bin/busybox, a symlink in /bin for every applet that
# `busybox --list` names, /sbin, /usr/bin and /usr/sbin as links to /bin, a minimal
# /etc/passwd and /etc/group, and an empty /tmp; `docker import` makes it an image with
# CMD ["/bin/sh"]. A container from it is run once to check it works.
set -euo pipefail
FERRY_SCRIPT=build-test-image
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${FERRY_TEST_IMAGE:-ferry-test/busybox:latest}"

ferry_require_root
ferry_docker_answers || ferry_die "dockerd does not answer at ${FERRY_DOCKER_SOCKET}: run scripts/start-dockerd.sh first"

if [ "${FERRY_TEST_IMAGE_REBUILD:-0}" != 1 ] && ferry_docker image inspect "$IMAGE" >/dev/null 2>&1; then
  ferry_log "${IMAGE} is there"
  exit 0
fi

# Debian's busybox-static; the dynamic busybox package would not run in a rootfs without libc.
busybox=""
if [ "$(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null || true)" = "installed" ]; then
  busybox="$(dpkg-query -L busybox-static | grep -E '/bin/busybox$' | head -n 1 || true)"
fi
if [ -z "$busybox" ] || [ ! -x "$busybox" ]; then
  ferry_die "Debian's busybox-static is not installed: run scripts/install-deps.sh first"
fi

workdir="$(mktemp -d /tmp/ferry-image-XXXXXX)"
trap 'rm -rf "$workdir"' EXIT
root="${workdir}/rootfs"
mkdir -p "${root}/bin" "${root}/usr" "${root}/etc" "${root}/root" "${root}/tmp" "${root}/var/tmp" \
  "${root}/proc" "${root}/sys" "${root}/dev" "${root}/run"
chmod 1777 "${root}/tmp" "${root}/var/tmp"
chmod 700 "${root}/root"
cp "$busybox" "${root}/bin/busybox"
chmod 755 "${root}/bin/busybox"

count=0
while IFS= read -r applet; do
  case "$applet" in
    '' | busybox | */*) continue ;;
  esac
  ln -sf busybox "${root}/bin/${applet}"
  count=$((count + 1))
done < <("${root}/bin/busybox" --list)
[ "$count" -gt 0 ] || ferry_die "busybox --list named no applets"
ln -s bin "${root}/sbin"
ln -s ../bin "${root}/usr/bin"
ln -s ../bin "${root}/usr/sbin"

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"${root}/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"${root}/etc/group"
: >"${root}/etc/hosts"
: >"${root}/etc/resolv.conf"

ferry_log "importing ${IMAGE} (busybox with ${count} applets)"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
  ferry_docker import \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message 'ferry test image: Debian busybox-static' \
    - "$IMAGE" >/dev/null

if ! out="$(ferry_docker run --rm --network none "$IMAGE" /bin/sh -c 'echo ok' 2>&1)" || [ "$out" != "ok" ]; then
  ferry_docker image rm "$IMAGE" >/dev/null 2>&1 || true
  ferry_die "the imported image does not run a shell: ${out}"
fi
ferry_log "built ${IMAGE}"
