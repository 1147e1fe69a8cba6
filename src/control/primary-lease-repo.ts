import { stmt, type Db } from './db';
import type { LeasedPrimary } from '../wire/records';

/**
 * fence: the volumes whose primary `node` is, at their generation, as a heartbeat answer carries them:
 * what the host's time-bound lease covers until its next answered heartbeat. Only ready volumes: one
 * being created or removed is nothing to mount while control is away.
 */
export function primariesOf(db: Db, node: string): LeasedPrimary[] {
  return stmt(db, `SELECT name AS volume, generation FROM volumes WHERE primary_node = ? AND state = 'ready' ORDER BY name`).all(node) as LeasedPrimary[];
}
