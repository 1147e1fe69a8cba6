import type { SnapshotReport } from '../wire/control-client';
import type { SnapshotOrigin, SnapshotRecord, SnapshotSummary } from '../wire/records';
import type { Db } from './db';
import { stmt } from './db';

/**
 * Control's snapshot registry: one row per snapshot per host that holds it (table `snapshots`). A
 * snapshot is the set of its rows; it goes from the registry with its last row, and every row of a
 * volume goes with the volume's record (ON DELETE CASCADE).
 */

interface SnapshotRow {
  volume: string;
  name: string;
  node: string;
  origin: SnapshotOrigin;
  created_at: string;
  size_bytes: number | null;
  grp: string | null;
  policy: string | null;
}

/**
 * Records `s.node`'s copy of a snapshot. A repeat keeps the first createdAt, origin, group and policy
 * (a received copy reports what its source took) and takes a newer size when one is given.
 */
export function recordSnapshot(db: Db, s: SnapshotReport): void {
  stmt(
    db,
    `INSERT INTO snapshots (volume, name, node, origin, created_at, size_bytes, grp, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(volume, name, node) DO UPDATE SET size_bytes = COALESCE(excluded.size_bytes, snapshots.size_bytes)`,
  ).run(s.volume, s.name, s.node, s.origin, s.createdAt, s.sizeBytes ?? null, s.group ?? null, s.policy ?? null);
}

/** Forgets `node`'s copy; false when it had none. */
export function forgetSnapshot(db: Db, volume: string, name: string, node: string): boolean {
  return stmt(db, 'DELETE FROM snapshots WHERE volume = ? AND name = ? AND node = ?').run(volume, name, node).changes === 1;
}

/** Forgets every snapshot `node` holds of `volume` (its copy was destroyed or is gone). */
export function forgetSnapshotsOn(db: Db, volume: string, node: string): number {
  return stmt(db, 'DELETE FROM snapshots WHERE volume = ? AND node = ?').run(volume, node).changes;
}

/** A volume without snapshots, in brief. */
export const NO_SNAPSHOTS: SnapshotSummary = Object.freeze({ count: 0, newest: null, newestAt: null });

/** Each volume's snapshot count and newest (only `volume`'s when given), by volume; volumes without any are left out. */
export function snapshotSummaries(db: Db, volume?: string): Map<string, SnapshotSummary> {
  const rows = (
    volume === undefined
      ? stmt(db, 'SELECT volume, name, MIN(created_at) AS at FROM snapshots GROUP BY volume, name ORDER BY volume, at, name').all()
      : stmt(db, 'SELECT volume, name, MIN(created_at) AS at FROM snapshots WHERE volume = ? GROUP BY volume, name ORDER BY volume, at, name').all(volume)
  ) as { volume: string; name: string; at: string }[];
  const out = new Map<string, SnapshotSummary>();
  for (const r of rows) out.set(r.volume, { count: (out.get(r.volume)?.count ?? 0) + 1, newest: r.name, newestAt: r.at });
  return out;
}

/** Forgets every host's copy of a snapshot (a volume rolled back past it everywhere, tests). */
export function forgetSnapshotEverywhere(db: Db, volume: string, name: string): number {
  return stmt(db, 'DELETE FROM snapshots WHERE volume = ? AND name = ?').run(volume, name).changes;
}

/**
 * The snapshots of `volume`, oldest first (createdAt, then name), each with every host holding it.
 * Its facts come from its earliest-recorded row (the host that took it); the size from the first
 * row that knows one.
 */
export function snapshotsOf(db: Db, volume: string): SnapshotRecord[] {
  const rows = stmt(db, 'SELECT * FROM snapshots WHERE volume = ? ORDER BY created_at, name, rowid').all(volume) as SnapshotRow[];
  return group(rows);
}

/** Every snapshot in the registry, by volume (List-wide views: counts, newest). */
export function allSnapshots(db: Db): Map<string, SnapshotRecord[]> {
  const rows = stmt(db, 'SELECT * FROM snapshots ORDER BY volume, created_at, name, rowid').all() as SnapshotRow[];
  const out = new Map<string, SnapshotRecord[]>();
  for (const s of group(rows)) out.set(s.volume, [...(out.get(s.volume) ?? []), s]);
  return out;
}

/** The snapshots `node` holds of `volume`, by stored name (what the host should find on its disk). */
export function snapshotNamesOn(db: Db, volume: string, node: string): string[] {
  return (stmt(db, 'SELECT name FROM snapshots WHERE volume = ? AND node = ? ORDER BY created_at, name').all(volume, node) as { name: string }[]).map(
    (r) => r.name,
  );
}

/** Rows in order -> one record per name, keeping the order of each name's first row (pure). */
function group(rows: SnapshotRow[]): SnapshotRecord[] {
  const byKey = new Map<string, SnapshotRecord>();
  for (const r of rows) {
    const key = `${r.volume}\u0000${r.name}`;
    const s = byKey.get(key);
    if (s) {
      s.hosts.push(r.node);
      s.sizeBytes ??= r.size_bytes;
      continue;
    }
    byKey.set(key, { volume: r.volume, name: r.name, origin: r.origin, createdAt: r.created_at, sizeBytes: r.size_bytes, hosts: [r.node], group: r.grp, policy: r.policy });
  }
  for (const s of byKey.values()) s.hosts.sort();
  return [...byKey.values()];
}
