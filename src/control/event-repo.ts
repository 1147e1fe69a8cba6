import type { ClusterEvent } from '../wire/records';
import type { Db } from './db';
import { nowIso, stmt } from './db';


/** Appends an event (state changes people may want to see in `ferry volume inspect`). */
export function addEvent(db: Db, e: { volume?: string; node?: string; kind: string; detail?: string }): void {
  stmt(db, 'INSERT INTO events (at, volume, node, kind, detail) VALUES (?, ?, ?, ?, ?)').run(
    nowIso(),
    e.volume ?? null,
    e.node ?? null,
    e.kind,
    e.detail ?? null,
  );
}

export function eventsOf(db: Db, volume: string, limit = 20): ClusterEvent[] {
  return (
    stmt(db, 'SELECT * FROM events WHERE volume = ? ORDER BY id DESC LIMIT ?').all(volume, limit) as ClusterEvent[]
  ).reverse();
}

/** The newest `limit` events of the cluster, oldest first. */
export function recentEvents(db: Db, limit: number): ClusterEvent[] {
  return (stmt(db, 'SELECT * FROM events ORDER BY id DESC LIMIT ?').all(limit) as ClusterEvent[]).reverse();
}

/** How many events of each kind are recorded. */
export function countEventsByKind(db: Db): { kind: string; count: number }[] {
  return stmt(db, 'SELECT kind, COUNT(*) AS count FROM events GROUP BY kind ORDER BY kind').all() as { kind: string; count: number }[];
}
