/**
 * Parsers of zfs(8) and zpool(8) output and error text (pure; tested against the captures in
 * test/fixtures/zfs/). Callers branch on what these return, never on raw stderr.
 */

/** A volume name (volume/names.ts); ferry's temporary datasets start with "." and are none. */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** One line of `zfs get -H -p -o name,property,value`. */
export interface PropRow {
  name: string;
  property: string;
  value: string;
}

/** Parses `zfs get -H -p -o name,property,value` output; `-` (unset) values stay `-`. */
export function parseGet(text: string): PropRow[] {
  const rows: PropRow[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [name, property, ...rest] = line.split('\t');
    if (name && property && rest.length > 0) rows.push({ name, property, value: rest.join('\t') });
  }
  return rows;
}

/** The value of `property` of `dataset` in `rows`, as a byte count; undefined when absent or not a number. */
export function bytesOf(rows: readonly PropRow[], dataset: string, property: string): number | undefined {
  const v = rows.find((r) => r.name === dataset && r.property === property)?.value;
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * The volumes among `<root>/NAME` rows of the owner property: a child whose name is a dataset name
 * and whose owner property says that same name. Temporary datasets (`.NAME.x`) and anything made by
 * someone else are not volumes. Sorted.
 */
export function volumesOf(rows: readonly PropRow[], root: string, ownerProperty: string): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.property !== ownerProperty || !r.name.startsWith(`${root}/`)) continue;
    const leaf = r.name.slice(root.length + 1);
    if (!leaf.includes('/') && !leaf.includes('@') && VOLUME_NAME.test(leaf) && r.value === leaf) out.push(leaf);
  }
  return out.sort();
}

/** Per volume, the bytes of `property` (rows of `<root>/NAME`, only the `names` given). */
export function bytesByVolume(rows: readonly PropRow[], root: string, property: string, names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of names) {
    const b = bytesOf(rows, `${root}/${n}`, property);
    if (b !== undefined) out.set(n, b);
  }
  return out;
}

/** Snapshot names from `zfs list -H -t snapshot -o name -d 1 DATASET`, in the order listed. */
export function parseSnapshotList(text: string, dataset: string): string[] {
  const prefix = `${dataset}@`;
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

/** One imported pool from `zpool list -H -o name,health,size,free`. */
export interface PoolRow {
  name: string;
  health: string;
}

export function parsePoolList(text: string): PoolRow[] {
  return text
    .split('\n')
    .filter((l) => l.includes('\t'))
    .map((l) => {
      const [name, health] = l.split('\t');
      return { name, health };
    });
}

/** True when zfs said the dataset (filesystem or snapshot) is not there. */
export function isNotFound(stderr: string): boolean {
  return /dataset does not exist|could not find any snapshots/i.test(stderr);
}

/**
 * True when zfs refused because the dataset is busy: zfs-fuse answers so for about 0.1 s after an
 * unmount, and any zfs while a send of the snapshot or a mount still holds it.
 */
export function isBusy(stderr: string): boolean {
  return /dataset is busy|device busy|target is busy|resource busy/i.test(stderr);
}

/** True when zfs ran out of space in the pool (or under a quota). */
export function isOutOfSpace(stderr: string): boolean {
  return /out of space|no space left|quota exceeded|disk quota/i.test(stderr);
}

/** The file (or device) paths of a pool's vdevs in `zpool status POOL` output. */
export function parseStatusPaths(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(\/\S+)\s+[A-Z]+\b/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/**
 * The tags of holds that a send left behind (`zfs holds -H` lines): a `zfs send -R` holds its
 * snapshots under `.send-<pid>-<n>` while it runs. OpenZFS drops them when the send ends, however it
 * ends (seen in the VM: test/fixtures/zfs/openzfs/); zfs-fuse keeps an aborted one's. Only holds
 * whose sending process `alive` says is gone are left behind: a running send's are its own.
 */
export function sendHolds(text: string, alive: (pid: number) => boolean): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const tag = line.split('\t')[1];
    const m = tag === undefined ? null : /^\.send-(\d+)-\d+$/.exec(tag);
    if (tag && m && !alive(Number(m[1]))) out.push(tag);
  }
  return out;
}
