/**
 * argv builders for zfs(8) and zpool(8). Pure: they only build arrays. Only what both zfs-fuse 0.7
 * (pool version 23) and OpenZFS 2.x have: no `zfs list -p` (numbers come from `zfs get -H -p`), one
 * property per `zfs set`, no `zpool sync`, no resume tokens, no raw or compressed sends. Checked
 * against the captures in test/fixtures/zfs/ (VERSION.txt says which zfs).
 */

/** The property ferry stores a volume's name in: a dataset without it is not ferry's. */
export const OWNER_PROPERTY = 'ferry:volume';

/** Names of the imported pools with health, size and free space (sizes human-readable; only names and health are read). */
export function poolList(): string[] {
  // -H: tab-separated, no header. zfs-fuse's zpool has no -p.
  return ['zpool', 'list', '-H', '-o', 'name,health,size,free'];
}

/** The pool's state and its vdevs (a file pool's file, by the path it was made with). */
export function poolStatus(pool: string): string[] {
  return ['zpool', 'status', pool];
}

/** Makes pool `pool` on the file `file`, not recorded in any cache file, its root dataset not mounted. */
export function poolCreate(pool: string, file: string): string[] {
  // cachefile=none: the pool is imported by ferry at start, never by the daemon or the boot scripts.
  // -m none: the pool's root dataset is not mounted; volumes are mounted where ferry says.
  return ['zpool', 'create', '-o', 'cachefile=none', '-m', 'none', pool, file];
}

/** Imports pool `pool` from the devices (files) in `dir`. */
export function poolImport(pool: string, dir: string): string[] {
  // -d: search `dir` for vdevs (a file pool is not in /dev). Nothing mounts: ferry's datasets are
  // canmount=noauto or mountpoint=none (zfs-fuse has no -N).
  return ['zpool', 'import', '-d', dir, '-o', 'cachefile=none', pool];
}

/** Reads properties of datasets: one `name<TAB>property<TAB>value` line each, values as exact numbers. */
export function get(props: readonly string[], datasets: readonly string[], depth?: number): string[] {
  // -H: no header, tab-separated. -p: exact numbers (bytes), not "1.5M". -d: children to that depth.
  return ['zfs', 'get', '-H', '-p', '-o', 'name,property,value', ...(depth === undefined ? [] : ['-d', String(depth)]), props.join(','), ...datasets];
}

/** Makes filesystem `dataset` with properties `props` in one step (nothing is left if it fails). */
export function create(dataset: string, props: Readonly<Record<string, string>>): string[] {
  return ['zfs', 'create', ...propArgs(props), dataset];
}

/** Sets one property (zfs-fuse's `zfs set` takes one per call). */
export function set(dataset: string, prop: string, value: string): string[] {
  return ['zfs', 'set', `${prop}=${value}`, dataset];
}

/** Destroys a filesystem with its snapshots, or one snapshot. */
export function destroy(dataset: string, recursive: boolean): string[] {
  // -r: the filesystem's snapshots too. Never -R: that would destroy clones, which are other volumes.
  return ['zfs', 'destroy', ...(recursive ? ['-r'] : []), dataset];
}

/** Renames a filesystem or (same filesystem) a snapshot. */
export function rename(from: string, to: string): string[] {
  return ['zfs', 'rename', from, to];
}

/** Mounts `dataset` at its mountpoint property, read-only when asked. */
export function mount(dataset: string, readOnly: boolean): string[] {
  // -o ro: a temporary property for this mount only; the dataset stays writable.
  return ['zfs', 'mount', ...(readOnly ? ['-o', 'ro'] : []), dataset];
}

/** Unmounts `dataset`. */
export function unmount(dataset: string): string[] {
  return ['zfs', 'unmount', dataset];
}

/** Takes snapshot `dataset@snap`. */
export function snapshot(dataset: string, snap: string): string[] {
  return ['zfs', 'snapshot', `${dataset}@${snap}`];
}

/** Snapshots of `dataset` (only its own: -d 1), oldest first (zfs orders one filesystem's snapshots by creation). */
export function listSnapshots(dataset: string): string[] {
  // -t snapshot -d 1: its snapshots, not its children's. -o name: full names `dataset@snap`.
  return ['zfs', 'list', '-H', '-t', 'snapshot', '-o', 'name', '-d', '1', dataset];
}

/** Makes the filesystem's contents those of its newest snapshot `dataset@snap`. */
export function rollback(dataset: string, snap: string): string[] {
  // No -r: ferry never lets a rollback destroy snapshots (older ones go through a copy, see index.ts).
  return ['zfs', 'rollback', `${dataset}@${snap}`];
}

/** The holds on a snapshot, `name<TAB>tag<TAB>time` (OpenZFS; zfs-fuse's needs pyzfs and fails). */
export function holds(snapshot: string): string[] {
  return ['zfs', 'holds', '-H', snapshot];
}

/** Releases hold `tag` on a snapshot. */
export function release(tag: string, snapshot: string): string[] {
  return ['zfs', 'release', tag, snapshot];
}

/** Makes filesystem `target` from snapshot `source` (sharing its blocks), with properties `props`. */
export function clone(source: string, target: string, props: Readonly<Record<string, string>>): string[] {
  return ['zfs', 'clone', ...propArgs(props), source, target];
}

/** Makes clone `dataset` independent of its origin: the origin's snapshots up to it move to the clone. */
export function promote(dataset: string): string[] {
  return ['zfs', 'promote', dataset];
}

/** Writes a send stream of `dataset@snap` to stdout; with `base`, only the changes since `dataset@base`. */
export function send(dataset: string, snap: string, base?: string): string[] {
  // -i: incremental from one snapshot (not -I: the snapshots between are not sent). No -R, -c, -w,
  // -L: zfs-fuse has none of them except -R, and -R would carry other owners' snapshots and leave holds.
  return ['zfs', 'send', ...(base === undefined ? [] : ['-i', `${dataset}@${base}`]), `${dataset}@${snap}`];
}

/** Reads a send stream from stdin into `dataset@snap`. */
export function receive(dataset: string, snap: string, incremental: boolean): string[] {
  // -u: mount nothing (received filesystems inherit mountpoint=none anyway).
  // -F (increments only): first roll the filesystem back to its newest snapshot, the base: a
  // received copy whose newest snapshot was since deleted still holds that snapshot's data.
  return ['zfs', 'receive', '-u', ...(incremental ? ['-F'] : []), `${dataset}@${snap}`];
}

/** Copies the tree at `from` over the one at `to`, deleting what `from` lacks: hard links, owners, modes, times. */
export function copyTree(from: string, to: string): string[] {
  // -a: recursive, keeping modes, owners, times, links and devices; -H: hard links; --numeric-ids:
  // owners by number, not name; --delete: files `from` lacks go; -I: copy every file, not only those
  // whose size or mtime (to the second) differ: an edit in the same second keeps both; trailing
  // slashes: the contents.
  return ['rsync', '-aHI', '--numeric-ids', '--delete', `${from}/`, `${to}/`];
}

/** umount -l: detaches a mount whose zfs-fuse is gone ("Transport endpoint is not connected"). */
export function lazyUnmount(path: string): string[] {
  return ['umount', '-l', path];
}

/** Makes a sparse file of `bytes` bytes. */
export function truncateFile(file: string, bytes: number): string[] {
  return ['truncate', '-s', String(bytes), file];
}

function propArgs(props: Readonly<Record<string, string>>): string[] {
  return Object.entries(props).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}
