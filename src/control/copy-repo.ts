import type { Db } from './db';
import { nowIso, stmt } from './db';

/**
 * replica: a host other than the primary keeps a copy (never mounted; a move back sends increments).
 * dropping: the host must destroy its copy (a replica that policy does not keep, or any copy of a
 * volume being removed); the row goes when the host reports the copy destroyed.
 * retaining (reclaim): the primary's copy of a volume removed with reclaim=retain, kept until its
 * retained dataset is made (then it becomes dropping): it keeps the volume's record, so its name
 * cannot be created again while the live dataset still holds it.
 */
export type CopyState = 'replica' | 'dropping' | 'retaining';

/** A volume's copy on one host other than as the live primary. */
export interface CopyRecord {
  volume: string;
  node: string;
  state: CopyState;
  createdAt: string;
}

interface CopyRow {
  volume: string;
  node: string;
  state: CopyState;
  created_at: string;
}

const toCopy = (r: CopyRow): CopyRecord => ({ volume: r.volume, node: r.node, state: r.state, createdAt: r.created_at });

/** Records (or changes) the copy of `volume` on `node`. */
export function setCopy(db: Db, volume: string, node: string, state: CopyState): void {
  stmt(db, `INSERT INTO copies (volume, node, state, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(volume, node) DO UPDATE SET state = excluded.state`).run(
    volume,
    node,
    state,
    nowIso(),
  );
}

/** Forgets the copy of `volume` on `node`, whatever its state; false when there was none. */
export function forgetCopy(db: Db, volume: string, node: string): boolean {
  return stmt(db, 'DELETE FROM copies WHERE volume = ? AND node = ?').run(volume, node).changes === 1;
}

/** Forgets a copy only while it is `state` (a kept replica never goes by a report meant for a dropped one). */
export function forgetCopyIn(db: Db, volume: string, node: string, state: CopyState): boolean {
  return stmt(db, 'DELETE FROM copies WHERE volume = ? AND node = ? AND state = ?').run(volume, node, state).changes === 1;
}

/** Every copy of `volume` marked to be destroyed, primary's included when it is being removed. */
export function markAllDropping(db: Db, volume: string): void {
  stmt(db, `UPDATE copies SET state = 'dropping' WHERE volume = ?`).run(volume);
}

export function copiesOf(db: Db, volume: string): CopyRecord[] {
  return (stmt(db, 'SELECT * FROM copies WHERE volume = ? ORDER BY node').all(volume) as CopyRow[]).map(toCopy);
}

/** Every copy, by volume (for List). */
export function allCopies(db: Db): Map<string, CopyRecord[]> {
  const out = new Map<string, CopyRecord[]>();
  for (const c of (stmt(db, 'SELECT * FROM copies ORDER BY volume, node').all() as CopyRow[]).map(toCopy)) {
    out.set(c.volume, [...(out.get(c.volume) ?? []), c]);
  }
  return out;
}

/** The copies that `node` must destroy, with each volume's backend. */
export function copiesToDestroy(db: Db, node: string): { volume: string; backend: string }[] {
  return stmt(
    db,
    `SELECT c.volume AS volume, v.backend AS backend FROM copies c JOIN volumes v ON v.name = c.volume WHERE c.node = ? AND c.state = 'dropping' ORDER BY c.volume`,
  ).all(node) as { volume: string; backend: string }[];
}
