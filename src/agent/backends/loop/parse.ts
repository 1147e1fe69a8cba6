/** Pure readers for the loop backend: superblock probes, losetup output, file names. */
import { FerryError } from '../../../errors';
import type { DatasetSpec } from '../backend';
import { LOOP_FILESYSTEMS, MIN_IMAGE_BYTES, type LoopFilesystem } from './descriptor';

const MiB = 1024 * 1024;
/** Image sizes are whole filesystem blocks. */
const SIZE_ALIGN = 4096;

/**
 * The filesystem (default ext4) and image size (rounded down to 4 KiB) for a spec. Throws
 * INVALID_OPTION for an unknown filesystem, a missing size or one below the filesystem's minimum.
 */
export function imageSpec(name: string, spec: DatasetSpec): { fs: LoopFilesystem; sizeBytes: number } {
  const fs = (spec.fs ?? 'ext4') as LoopFilesystem;
  if (!LOOP_FILESYSTEMS.includes(fs)) {
    throw new FerryError('INVALID_OPTION', `invalid fs ${JSON.stringify(fs)} for volume ${name}: valid values are ${LOOP_FILESYSTEMS.join(', ')}`);
  }
  if (spec.sizeBytes === undefined) {
    throw new FerryError('INVALID_OPTION', `backend loop needs a size for volume ${name}: add -o size=... (for example 10G)`);
  }
  const sizeBytes = Math.floor(spec.sizeBytes / SIZE_ALIGN) * SIZE_ALIGN;
  if (sizeBytes < MIN_IMAGE_BYTES[fs]) {
    throw new FerryError('INVALID_OPTION', `size ${spec.sizeBytes} is too small for ${fs} volume ${name}: the minimum is ${MIN_IMAGE_BYTES[fs] / MiB} MiB`);
  }
  return { fs, sizeBytes };
}

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

/** One extent of a file, in bytes: `length` bytes at `logical` in the file live at `physical` on disk. */
export interface Extent {
  logical: number;
  physical: number;
  length: number;
  flags: string[];
}

/**
 * Extents from `filefrag -v -e -s -b1 FILE` (e2fsprogs 1.47; see commands.fileExtents), in bytes.
 * Lines look like `   3: 157310976..157315071:      98304..    102399:   4096:   67387392: shared`
 * (the "expected" column is blank for most lines; flags come last and may be empty).
 */
export function parseFilefrag(stdout: string): Extent[] {
  const out: Extent[] = [];
  for (const line of stdout.split('\n')) {
    if (!/^\s*\d+:/.test(line)) continue;
    const fields = line.split(':');
    if (fields.length < 5) continue;
    const logical = /^\s*(\d+)\.\.\s*(\d+)\s*$/.exec(fields[1]);
    const physical = /^\s*(\d+)\.\.\s*(\d+)\s*$/.exec(fields[2]);
    const length = Number(fields[3].trim());
    if (!logical || !physical || !Number.isSafeInteger(length)) continue;
    const flags = fields[fields.length - 1].trim();
    out.push({
      logical: Number(logical[1]),
      physical: Number(physical[1]),
      length,
      flags: flags && !/^\d+$/.test(flags) ? flags.split(',') : [],
    });
  }
  return out;
}

/** [start, end) byte ranges. */
export type Range = [number, number];

/** Sorts and merges ranges (touching ones join). Pure. */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = ranges.filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** `a` minus `b`, both merged. Pure. */
export function subtractRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  let j = 0;
  for (const [s0, e] of a) {
    let s = s0;
    while (j < b.length && b[j][1] <= s) j++;
    for (let k = j; k < b.length && b[k][0] < e; k++) {
      if (b[k][0] > s) out.push([s, b[k][0]]);
      s = Math.max(s, b[k][1]);
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

// Extents whose bytes read as zeros (preallocated, never written).
const ZERO_FLAGS = ['unwritten'];
// Extents whose physical address does not say where these logical bytes are (compressed, inline,
// not yet allocated): equal addresses prove nothing for them.
const UNPLACED_FLAGS = ['encoded', 'inline', 'data_inline', 'unknown_loc', 'delalloc', 'not_aligned', 'unknown', 'encrypted'];

function dataRanges(extents: readonly Extent[]): Range[] {
  return mergeRanges(extents.filter((x) => !x.flags.some((f) => ZERO_FLAGS.includes(f))).map((x) => [x.logical, x.logical + x.length] as Range));
}

/** Logical ranges where two files map the same bytes to the same place on disk (reflinked, unchanged). */
function sharedRanges(a: readonly Extent[], b: readonly Extent[]): Range[] {
  const placed = (xs: readonly Extent[]) =>
    xs.filter((x) => !x.flags.some((f) => UNPLACED_FLAGS.includes(f) || ZERO_FLAGS.includes(f))).sort((p, q) => p.logical - q.logical);
  const pa = placed(a);
  const pb = placed(b);
  const out: Range[] = [];
  let j = 0;
  for (const x of pa) {
    const xe = x.logical + x.length;
    while (j < pb.length && pb[j].logical + pb[j].length <= x.logical) j++;
    for (let k = j; k < pb.length && pb[k].logical < xe; k++) {
      const y = pb[k];
      if (x.physical - x.logical !== y.physical - y.logical) continue;
      const s = Math.max(x.logical, y.logical);
      const e = Math.min(xe, y.logical + y.length);
      if (e > s) out.push([s, e]);
    }
  }
  return mergeRanges(out);
}

/**
 * The byte ranges of an image of `size` bytes that a block stream must compare, from the extent
 * maps of the image and its base (or none). Everything else is a hole in both (zeros on both sides)
 * or the same blocks on disk (equal without reading). Aligned outward to `pageBytes`. Pure.
 */
export function rangesToCompare(size: number, image: readonly Extent[], base: readonly Extent[] | undefined, pageBytes: number): Range[] {
  let ranges = dataRanges(image);
  if (base) ranges = subtractRanges(mergeRanges([...ranges, ...dataRanges(base)]), sharedRanges(image, base));
  const aligned = ranges.map(([s, e]): Range => [Math.floor(s / pageBytes) * pageBytes, Math.min(size, Math.ceil(e / pageBytes) * pageBytes)]);
  return mergeRanges(aligned.filter(([s]) => s < size));
}
