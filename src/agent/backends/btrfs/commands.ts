/**
 * argv builders for btrfs-progs and the few other tools the btrfs backend runs. Pure: they only
 * build arrays. Output that code reads is taken in its machine form (`--raw` byte counts); the
 * parsers live in parse.ts. Checked against btrfs-progs 6.2 (test/fixtures/btrfs/VERSION.txt).
 */

/** Makes a sparse file of `bytes` bytes (or grows/shrinks an existing one). */
export function truncateFile(file: string, bytes: number): string[] {
  // -s: set the size; the file stays sparse, so a large pool costs nothing until written.
  return ['truncate', '-s', String(bytes), file];
}

/** Formats `image` as a fresh single-device btrfs filesystem. */
export function mkfs(image: string): string[] {
  // -q: no banner or summary (nothing in it is read).
  // -L: a label that says who made the pool, for people reading `blkid` or `btrfs filesystem show`.
  return ['mkfs.btrfs', '-q', '-L', 'ferry', image];
}

/** Turns on quota groups for the filesystem at `pool`. Idempotent (exit 0 when already on). */
export function quotaEnable(pool: string): string[] {
  return ['btrfs', 'quota', 'enable', pool];
}

/** Rescans all qgroups and waits for the result: for numbers the kernel marks inconsistent. */
export function quotaRescan(pool: string): string[] {
  // -w: start the rescan and wait until it is done.
  return ['btrfs', 'quota', 'rescan', '-w', pool];
}

/** Waits for a quota rescan that is running (one starts when quotas are turned on); starts none. */
export function quotaRescanWait(pool: string): string[] {
  // -W: wait for a running rescan to finish, without starting a new one (-w would start one).
  return ['btrfs', 'quota', 'rescan', '-W', pool];
}

/** Makes an empty subvolume at `path` (the parent must exist, `path` must not). */
export function subvolumeCreate(path: string): string[] {
  return ['btrfs', 'subvolume', 'create', path];
}

/** Snapshots subvolume `source` as a new subvolume at `dest`. */
export function subvolumeSnapshot(source: string, dest: string, readOnly: boolean): string[] {
  // -r: a read-only snapshot; only read-only snapshots can be sent.
  return ['btrfs', 'subvolume', 'snapshot', ...(readOnly ? ['-r'] : []), source, dest];
}

/** Deletes the subvolumes at `paths` (each must be a subvolume; read-only ones included). */
export function subvolumeDelete(paths: readonly string[]): string[] {
  // -c: wait for the transaction commit at the end, so a deleted subvolume does not come back after a crash.
  return ['btrfs', 'subvolume', 'delete', '-c', ...paths];
}

/**
 * Lists the subvolumes whose parent is the subvolume containing `dir`.
 * The paths printed differ between btrfs-progs versions and mount layouts (see the fixtures), so
 * callers match on `top level` (the parent's id) and the trailing path components only.
 */
export function subvolumeList(dir: string, readOnlyOnly = false): string[] {
  // -o: only subvolumes directly below the subvolume containing `dir`, not the whole filesystem.
  // -r: only read-only subvolumes, which leaves out a receive still in progress (it is writable until done).
  return ['btrfs', 'subvolume', 'list', '-o', ...(readOnlyOnly ? ['-r'] : []), dir];
}

/** Shows one subvolume: id, flags (readonly), UUIDs including the received UUID. */
export function subvolumeShow(path: string): string[] {
  return ['btrfs', 'subvolume', 'show', path];
}

/** Prints the id of the subvolume containing `path`. */
export function rootId(path: string): string[] {
  return ['btrfs', 'inspect-internal', 'rootid', path];
}

/** Sets the limit on referenced bytes of the subvolume at `path`'s qgroup; `none` removes it. */
export function qgroupLimit(bytes: number | 'none', path: string): string[] {
  // No -e: the limit is on referenced bytes (everything the subvolume sees), not exclusive bytes,
  // so a volume's limit does not depend on what it shares with its snapshots.
  return ['btrfs', 'qgroup', 'limit', bytes === 'none' ? 'none' : String(bytes), path];
}

/** Lists every qgroup of the filesystem with referenced and exclusive bytes. */
export function qgroupShow(pool: string): string[] {
  // --raw: plain byte counts, not "3.02MiB".
  return ['btrfs', 'qgroup', 'show', '--raw', pool];
}

/** Removes qgroups whose subvolume is gone (older kernels keep them after a delete). */
export function qgroupClearStale(pool: string): string[] {
  return ['btrfs', 'qgroup', 'clear-stale', pool];
}

/** Commits the current transaction: frees deleted space and brings qgroup numbers up to date. */
/** The quota group of the one subvolume at `path`, in bytes. */
export function qgroupShowOf(path: string): string[] {
  // -f: only the qgroup of the subvolume holding `path` (not its parents, not the pool's others).
  return ['btrfs', 'qgroup', 'show', '--raw', '-f', path];
}

export function filesystemSync(pool: string): string[] {
  return ['btrfs', 'filesystem', 'sync', pool];
}

/** Writes a send stream of read-only snapshot `snapshot` to stdout; with `parent`, only changes since it. */
export function send(snapshot: string, parent?: string): string[] {
  // -p: incremental against `parent`, which the receiver must hold as a received snapshot.
  // -q: no "At subvol" chatter on stderr, so stderr carries only errors.
  return ['btrfs', 'send', '-q', ...(parent ? ['-p', parent] : []), snapshot];
}

/** Reads a send stream from stdin and makes the subvolume it describes inside `dir`. */
export function receive(dir: string): string[] {
  // No -e: btrfs receive then runs until stdin closes, and ferry closes stdin only after the
  // envelope's trailer has been checked; a stream cut short is killed before it can end cleanly.
  // -q: no "At subvol" chatter.
  return ['btrfs', 'receive', '-q', dir];
}
