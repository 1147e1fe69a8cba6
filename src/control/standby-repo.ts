import type { Db } from './db';
import { nowIso, stmt } from './db';

/** A standby row as control keeps it (see the `standbys` table). */
export interface StandbyRecord {
  volume: string;
  node: string;
  snapshot: string | null;
  snapshotAt: string | null;
  chosenAt: string;
  syncedAt: string | null;
  bytes: number | null;
  late: boolean;
}

interface StandbyRow {
  volume: string;
  node: string;
  snapshot: string | null;
  snapshot_at: string | null;
  chosen_at: string;
  synced_at: string | null;
  bytes: number | null;
  late: number;
}

const toStandby = (r: StandbyRow): StandbyRecord => ({
  volume: r.volume,
  node: r.node,
  snapshot: r.snapshot,
  snapshotAt: r.snapshot_at,
  chosenAt: r.chosen_at,
  syncedAt: r.synced_at,
  bytes: r.bytes,
  late: r.late === 1,
});

/** Every standby, by volume. */
export function allStandbys(db: Db): Map<string, StandbyRecord[]> {
  const out = new Map<string, StandbyRecord[]>();
  for (const s of (stmt(db, 'SELECT * FROM standbys ORDER BY volume, node').all() as StandbyRow[]).map(toStandby)) {
    out.set(s.volume, [...(out.get(s.volume) ?? []), s]);
  }
  return out;
}

export function standbysOf(db: Db, volume: string): StandbyRecord[] {
  return (stmt(db, 'SELECT * FROM standbys WHERE volume = ? ORDER BY node').all(volume) as StandbyRow[]).map(toStandby);
}

/** The standbys `node` keeps. */
export function standbysOnNode(db: Db, node: string): StandbyRecord[] {
  return (stmt(db, 'SELECT * FROM standbys WHERE node = ? ORDER BY volume').all(node) as StandbyRow[]).map(toStandby);
}

/** Records `node` as a standby of `volume` (no snapshot yet); idempotent. */
export function addStandby(db: Db, volume: string, node: string): void {
  stmt(db, 'INSERT OR IGNORE INTO standbys (volume, node, chosen_at) VALUES (?, ?, ?)').run(volume, node, nowIso());
}

export function removeStandby(db: Db, volume: string, node: string): boolean {
  return stmt(db, 'DELETE FROM standbys WHERE volume = ? AND node = ?').run(volume, node).changes === 1;
}

/** A round ended: `snapshot` (taken at `snapshotAt`) is the standby's newest; false when it is no standby. */
export function setStandbySnapshot(db: Db, s: { volume: string; node: string; snapshot: string; snapshotAt: string; bytes: number }): boolean {
  return (
    stmt(db, 'UPDATE standbys SET snapshot = ?, snapshot_at = ?, synced_at = ?, bytes = ? WHERE volume = ? AND node = ?').run(
      s.snapshot,
      s.snapshotAt,
      nowIso(),
      s.bytes,
      s.volume,
      s.node,
    ).changes === 1
  );
}

export function setStandbyLate(db: Db, volume: string, node: string, late: boolean): void {
  stmt(db, 'UPDATE standbys SET late = ? WHERE volume = ? AND node = ?').run(late ? 1 : 0, volume, node);
}
