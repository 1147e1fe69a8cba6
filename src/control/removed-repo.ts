import { retainedDatasetName } from '../volume/names';
import type { RemovedState, RemovedVolume, VolumeRecord } from '../wire/records';
import type { Db } from './db';
import { stmt } from './db';

/** reclaim: control's records of removed volumes whose data is retained (table removed_volumes). */

interface RemovedRow {
  id: number;
  name: string;
  node: string;
  dataset: string;
  backend: string;
  size_bytes: number | null;
  fs: string | null;
  options: string;
  used_bytes: number | null;
  created_at: string;
  removed_at: string;
  expires_at: string;
  state: RemovedState;
}

const toRemoved = (r: RemovedRow): RemovedVolume => ({
  id: r.id,
  name: r.name,
  node: r.node,
  dataset: r.dataset,
  backend: r.backend,
  sizeBytes: r.size_bytes,
  fs: r.fs,
  options: JSON.parse(r.options) as Record<string, string>,
  usedBytes: r.used_bytes,
  createdAt: r.created_at,
  removedAt: r.removed_at,
  expiresAt: r.expires_at,
  state: r.state,
});

/** Records volume `v` as removed and `retaining` on its primary, kept for `retainSeconds` from now. */
export function insertRemoved(db: Db, v: VolumeRecord, retainSeconds: number, now = new Date()): RemovedVolume {
  // The dataset is named after the row's id: insert, then name it, in the caller's transaction.
  const r = stmt(
    db,
    `INSERT INTO removed_volumes (name, node, dataset, backend, size_bytes, fs, options, used_bytes, created_at, removed_at, expires_at, state)
     VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, 'retaining')`,
  ).run(
    v.name,
    v.primaryNode,
    v.backend,
    v.sizeBytes,
    v.fs,
    JSON.stringify(v.options),
    v.usedBytes,
    v.createdAt,
    now.toISOString(),
    new Date(now.getTime() + retainSeconds * 1000).toISOString(),
  );
  const id = Number(r.lastInsertRowid);
  stmt(db, 'UPDATE removed_volumes SET dataset = ? WHERE id = ?').run(retainedDatasetName(id), id);
  return getRemoved(db, id)!;
}

export function getRemoved(db: Db, id: number): RemovedVolume | undefined {
  const r = stmt(db, 'SELECT * FROM removed_volumes WHERE id = ?').get(id) as RemovedRow | undefined;
  return r ? toRemoved(r) : undefined;
}

/** The newest record of volume `name` still `retaining` (a remove under way), if any. */
export function retainingOf(db: Db, name: string): RemovedVolume | undefined {
  const r = stmt(db, `SELECT * FROM removed_volumes WHERE name = ? AND state = 'retaining' ORDER BY id DESC LIMIT 1`).get(name) as RemovedRow | undefined;
  return r ? toRemoved(r) : undefined;
}

/** Every record, newest first. */
export function listRemoved(db: Db): RemovedVolume[] {
  return (stmt(db, 'SELECT * FROM removed_volumes ORDER BY id DESC').all() as RemovedRow[]).map(toRemoved);
}

/** Moves record `id` from `from` to `to`; false when it was not in `from` (someone else got there first). */
export function setRemovedState(db: Db, id: number, from: RemovedState, to: RemovedState): boolean {
  return stmt(db, 'UPDATE removed_volumes SET state = ? WHERE id = ? AND state = ?').run(to, id, from).changes === 1;
}

/** Forgets record `id` once its retained dataset is gone; only a `dropping` one. */
export function deleteRemoved(db: Db, id: number): boolean {
  return stmt(db, `DELETE FROM removed_volumes WHERE id = ? AND state = 'dropping'`).run(id).changes === 1;
}

