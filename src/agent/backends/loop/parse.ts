/** Pure readers for the loop backend: superblock probes, losetup output, file names. */
import { FerryError } from '../../../errors';
import type { LoopFilesystem } from '../backend';

/** How many bytes at the start of an image the probes below need. */
export const SUPERBLOCK_PROBE_BYTES = 2048;

// ext2/3/4: the superblock starts at byte 1024; s_magic (le16 0xEF53) is at +0x38.
const EXT_SUPER = 1024;
const EXT_MAGIC_AT = EXT_SUPER + 0x38;
const EXT_MAGIC = 0xef53;
// s_feature_incompat (le32) at +0x60; RECOVER (0x4) means the journal must be replayed before use.
const EXT_INCOMPAT_AT = EXT_SUPER + 0x60;
const EXT_INCOMPAT_RECOVER = 0x4;
// xfs: the primary superblock is at byte 0 and starts with "XFSB".
const XFS_MAGIC = 'XFSB';

/**
 * The filesystem in an image from its first SUPERBLOCK_PROBE_BYTES bytes, or undefined when it
 * holds neither. ext2 and ext3 count as ext4 (the ext4 driver mounts them).
 */
export function detectFilesystem(head: Buffer): LoopFilesystem | undefined {
  if (head.length >= 4 && head.toString('latin1', 0, 4) === XFS_MAGIC) return 'xfs';
  if (head.length >= EXT_MAGIC_AT + 2 && head.readUInt16LE(EXT_MAGIC_AT) === EXT_MAGIC) return 'ext4';
  return undefined;
}

/** True when an ext4 superblock says its journal needs replaying (the image was not cleanly unmounted or frozen). */
export function ext4NeedsRecovery(head: Buffer): boolean {
  if (head.length < EXT_INCOMPAT_AT + 4) return false;
  return (head.readUInt32LE(EXT_INCOMPAT_AT) & EXT_INCOMPAT_RECOVER) !== 0;
}

/**
 * Device names from `losetup --list --json --output NAME` (see commands.losetupAssociated).
 * util-linux prints `{"loopdevices": []}` or nothing at all when no device matches.
 */
export function parseLosetupNames(stdout: string): string[] {
  if (!stdout.trim()) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    throw new FerryError('INTERNAL', `cannot read losetup output: ${(err as Error).message}`, { cause: err });
  }
  const devices = (parsed as { loopdevices?: unknown }).loopdevices;
  if (!Array.isArray(devices)) return [];
  return devices
    .map((d) => (d as { name?: unknown }).name)
    .filter((n): n is string => typeof n === 'string' && n.startsWith('/dev/'));
}

/** Suffix of every image file, live or snapshot. */
export const IMAGE_SUFFIX = '.img';

/** The dataset or snapshot name of an image file name, or undefined for anything else (temps, strays). */
export function imageEntryName(entry: string): string | undefined {
  if (entry.startsWith('.') || !entry.endsWith(IMAGE_SUFFIX) || entry.length === IMAGE_SUFFIX.length) return undefined;
  return entry.slice(0, -IMAGE_SUFFIX.length);
}
