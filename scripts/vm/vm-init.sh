#!/bin/busybox sh
# The init of run-in-vm.sh's virtual machine, in two stages.
#   stage 1 (the initramfs's /init): load the 9p and overlay modules, mount the host's / read-only
#     with a tmpfs overlay (the unpacked packages and kernel modules on top), switch to it;
#   stage 2 (this file again, in the new root): mount the kernel's filesystems, load the asked
#     modules, run the command, write its exit code to the shared dir, power off.
# Nothing here may fail silently: every failure still writes an exit code and powers off.

if [ "$1" != stage2 ]; then
  B=/bin/busybox
  $B mount -t proc proc /proc
  $B mount -t sysfs sys /sys
  $B mount -t devtmpfs dev /dev
  fail() {
    echo "vm-init: $*" >/dev/console
    [ -f /out/vm.env ] || $B mount -t 9p -o trans=virtio,version=9p2000.L out /out
    echo "vm-init: $*" >>/out/output.log
    echo 125 >/out/exit-code
    $B poweroff -f
  }
  for m in $($B cat /mods/order); do $B insmod "/mods/$m" 2>/dev/null; done
  $B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /out || fail "cannot mount the shared out dir"
  . /out/vm.env
  # cache=loose: the host's / is read-only for the VM's whole life, so caching it is safe and fast.
  $B mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower || fail "cannot mount the host's root"
  # The cache (unpacked packages, kernel modules) is its own share: overlayfs refuses layers that
  # overlap, and a path under /lower would.
  $B mkdir -p /rw /cache
  $B mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose cache /cache || fail "cannot mount the cache"
  $B mount -t tmpfs -o size=90% tmpfs /rw || fail "no tmpfs"
  $B mkdir -p /rw/upper /rw/work
  lower=""
  for d in $(echo "$FERRY_VM_LOWER" | $B tr ':' ' '); do lower="$lower/cache/$d:"; done
  $B mount -t overlay -o "lowerdir=${lower}/lower,upperdir=/rw/upper,workdir=/rw/work" overlay /newroot || fail "cannot mount the overlay root"
  $B mkdir -p /newroot/ferry-vm-out
  $B mount --move /out /newroot/ferry-vm-out
  $B mkdir -p /newroot/.ferry-vm
  $B cp /init /newroot/.ferry-vm/init
  $B cp $B /newroot/.ferry-vm/busybox
  exec $B switch_root /newroot /.ferry-vm/busybox sh /.ferry-vm/init stage2
fi

# stage 2
B=/.ferry-vm/busybox
OUT=/ferry-vm-out
. $OUT/vm.env
export PATH="$FERRY_VM_PATH:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root FERRY_VM_OUT=$OUT FERRY_IN_VM=1
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B mkdir -p /dev/pts /dev/shm
$B mount -t devpts devpts /dev/pts
$B mount -t tmpfs tmpfs /dev/shm
$B mount -t tmpfs tmpfs /run
# The host's /tmp stays reachable under /.ferry-vm/host-tmp: the command's own dir may be there.
$B mkdir -p /.ferry-vm/host-tmp
$B mount -o bind /tmp /.ferry-vm/host-tmp
$B mount -t tmpfs -o size=90% tmpfs /tmp
case "$FERRY_VM_CWD" in
/tmp/?*)
  $B mkdir -p "$FERRY_VM_CWD"
  $B mount -o bind "/.ferry-vm/host-tmp/${FERRY_VM_CWD#/tmp/}" "$FERRY_VM_CWD" || echo "vm-init: cannot bind $FERRY_VM_CWD" >>$OUT/output.log
  ;;
esac
$B mount -t tmpfs tmpfs /var/tmp 2>/dev/null
$B mkdir -p /run/lock /root
$B hostname ferry-vm
$B ip link set lo up 2>/dev/null
# Emulated clocks drift; the command gets the host's wall time at boot.
for m in $FERRY_VM_MODULES; do
  modprobe "$m" >>$OUT/output.log 2>&1 || echo "vm-init: cannot load module $m" >>$OUT/output.log
done
/bin/bash $OUT/command.sh >>$OUT/output.log 2>&1 </dev/null
echo $? >$OUT/exit-code.tmp
$B sync
$B mv $OUT/exit-code.tmp $OUT/exit-code
$B sync
$B poweroff -f
