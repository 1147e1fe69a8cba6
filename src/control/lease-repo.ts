import type { Lease } from '../wire/records';
import type { Db } from './db';
import { nowIso, stmt } from './db';

/** One active Docker Mount ID on a volume (a lease), counted per ID. */

interface LeaseRow {
  volume: string;
  mount_id: string;
  node: string;
  count: number;
  mountpoint: string;
  created_at: string;
  containers: string | null;
}

const toLease = (r: LeaseRow): Lease => ({
  volume: r.volume,
  mountId: r.mount_id,
  node: r.node,
  count: r.count,
  mountpoint: r.mountpoint,
  createdAt: r.created_at,
  ...(r.containers ? { containers: JSON.parse(r.containers) as string[] } : {}),
});

/** Adds one to the lease of `mountId` (dockerd may Mount twice with one ID). */
export function acquireLease(db: Db, l: { volume: string; mountId: string; node: string; mountpoint: string }): void {
  stmt(db, 
    `INSERT INTO mounts (volume, mount_id, node, count, mountpoint, created_at) VALUES (?, ?, ?, 1, ?, ?)
     ON CONFLICT(volume, mount_id) DO UPDATE SET count = count + 1`,
  ).run(l.volume, l.mountId, l.node, l.mountpoint, nowIso());
}

/** Takes one off the lease of `mountId`; returns false when there was no such lease. */
export function releaseLease(db: Db, volume: string, mountId: string): boolean {
  return db.transaction(() => {
    const row = stmt(db, 'SELECT count FROM mounts WHERE volume = ? AND mount_id = ?').get(volume, mountId) as
      | { count: number }
      | undefined;
    if (!row) return false;
    if (row.count > 1) stmt(db, 'UPDATE mounts SET count = count - 1 WHERE volume = ? AND mount_id = ?').run(volume, mountId);
    else stmt(db, 'DELETE FROM mounts WHERE volume = ? AND mount_id = ?').run(volume, mountId);
    return true;
  })();
}

export function leasesOf(db: Db, volume: string): Lease[] {
  return (stmt(db, 'SELECT * FROM mounts WHERE volume = ? ORDER BY created_at').all(volume) as LeaseRow[]).map(toLease);
}

export function leasesOnNode(db: Db, node: string): Lease[] {
  return (stmt(db, 'SELECT * FROM mounts WHERE node = ? ORDER BY volume').all(node) as LeaseRow[]).map(toLease);
}

/** Every lease, by volume. */
export function allLeases(db: Db): Lease[] {
  return (stmt(db, 'SELECT * FROM mounts ORDER BY volume, created_at').all() as LeaseRow[]).map(toLease);
}

/** Lease totals per volume, for List and status. */
export function leaseCounts(db: Db): Map<string, number> {
  const rows = stmt(db, 'SELECT volume, SUM(count) AS n FROM mounts GROUP BY volume').all() as { volume: string; n: number }[];
  return new Map(rows.map((r) => [r.volume, r.n]));
}

/** Drops every lease of `volume` on `node` (reconciliation, when dockerd holds none). */
export function dropLeases(db: Db, volume: string, node: string): number {
  return stmt(db, 'DELETE FROM mounts WHERE volume = ? AND node = ?').run(volume, node).changes;
}

/** Records which containers hold `volume`'s leases on `node`. */
export function annotateLeases(db: Db, volume: string, node: string, containers: string[]): void {
  stmt(db, 'UPDATE mounts SET containers = ? WHERE volume = ? AND node = ?').run(JSON.stringify(containers), volume, node);
}
