/**
 * argv builders for the tools the loop backend runs (e2fsprogs 1.47, xfsprogs 6.1, util-linux 2.38,
 * coreutils 9.1). Pure: they only build arrays; parsers live in parse.ts.
 */
import type { LoopFilesystem } from './descriptor';

/** Formats the (sparse, fresh) image file `image` with `fs`. */
export function mkfs(fs: LoopFilesystem, image: string): string[] {
  if (fs === 'xfs') {
    // -q: no summary (nothing in it is read). -f: write over whatever the file holds (it is ours
    // and fresh; without -f mkfs.xfs refuses a file that looks like it has a filesystem).
    return ['mkfs.xfs', '-q', '-f', image];
  }
  return [
    'mkfs.ext4',
    '-q', // no summary
    '-F', // it is a regular file, not a block device: do not ask
    '-b', '4096', // 4 KiB blocks even for small images (mke2fs picks 1 KiB below 512 MiB)
    '-m', '0', // no blocks reserved for root: a volume's whole size is the container's
    // The image is a fresh sparse file, so tables and journal already read as zeros: skip writing them.
    // (mke2fs also discards the file, which marks the inode tables zeroed, so no lazyinit thread
    // writes behind our back after mount.)
    '-E', 'lazy_itable_init=1,lazy_journal_init=1',
    image,
  ];
}

/** Mounts an xfs image privately to replay its log (`nouuid`: a copy shares its source's UUID). */
export function mountXfsForRecovery(image: string, target: string): string[] {
  // loop: util-linux attaches a loop device and frees it at umount. nouuid: the copy's twin may be mounted.
  return ['mount', '-t', 'xfs', '-o', 'loop,nouuid', image, target];
}

/** Mounts an ext4 image privately to replay its journal. */
export function mountExt4ForRecovery(image: string, target: string): string[] {
  return ['mount', '-t', 'ext4', '-o', 'loop', image, target];
}

/** Unmounts a private mount made by this backend. */
export function umount(target: string): string[] {
  return ['umount', target];
}

/** Gives the xfs filesystem in `image` (unmounted, clean log) a new random UUID. */
export function xfsNewUuid(image: string): string[] {
  // -U generate: a fresh UUID; xfs refuses to mount two filesystems with the same one.
  return ['xfs_admin', '-U', 'generate', image];
}

/** Lists the loop devices whose backing file is `image` (matched by device and inode, not by path). */
export function losetupAssociated(image: string): string[] {
  // --list --json --output NAME: machine-readable, just the device names.
  return ['losetup', '--list', '--json', '--output', 'NAME', '--associated', image];
}

/** Detaches loop device `device` (lazily when still in use: the kernel frees it at last close). */
export function losetupDetach(device: string): string[] {
  return ['losetup', '--detach', device];
}

/** Flushes the filesystem mounted at `mountPoint` (syncfs). */
export function syncFilesystem(mountPoint: string): string[] {
  return ['sync', '--file-system', mountPoint];
}

/** Freezes the filesystem mounted at `mountPoint`: writes block, the on-disk image is consistent. */
export function freeze(mountPoint: string): string[] {
  return ['fsfreeze', '--freeze', mountPoint];
}

/** Thaws the filesystem mounted at `mountPoint`. */
export function unfreeze(mountPoint: string): string[] {
  return ['fsfreeze', '--unfreeze', mountPoint];
}

/** `fsfreeze --unfreeze` exits 1 for every failure; "Invalid argument" means "was not frozen". */
export const UNFREEZE_FAILED = 1;

/** Copies the image `source` to `dest` (which must not exist). */
export function copyImage(source: string, dest: string): string[] {
  // --reflink=auto: share extents where the host filesystem can (xfs, btrfs), else copy data.
  // --sparse=always: a plain copy punches holes for zero runs, so an image stays as small as its data.
  // --: the paths are never options.
  return ['cp', '--reflink=auto', '--sparse=always', '--', source, dest];
}

/** The extent map of `file` (which blocks hold data, where on disk), in bytes. */
export function fileExtents(file: string): string[] {
  // -v: the extent table. -e: extent format. -s: sync the file first. -b1: units of 1 byte.
  return ['filefrag', '-v', '-e', '-s', '-b1', file];
}
