/**
 * What the loop backend asks about an image file on this host: its filesystem, its loop devices and
 * their mounts, its extent map; and the one repair a copied image needs before it is mounted.
 */
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { mkdtemp, open, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../../../errors';
import type { Runner } from '../../../exec/runner';
import type { Logger } from '../../../log';
import { isMountPoint, readMountTable } from '../../mount-table';
import type { LoopFilesystem } from './descriptor';
import { DEFAULT_PAGE_BYTES } from './block-stream';
import * as cmd from './commands';
import { TEMP_PREFIX } from '../files';
import { SUPERBLOCK_PROBE_BYTES, detectFilesystem, ext4NeedsRecovery, parseFilefrag, parseLosetupNames, rangesToCompare, type Extent, type Range } from './parse';

/** An extent map must account for at least this share of a file's allocated bytes to be trusted. */
const MIN_MAPPED_SHARE = 0.9;

/** The first bytes of an image (zeros past its end). Throws `missing()` when there is no file. */
export async function readHead(image: string, missing: () => FerryError): Promise<Buffer> {
  const head = Buffer.alloc(SUPERBLOCK_PROBE_BYTES);
  let fh;
  try {
    fh = await open(image, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw err;
  }
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  return head;
}

/** The filesystem in an image. Throws `missing()` without a file, INTERNAL when it holds neither ext4 nor xfs. */
export async function filesystemOf(image: string, missing: () => FerryError): Promise<LoopFilesystem> {
  const fs = detectFilesystem(await readHead(image, missing));
  if (!fs) throw new FerryError('INTERNAL', `image ${image} holds neither ext4 nor xfs: it is damaged; restore it from a snapshot`);
  return fs;
}

/** The filesystem of an image, read synchronously (send() builds its header before it returns). */
export function filesystemOfSync(image: string, missing: () => FerryError): LoopFilesystem | undefined {
  let fd: number;
  try {
    fd = openSync(image, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw err;
  }
  try {
    const head = Buffer.alloc(SUPERBLOCK_PROBE_BYTES);
    readSync(fd, head, 0, head.length, 0);
    return detectFilesystem(head);
  } finally {
    closeSync(fd);
  }
}

/** Loop devices attached to `image` (by inode, whatever path they were attached by). */
export async function loopDevices(runner: Runner, image: string): Promise<string[]> {
  return parseLosetupNames((await runner.run(cmd.losetupAssociated(image))).stdout);
}

/** Where, in this mount namespace, any of `devices` is mounted. */
export function mountPointsOf(devices: readonly string[]): string[] {
  if (devices.length === 0) return [];
  return readMountTable()
    .filter((e) => devices.includes(e.source))
    .map((e) => e.mountPoint);
}

/** True when a block device is held open exclusively (mounted), in any mount namespace. */
export async function deviceHeld(device: string): Promise<boolean> {
  try {
    // O_EXCL on a block device (without O_CREAT) fails with EBUSY while it is mounted.
    const fh = await open(device, fsConstants.O_RDONLY | fsConstants.O_EXCL);
    await fh.close();
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EBUSY';
  }
}

/**
 * Makes a copied image mountable, read-only included, next to its source. A copy of a frozen xfs
 * is consistent but its log is not clean, and a read-only mount cannot replay it; and xfs refuses
 * to mount two filesystems with one UUID. So xfs is mounted once privately (nouuid) to replay the
 * log, then given a new UUID. ext4's freeze leaves the journal clean: it is replayed only when its
 * superblock asks. `scratchDir` holds the private mount point.
 */
export async function makeMountable(runner: Runner, image: string, scratchDir: string): Promise<void> {
  const head = await readHead(image, () => new FerryError('INTERNAL', `image ${image} vanished`));
  const fs = detectFilesystem(head);
  if (fs === undefined) throw new FerryError('INTERNAL', `snapshot image ${image} holds neither ext4 nor xfs: it is damaged`);
  if (fs === 'ext4' && !ext4NeedsRecovery(head)) return;
  const mnt = await mkdtemp(join(scratchDir, `${TEMP_PREFIX}mnt-`));
  try {
    await runner.run(fs === 'xfs' ? cmd.mountXfsForRecovery(image, mnt) : cmd.mountExt4ForRecovery(image, mnt));
    await runner.run(cmd.umount(mnt));
  } finally {
    if (isMountPoint(mnt)) await runner.run(cmd.umount(mnt)).catch(() => undefined);
    await rmdir(mnt).catch(() => undefined);
  }
  if (fs === 'xfs') await runner.run(cmd.xfsNewUuid(image));
}

/** The extents of `file`, or undefined when they do not account for its allocated blocks. */
async function extentMap(runner: Runner, log: Logger, file: string): Promise<Extent[] | undefined> {
  const extents = parseFilefrag((await runner.run(cmd.fileExtents(file))).stdout);
  const allocated = (await stat(file)).blocks * 512;
  const mapped = extents.reduce((sum, x) => sum + x.length, 0);
  // A map that missed allocated data would drop it from the stream: distrust any that looks short.
  if (mapped < allocated * MIN_MAPPED_SHARE) {
    log.warn({ file, allocated, mapped }, 'extent map does not cover the allocated blocks; comparing whole images');
    return undefined;
  }
  return extents;
}

/**
 * The ranges that may differ between `image` and `base` (or hold data, without a base), from the
 * files' extent maps: holes, and blocks the two share on disk (reflinks), are skipped unread.
 * Undefined (compare everything) when a map cannot be read or does not add up.
 */
export async function rangesWorthComparing(runner: Runner, log: Logger, image: string, base: string | undefined): Promise<Range[] | undefined> {
  try {
    const [a, b] = await Promise.all([extentMap(runner, log, image), base === undefined ? undefined : extentMap(runner, log, base)]);
    if (!a || (base !== undefined && !b)) return undefined;
    return rangesToCompare((await stat(image)).size, a, b, DEFAULT_PAGE_BYTES);
  } catch (err) {
    log.warn({ err, image, base }, 'cannot read extent maps; comparing whole images');
    return undefined;
  }
}
