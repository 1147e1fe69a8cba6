/**
 * Pure parsers of btrfs-progs output and of the mount table, for the btrfs backend. Tested against
 * output captured on a real system (test/fixtures/btrfs). Nothing here runs a command.
 */
import { posix } from 'node:path';
import type { MountEntry } from '../../mount-table';

/** One line of `btrfs subvolume list`. */
export interface SubvolumeEntry {
  id: number;
  /** Id of the parent subvolume ("top level"). */
  topLevel: number;
  /** As printed; its form differs between versions and mount layouts, so match its tail only. */
  path: string;
}

// "ID 258 gen 10 top level 256 path volumes/db"; extra fields (cgen, otime, uuids) may sit between.
const LIST_LINE = /^ID (\d+) .*?\btop level (\d+) .*?\bpath (.+)$/;

/** Parses `btrfs subvolume list` output; lines it does not recognise are skipped. */
export function parseSubvolumeList(text: string): SubvolumeEntry[] {
  const out: SubvolumeEntry[] = [];
  for (const line of text.split('\n')) {
    const m = LIST_LINE.exec(line.trim());
    if (m) out.push({ id: Number(m[1]), topLevel: Number(m[2]), path: m[3] });
  }
  return out;
}

/** A name ferry made: volume and snapshot names never start with "." (temporary names do). */
const DATASET_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** True for a volume or snapshot name; false for ferry's temporary names (".db.new") and junk. */
export function isDatasetName(name: string): boolean {
  return DATASET_NAME.test(name);
}

/** A stored snapshot name (volume/snapshot-names.ts): a dataset name, or an internal one starting with "_". */
const SNAPSHOT_NAME = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;

/**
 * Volume subvolume ids by name: entries directly below the `volumes` subvolume (`parentId`).
 * Temporary subvolumes (".db.new") are left out.
 */
export function volumeIds(entries: readonly SubvolumeEntry[], parentId: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of entries) {
    if (e.topLevel !== parentId) continue;
    const name = posix.basename(e.path);
    if (DATASET_NAME.test(name)) out.set(name, e.id);
  }
  return out;
}

/**
 * Snapshot names of volume `name`, oldest first: entries below the `snapshots` subvolume
 * (`parentId`) whose path ends in "<name>/<snap>". Subvolume ids grow with each new subvolume,
 * so id order is creation order (names and timestamps are not: a snapshot's root inode keeps
 * its source's birth time, and two snapshots can share a second).
 */
export function snapshotsOf(entries: readonly SubvolumeEntry[], parentId: number, name: string): string[] {
  return snapshotEntries(entries, parentId)
    .filter((s) => s.volume === name)
    .map((s) => s.snapshot);
}

/** Every snapshot below the `snapshots` subvolume (`parentId`), by volume, oldest first. */
export function snapshotEntries(
  entries: readonly SubvolumeEntry[],
  parentId: number,
): { id: number; volume: string; snapshot: string }[] {
  return entries
    .filter((e) => e.topLevel === parentId)
    .map((e) => {
      const parts = e.path.split('/');
      return { id: e.id, volume: parts[parts.length - 2] ?? '', snapshot: parts[parts.length - 1] };
    })
    .filter((s) => DATASET_NAME.test(s.volume) && SNAPSHOT_NAME.test(s.snapshot))
    .sort((a, b) => a.id - b.id);
}

/** Referenced and exclusive bytes of one level-0 qgroup (one subvolume). */
export interface QgroupUsage {
  referencedBytes: number;
  exclusiveBytes: number;
}

/**
 * Parses `btrfs qgroup show --raw`: usage by subvolume id, level-0 qgroups ("0/<id>") only.
 * Works with and without the limit and path columns of newer btrfs-progs.
 */
export function parseQgroupShow(text: string): Map<number, QgroupUsage> {
  const out = new Map<number, QgroupUsage>();
  for (const line of text.split('\n')) {
    const m = /^0\/(\d+)\s+(\d+)\s+(\d+)(\s|$)/.exec(line.trim());
    if (m) out.set(Number(m[1]), { referencedBytes: Number(m[2]), exclusiveBytes: Number(m[3]) });
  }
  return out;
}

/** The fields of `btrfs subvolume show` that ferry uses. */
export interface SubvolumeInfo {
  name: string;
  id: number;
  uuid: string;
  /** UUID of the sent snapshot this one was received from; absent when it was not received. */
  receivedUuid?: string;
  readOnly: boolean;
}

/** Parses `btrfs subvolume show`. Throws when the output lacks the subvolume id. */
export function parseSubvolumeShow(text: string): SubvolumeInfo {
  const field = (label: string): string | undefined => {
    const m = new RegExp(`^\\s*${label}:\\s*(.*)$`, 'm').exec(text);
    return m ? m[1].trim() : undefined;
  };
  const id = Number(field('Subvolume ID'));
  if (!Number.isInteger(id) || id <= 0) throw new Error('btrfs subvolume show printed no subvolume id');
  const dash = (v: string | undefined): string | undefined => (v && v !== '-' ? v : undefined);
  return {
    name: field('Name') ?? '',
    id,
    uuid: field('UUID') ?? '',
    receivedUuid: dash(field('Received UUID')),
    readOnly: (field('Flags') ?? '').split(/[\s,]+/).includes('readonly'),
  };
}

/** Parses `btrfs inspect-internal rootid`: one subvolume id. Throws on anything else. */
export function parseRootId(text: string): number {
  const id = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || id <= 0) throw new Error(`btrfs inspect-internal rootid printed ${JSON.stringify(text.trim())}`);
  return id;
}

/** Where a pool directory sits: the mount holding it, and its path from the filesystem's top. */
export interface PoolMount {
  /** The block device the filesystem was mounted from, as the mount table shows it. */
  source: string;
  /** Path of the pool directory from the top of the btrfs filesystem, e.g. "/" or "/@ferry/srv". */
  root: string;
}

/**
 * Finds the mount holding `path` (absolute, symlinks resolved): the entry with the longest mount
 * point that is `path` or one of its parents. Undefined when none is btrfs.
 */
export function poolMountOf(table: readonly MountEntry[], path: string): PoolMount | undefined {
  let best: MountEntry | undefined;
  for (const e of table) {
    const under = path === e.mountPoint || path.startsWith(e.mountPoint === '/' ? '/' : `${e.mountPoint}/`);
    // The last of equal mount points is the one on top, the one a path lookup sees.
    if (under && (!best || e.mountPoint.length >= best.mountPoint.length)) best = e;
  }
  if (!best || best.fsType !== 'btrfs') return undefined;
  return { source: best.source, root: posix.join(best.root, posix.relative(best.mountPoint, path)) };
}

/**
 * Mount points through which anything at `root` (a path from the filesystem's top, e.g.
 * "/volumes/db") of the pool's filesystem is reachable: a bind mount of a subvolume shows the
 * subvolume's path as its root in the mount table, and a bind of a directory inside it a longer one.
 */
export function mountsOf(table: readonly MountEntry[], pool: PoolMount, root: string): string[] {
  return table
    .filter((e) => e.fsType === 'btrfs' && e.source === pool.source && (e.root === root || e.root.startsWith(`${root}/`)))
    .map((e) => e.mountPoint);
}
