import type { ContainerSpec, MoveRecord, MoveState } from '../wire/records';
import type { Db } from './db';
import { nowIso, stmt } from './db';
import { ACTIVE_MOVE_STATES_SQL, nextMoveState, type MoveEvent } from './move-states';

interface MoveRow {
  id: number;
  volume: string;
  source: string;
  target: string;
  state: MoveState;
  from_generation: number;
  bytes_done: number;
  bytes_total: number | null;
  error: string | null;
  created_at: string;
  updated_at: string;
  restart_containers: number;
  containers: string | null;
}

const toMove = (r: MoveRow): MoveRecord => ({
  id: r.id,
  volume: r.volume,
  source: r.source,
  target: r.target,
  state: r.state,
  fromGeneration: r.from_generation,
  bytesDone: r.bytes_done,
  bytesTotal: r.bytes_total,
  error: r.error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  restartContainers: r.restart_containers === 1,
  containers: r.containers ? (JSON.parse(r.containers) as ContainerSpec[]) : null,
});

/** Every move starts by pre-copying. */
const INITIAL_MOVE_STATE: MoveState = 'precopy';

export function insertMove(
  db: Db,
  m: { volume: string; source: string; target: string; fromGeneration: number; restartContainers?: boolean },
): MoveRecord {
  const now = nowIso();
  const r = stmt(
    db,
    `INSERT INTO moves (volume, source, target, state, from_generation, created_at, updated_at, restart_containers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(m.volume, m.source, m.target, INITIAL_MOVE_STATE, m.fromGeneration, now, now, m.restartContainers ? 1 : 0);
  return getMove(db, Number(r.lastInsertRowid))!;
}

export function getMove(db: Db, id: number): MoveRecord | undefined {
  const r = stmt(db, 'SELECT * FROM moves WHERE id = ?').get(id) as MoveRow | undefined;
  return r ? toMove(r) : undefined;
}

/** The move of `volume` under way, if any. */
export function activeMove(db: Db, volume: string): MoveRecord | undefined {
  const r = stmt(db, `SELECT * FROM moves WHERE volume = ? AND state IN ${ACTIVE_MOVE_STATES_SQL}`).get(volume) as
    | MoveRow
    | undefined;
  return r ? toMove(r) : undefined;
}

/** The newest move of `volume`, ended or not. */
export function lastMove(db: Db, volume: string): MoveRecord | undefined {
  const r = stmt(db, 'SELECT * FROM moves WHERE volume = ? ORDER BY id DESC LIMIT 1').get(volume) as MoveRow | undefined;
  return r ? toMove(r) : undefined;
}

/** Every active move and the newest `endedLimit` ended ones, newest first. */
export function recentMoves(db: Db, endedLimit: number): MoveRecord[] {
  const active = stmt(db, `SELECT * FROM moves WHERE state IN ${ACTIVE_MOVE_STATES_SQL} ORDER BY id DESC`).all() as MoveRow[];
  const ended = stmt(db, `SELECT * FROM moves WHERE state NOT IN ${ACTIVE_MOVE_STATES_SQL} ORDER BY id DESC LIMIT ?`).all(endedLimit) as MoveRow[];
  return [...active, ...ended].sort((a, b) => b.id - a.id).map(toMove);
}

/** Active moves in which `node` is source or target. */
export function movesOfNode(db: Db, node: string): MoveRecord[] {
  return (
    stmt(db, `SELECT * FROM moves WHERE (source = ? OR target = ?) AND state IN ${ACTIVE_MOVE_STATES_SQL} ORDER BY id`).all(
      node,
      node,
    ) as MoveRow[]
  ).map(toMove);
}

/** Records progress of a move; its state is left alone (see transitionMove). */
export function updateMoveProgress(db: Db, id: number, u: { bytesDone?: number; bytesTotal?: number | null }): void {
  stmt(
    db,
    `UPDATE moves SET bytes_done = COALESCE(?, bytes_done), bytes_total = CASE WHEN ? THEN ? ELSE bytes_total END, updated_at = ? WHERE id = ?`,
  ).run(u.bytesDone ?? null, u.bytesTotal !== undefined ? 1 : 0, u.bytesTotal ?? null, nowIso(), id);
}

/**
 * Applies `event` to move `m` as read in this transaction: its new state comes from the state table
 * (MOVE_CONFLICT for an illegal event), written only if the row is still in `m.state`. `error` is
 * recorded with it (a failure's reason). Returns the new state.
 */
export function transitionMove(db: Db, m: MoveRecord, event: MoveEvent, extra: { bytesDone?: number; error?: string } = {}): MoveState {
  const to = nextMoveState(m.state, event, m);
  const r = stmt(
    db,
    `UPDATE moves SET state = ?, bytes_done = COALESCE(?, bytes_done), error = COALESCE(?, error), updated_at = ? WHERE id = ? AND state = ?`,
  ).run(to, extra.bytesDone ?? null, extra.error ?? null, nowIso(), m.id, m.state);
  // Callers read the row in the same transaction, so only a caller's own mistake lands here.
  if (r.changes !== 1) throw new Error(`move ${m.id} of ${m.volume} is no longer ${m.state}: read it in the transaction that changes it`);
  return to;
}

export function setMoveContainers(db: Db, id: number, specs: ContainerSpec[]): void {
  stmt(db, 'UPDATE moves SET containers = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(specs), nowIso(), id);
}

/** Forgets the moves of a removed volume (none is under way: a volume that moves is not removed). */
export function deleteMovesOf(db: Db, volume: string): void {
  stmt(db, `DELETE FROM moves WHERE volume = ? AND state NOT IN ${ACTIVE_MOVE_STATES_SQL}`).run(volume);
}

/** How many moves are recorded in each state. */
export function countMovesByState(db: Db): { state: MoveState; count: number }[] {
  return stmt(db, 'SELECT state, COUNT(*) AS count FROM moves GROUP BY state ORDER BY state').all() as { state: MoveState; count: number }[];
}

/** Every move under way, oldest first. */
export function activeMoves(db: Db): MoveRecord[] {
  return (stmt(db, `SELECT * FROM moves WHERE state IN ${ACTIVE_MOVE_STATES_SQL} ORDER BY id`).all() as MoveRow[]).map(toMove);
}
