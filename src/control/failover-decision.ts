import { leaseGoneAtMs } from './lease-expiry';

/**
 * fence: whether and where to fail a volume over (pure; issue 7 item 5). Control promotes a standby
 * only once the primary's time-bound lease must have expired (fencing by time), and the switch adds
 * one to the generation (fencing by generation). The standby chosen is the one holding the newest
 * snapshot; the data written after it on the lost host is the window lost.
 */

export interface FailoverFacts {
  volume: { name: string; primaryNode: string; generation: number; state: 'creating' | 'ready' | 'deleting'; failover: 'auto' | 'manual' };
  primary: { up: boolean; lastHeartbeatMs: number | null };
  /** A move of the volume under way (not done or failed). */
  moving: boolean;
  /** Hosts keeping a standby copy (copies in state `replica`), and whether each is up. */
  standbys: readonly { node: string; up: boolean }[];
  /** The volume's snapshots in control's registry, with every host holding each. */
  snapshots: readonly { name: string; createdAt: string; hosts: readonly string[] }[];
  nowMs: number;
  leaseSeconds: number;
  marginSeconds: number;
  /** `ferry volume failover VOLUME --to HOST [--force]`; absent: control's own check of a down host. */
  request?: { to: string; force: boolean };
}

export type FailoverDecision =
  /** Nothing to do now (and why, for logs). */
  | { act: 'none'; reason: string }
  /** Not yet: the primary may still hold its lease until `untilMs`. */
  | { act: 'wait'; untilMs: number; reason: string }
  /** A request that cannot be done: the message says why and what to do. */
  | { act: 'refuse'; code: 'INVALID_REQUEST' | 'NOT_PRIMARY' | 'VOLUME_BUSY' | 'NODE_UNREACHABLE' | 'SNAPSHOT_NOT_FOUND'; message: string }
  /**
   * Promote `to` from `snapshot`: primary := to, generation + 1, the lost host's leases dropped.
   * `lostFrom`..`lostTo`: what the lost host may have written that the new primary does not have
   * (the snapshot's time to the host's last heartbeat). `fenced`: done by --force over a primary
   * that may still hold its lease.
   */
  | { act: 'promote'; to: string; snapshot: string; lostFrom: string; lostTo: string | null; fenced: boolean };

/** The newest snapshot `node` holds, or undefined. */
function newestOn(snapshots: FailoverFacts['snapshots'], node: string): FailoverFacts['snapshots'][number] | undefined {
  let best: FailoverFacts['snapshots'][number] | undefined;
  for (const s of snapshots) {
    if (!s.hosts.includes(node)) continue;
    if (!best || s.createdAt > best.createdAt || (s.createdAt === best.createdAt && s.name > best.name)) best = s;
  }
  return best;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function decideFailover(f: FailoverFacts): FailoverDecision {
  const v = f.volume;
  const r = f.request;
  const refuse = (code: Extract<FailoverDecision, { act: 'refuse' }>['code'], message: string): FailoverDecision =>
    r ? { act: 'refuse', code, message } : { act: 'none', reason: message };

  if (v.state !== 'ready') return refuse('VOLUME_BUSY', `volume ${v.name} is ${v.state === 'creating' ? 'being created' : 'being removed'}: nothing to fail over`);
  if (!r && v.failover !== 'auto') return { act: 'none', reason: `volume ${v.name} fails over by hand only (failover=manual)` };
  if (!r && f.primary.up) return { act: 'none', reason: `primary ${v.primaryNode} is up` };
  if (r && r.to === v.primaryNode) return refuse('INVALID_REQUEST', `volume ${v.name} already lives on ${r.to}`);
  if (f.moving) return refuse('VOLUME_BUSY', `volume ${v.name} is moving; wait for the move to end (ferry volume inspect ${v.name})`);

  const goneAt = leaseGoneAtMs({ lastHeartbeatMs: f.primary.lastHeartbeatMs, leaseSeconds: f.leaseSeconds, marginSeconds: f.marginSeconds });
  const leaseMayHold = f.nowMs < goneAt;
  if (r && f.primary.up && !r.force) {
    return refuse(
      'VOLUME_BUSY',
      `volume ${v.name}'s primary ${v.primaryNode} is up: move it instead (run the container on ${r.to}), or add --force to fence ${v.primaryNode} (it loses the volume and what it wrote after the newest snapshot on ${r.to})`,
    );
  }
  if (r && leaseMayHold && !r.force) {
    return refuse(
      'VOLUME_BUSY',
      `volume ${v.name}'s primary ${v.primaryNode} may still hold its lease until ${iso(goneAt)} (its containers may still write): wait until then, or add --force to fence it now`,
    );
  }
  if (!r && leaseMayHold) return { act: 'wait', untilMs: goneAt, reason: `${v.primaryNode}'s lease may hold until ${iso(goneAt)}` };

  // Where to: the request's host, else the up standby holding the newest snapshot.
  const standbys = f.standbys.filter((s) => s.node !== v.primaryNode);
  let to: string | undefined;
  let snap: FailoverFacts['snapshots'][number] | undefined;
  if (r) {
    const s = standbys.find((x) => x.node === r.to);
    if (!s) return refuse('INVALID_REQUEST', `host ${r.to} keeps no standby of ${v.name}${standbys.length ? ` (standbys: ${standbys.map((x) => x.node).join(', ')})` : ': give it replication first (-o replicate-to)'}`);
    if (!s.up) return refuse('NODE_UNREACHABLE', `host ${r.to} is down: pick another standby, or wait until it is back`);
    snap = newestOn(f.snapshots, r.to);
    if (!snap) return refuse('SNAPSHOT_NOT_FOUND', `host ${r.to} holds no snapshot of ${v.name} yet: nothing to make live there`);
    to = r.to;
  } else {
    for (const s of standbys) {
      if (!s.up) continue;
      const n = newestOn(f.snapshots, s.node);
      if (n && (!snap || n.createdAt > snap.createdAt || (n.createdAt === snap.createdAt && s.node < to!))) [to, snap] = [s.node, n];
    }
    if (!to || !snap) return { act: 'none', reason: `no standby of ${v.name} that is up holds a snapshot` };
  }
  return { act: 'promote', to, snapshot: snap.name, lostFrom: snap.createdAt, lostTo: iso(f.primary.lastHeartbeatMs), fenced: leaseMayHold };
}
