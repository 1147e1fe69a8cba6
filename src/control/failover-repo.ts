import { FerryError } from '../errors';
import { failoverOf, type FailoverSetting } from '../volume/failover-settings';
import type { FailoverDuty, FailoverRecord, VolumeRecord } from '../wire/records';
import { allCopies, forgetCopy, setCopy } from './copy-repo';
import { nowIso, stmt, type Db } from './db';
import { addEvent } from './event-repo';
import { decideFailover, type FailoverDecision } from './failover-decision';
import { dropLeases } from './lease-repo';
import { activeMove } from './move-repo';
import { listNodes } from './node-repo';
import { getPolicy } from './policy-repo';
import { snapshotsOf } from './snapshot-repo';
import { removeStandby } from './standby-repo';
import { getVolume, listVolumes } from './volume-repo';

/**
 * fence (issue 7 item 5): control's side of failover. `failovers` keeps one row per promotion: the
 * new primary makes the chosen snapshot live (`promoted`), the lost host, once back, keeps its late
 * writes as a snapshot and becomes a standby (`fenced`). The decision is pure (failover-decision.ts).
 */

/** Lease timing as control reads it (config control.leaseSeconds, control.leaseMarginSeconds). */
export interface LeaseTiming {
  leaseSeconds: number;
  marginSeconds: number;
}

interface FailoverRow {
  id: number;
  volume: string;
  from_node: string;
  to_node: string;
  generation: number;
  snapshot: string;
  lost_from: string;
  lost_to: string | null;
  forced: number;
  promoted: number;
  fenced: number;
  kept_as: string | null;
  created_at: string;
}

const toRecord = (r: FailoverRow): FailoverRecord => ({
  id: r.id,
  volume: r.volume,
  from: r.from_node,
  to: r.to_node,
  generation: r.generation,
  snapshot: r.snapshot,
  lostFrom: r.lost_from,
  lostTo: r.lost_to,
  forced: r.forced === 1,
  promoted: r.promoted === 1,
  fenced: r.fenced === 1,
  keptAs: r.kept_as,
  createdAt: r.created_at,
});

/** The failovers of `volume`, newest first. */
export function failoversOf(db: Db, volume: string): FailoverRecord[] {
  return (stmt(db, 'SELECT * FROM failovers WHERE volume = ? ORDER BY id DESC').all(volume) as FailoverRow[]).map(toRecord);
}

/** True while the new primary of `volume` has not made its snapshot live yet (no lease meanwhile). */
export function promotionPending(db: Db, volume: string): boolean {
  return stmt(db, 'SELECT 1 FROM failovers WHERE volume = ? AND promoted = 0').get(volume) !== undefined;
}

/** What `node` must do: promote volumes failed over to it, fence those failed over away from it. */
export function failoverDuties(db: Db, node: string): FailoverDuty[] {
  const rows = stmt(
    db,
    `SELECT f.*, v.backend AS backend, v.size_bytes AS size_bytes, v.fs AS fs FROM failovers f JOIN volumes v ON v.name = f.volume
     WHERE v.state = 'ready' AND ((f.to_node = ? AND f.promoted = 0 AND v.primary_node = f.to_node AND v.generation = f.generation) OR (f.from_node = ? AND f.fenced = 0))
     ORDER BY f.id`,
  ).all(node, node) as (FailoverRow & { backend: string; size_bytes: number | null; fs: string | null })[];
  return rows.map((r) => ({
    volume: r.volume,
    backend: r.backend,
    sizeBytes: r.size_bytes,
    fs: r.fs,
    role: r.to_node === node && r.promoted === 0 ? 'promote' : 'fence',
    snapshot: r.snapshot,
    generation: r.generation,
  }));
}

/** A volume's failover mode: its own option, else its policy's (failoverOf), `manual` when unreadable. */
function modeOf(db: Db, v: VolumeRecord): FailoverSetting {
  try {
    const policy = v.options.policy ? getPolicy(db, v.options.policy) : undefined;
    return failoverOf(v.options, policy);
  } catch {
    return 'manual';
  }
}

/** Reads the facts of `v` and decides (pure). */
export function decide(db: Db, v: VolumeRecord, timing: LeaseTiming, nowMs: number, request?: { to: string; force: boolean }): FailoverDecision {
  const nodes = new Map(listNodes(db).map((n) => [n.name, n]));
  const primary = nodes.get(v.primaryNode);
  const copies = allCopies(db).get(v.name) ?? [];
  return decideFailover({
    volume: { name: v.name, primaryNode: v.primaryNode, generation: v.generation, state: v.state, failover: modeOf(db, v) },
    primary: { up: primary?.state === 'up', lastHeartbeatMs: primary?.lastHeartbeat ? Date.parse(primary.lastHeartbeat) : null },
    moving: activeMove(db, v.name) !== undefined,
    standbys: copies.filter((c) => c.state === 'replica').map((c) => ({ node: c.node, up: nodes.get(c.node)?.state === 'up' })),
    snapshots: snapshotsOf(db, v.name),
    nowMs,
    leaseSeconds: timing.leaseSeconds,
    marginSeconds: timing.marginSeconds,
    request,
  });
}

/**
 * Promotes as decided, in one transaction with the caller's checks: primary := to, generation + 1
 * (only if the volume is still where the decision saw it), the lost host's leases dropped, the new
 * primary no longer a standby, the failover row and its event (with the window lost).
 */
export function promote(db: Db, v: VolumeRecord, d: Extract<FailoverDecision, { act: 'promote' }>, by: string): FailoverRecord {
  const changed = stmt(db, `UPDATE volumes SET primary_node = ?, generation = generation + 1 WHERE name = ? AND primary_node = ? AND generation = ? AND state = 'ready'`).run(
    d.to,
    v.name,
    v.primaryNode,
    v.generation,
  ).changes;
  if (changed !== 1) throw new FerryError('VOLUME_BUSY', `volume ${v.name} changed while failing over; look again (ferry volume inspect ${v.name})`);
  const dropped = dropLeases(db, v.name, v.primaryNode);
  forgetCopy(db, v.name, d.to);
  removeStandby(db, v.name, d.to);
  const at = nowIso();
  const id = Number(
    stmt(
      db,
      `INSERT INTO failovers (volume, from_node, to_node, generation, snapshot, lost_from, lost_to, forced, promoted, fenced, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)`,
    ).run(v.name, v.primaryNode, d.to, v.generation + 1, d.snapshot, d.lostFrom, d.lostTo, d.fenced ? 1 : 0, at).lastInsertRowid,
  );
  addEvent(db, {
    volume: v.name,
    node: d.to,
    kind: 'failover',
    detail:
      `${v.primaryNode} -> ${d.to} at generation ${v.generation + 1} (by ${by}${d.fenced ? ', forced: ' + v.primaryNode + ' fenced' : ''}) from snapshot ${d.snapshot}; ` +
      `lost window: ${d.lostFrom} to ${d.lostTo ?? 'unknown'} (what ${v.primaryNode} wrote after the snapshot)${dropped ? `; ${dropped} lease(s) of ${v.primaryNode} dropped` : ''}`,
  });
  return failoversOf(db, v.name).find((f) => f.id === id)!;
}

/** The new primary made the snapshot live: leases may be granted again. Idempotent. */
export function markPromoted(db: Db, volume: string, node: string, generation: number): void {
  const n = stmt(db, 'UPDATE failovers SET promoted = 1 WHERE volume = ? AND to_node = ? AND generation = ? AND promoted = 0').run(volume, node, generation).changes;
  if (n) addEvent(db, { volume, node, kind: 'failover-live', detail: `${volume} is live on ${node} at generation ${generation}` });
}

/**
 * The lost host is back and fenced: it kept its late writes as snapshot `keptAs` (null: it had none
 * to keep) and is a standby now (a `replica` copy that replication resyncs). Idempotent.
 */
export function markFenced(db: Db, volume: string, node: string, generation: number, keptAs: string | null): void {
  const n = stmt(db, 'UPDATE failovers SET fenced = 1, kept_as = ? WHERE volume = ? AND from_node = ? AND generation = ? AND fenced = 0').run(keptAs, volume, node, generation)
    .changes;
  if (!n) return;
  const v = getVolume(db, volume);
  if (v && v.primaryNode !== node) setCopy(db, volume, node, 'replica');
  addEvent(db, {
    volume,
    node,
    kind: 'fenced',
    detail: `${node} is back and fenced: ${keptAs ? `what it wrote after the failover's snapshot is kept as snapshot ${keptAs}; ` : ''}it keeps a standby copy now`,
  });
}

/**
 * One pass of control's failover timer: every ready volume whose primary is down and whose mode is
 * `auto` is promoted once the decision says so. Answers what it did (and what waits), for the log.
 */
export function superviseFailover(db: Db, timing: LeaseTiming, nowMs: number): { volume: string; decision: FailoverDecision }[] {
  const out: { volume: string; decision: FailoverDecision }[] = [];
  const down = new Set(listNodes(db).filter((n) => n.state !== 'up').map((n) => n.name));
  if (down.size === 0) return out;
  for (const v of listVolumes(db)) {
    if (!down.has(v.primaryNode) || v.state !== 'ready') continue;
    db.transaction(() => {
      const fresh = getVolume(db, v.name);
      if (!fresh) return;
      const d = decide(db, fresh, timing, nowMs);
      if (d.act === 'promote') promote(db, fresh, d, 'control');
      if (d.act !== 'none') out.push({ volume: v.name, decision: d });
    })();
  }
  return out;
}
