import type { VolumeRecord, VolumeState } from '../wire/records';
import type { Db } from './db';
import { nowIso, rawStmt, stmt } from './db';


/**
 * The columns fromRow reads, in its order. Rows are fetched raw (as arrays): better-sqlite3 makes
 * an object per row key by key, several times slower than an array (List of 1,000: 4 ms against 1).
 */
const COLUMNS = 'name, backend, size_bytes, fs, options, primary_node, generation, state, created_at, used_bytes, used_at';
type VolumeRow = [
  name: string,
  backend: string,
  sizeBytes: number | null,
  fs: string | null,
  options: string,
  primaryNode: string,
  generation: number,
  state: VolumeState,
  createdAt: string,
  usedBytes: number | null,
  usedAt: string | null,
];

function fromRow(r: VolumeRow): VolumeRecord {
  return {
    name: r[0],
    backend: r[1],
    sizeBytes: r[2],
    fs: r[3],
    options: JSON.parse(r[4]) as Record<string, string>,
    primaryNode: r[5],
    generation: r[6],
    state: r[7],
    createdAt: r[8],
    usedBytes: r[9],
    usedAt: r[10],
  };
}

/** Inserts a volume in state `creating`. Returns false when the name is taken (unique in the cluster). */
export function insertVolume(
  db: Db,
  v: { name: string; backend: string; sizeBytes?: number; fs?: string; options: Record<string, string>; primaryNode: string },
): boolean {
  const r = stmt(
    db,
    `INSERT INTO volumes (name, backend, size_bytes, fs, options, primary_node, generation, state, created_at)
     VALUES (?, ?, ?, ?, ?, ?, 1, 'creating', ?) ON CONFLICT(name) DO NOTHING`,
  ).run(v.name, v.backend, v.sizeBytes ?? null, v.fs ?? null, JSON.stringify(v.options), v.primaryNode, nowIso());
  return r.changes === 1;
}

export function getVolume(db: Db, name: string): VolumeRecord | undefined {
  const r = rawStmt(db, `SELECT ${COLUMNS} FROM volumes WHERE name = ?`).get(name) as VolumeRow | undefined;
  return r ? fromRow(r) : undefined;
}

export function listVolumes(db: Db): VolumeRecord[] {
  return (rawStmt(db, `SELECT ${COLUMNS} FROM volumes ORDER BY name`).all() as VolumeRow[]).map(fromRow);
}

export function setVolumeState(db: Db, name: string, state: VolumeState): void {
  stmt(db, 'UPDATE volumes SET state = ? WHERE name = ?').run(state, name);
}

export function deleteVolume(db: Db, name: string): void {
  stmt(db, 'DELETE FROM volumes WHERE name = ?').run(name);
}

export function recordUsage(db: Db, name: string, usedBytes: number, at = nowIso()): void {
  stmt(db, 'UPDATE volumes SET used_bytes = ?, used_at = ? WHERE name = ?').run(usedBytes, at, name);
}

/**
 * The atomic point of a move: primary := target and generation + 1, only while `source` is still
 * primary at `fromGeneration`. Returns false when anything changed meanwhile.
 */
export function switchPrimary(db: Db, name: string, source: string, target: string, fromGeneration: number): boolean {
  return (
    stmt(db, `UPDATE volumes SET primary_node = ?, generation = generation + 1 WHERE name = ? AND primary_node = ? AND generation = ? AND state = 'ready'`).run(
      target,
      name,
      source,
      fromGeneration,
    ).changes === 1
  );
}
