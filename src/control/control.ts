import { FerryError } from '../errors';
import type { Db } from './db';
import { addEvent, eventsOf, recentEvents } from './event-repo';
import { acquireLease, allLeases, annotateLeases, dropLeases, leaseCounts, leasesOf, leasesOnNode, releaseLease } from './lease-repo';
import {
  activeMove,
  deleteMovesOf,
  getMove,
  insertMove,
  lastMove,
  movesOfNode,
  recentMoves,
  setMoveContainers,
  transitionMove,
  updateMoveProgress,
} from './move-repo';
import { MOVE_STATES, acceptsProgress, canMove, eventOfReportedState, isActiveMove, nextMoveState, type MoveEvent } from './move-states';
import { allCopies, copiesOf, copiesToDestroy, forgetCopy, forgetCopyIn, markAllDropping, setCopy, type CopyRecord } from './copy-repo';
import { keepsReplica } from '../volume/options';
import { reclaimOf, type Reclaim } from '../volume/reclaim';
import { deleteRemoved, getRemoved, insertRemoved, listRemoved, retainingOf, setRemovedState } from './removed-repo';
import { getNode, heartbeat, listHostReports, listNodes, markSilentNodesDown, saveHostReport, upsertNode } from './node-repo';
import {
  switchPrimary,
  deleteVolume,
  getVolume,
  insertVolume,
  listVolumes,
  recordUsage,
  setVolumeState,
} from './volume-repo';
import type { ControlClient, PolicyChanges, PolicySpec, SnapshotReport, VolumeReservation } from '../wire/control-client';
import { NO_SNAPSHOTS, forgetSnapshot, forgetSnapshotsOn, recordSnapshot, snapshotSummaries, snapshotsOf } from './snapshot-repo';
import { checkPolicy } from './policy-check';
import { deletePolicy, getPolicy, insertPolicy, listPolicies, savePolicy, setVolumeOptions, volumesWithPolicy } from './policy-repo';
import { applyOptionChanges } from '../volume/volume-settings';
import { inUse } from '../wire/in-use';
import type {
  ClusterEvent,
  ContainerSpec,
  CopyToDestroy,
  HostReport,
  Lease,
  MoveRecord,
  NodeRecord,
  PolicyRecord,
  RemovedVolume,
  RemoveStart,
  ReplicationDuty,
  SnapshotRecord,
  VolumeRecord,
  VolumeView,
} from '../wire/records';
// fence: time-bound leases and failover.
import type { FailoverDuty, FailoverRecord, LeasedPrimary } from '../wire/records';
import type { BankRecord, BankSecrets } from '../wire/records';
import { bankSecrets, deleteBank, getBank, insertBank, listBanks } from './bank-repo';
import { primariesOf } from './primary-lease-repo';
import { decide, failoverDuties, failoversOf, markFenced, markPromoted, promote, promotionPending, superviseFailover, type LeaseTiming } from './failover-repo';
// replicate
import { allStandbys, recordStandbyRound, replicationDuties, standbyViews, standbysOf, superviseReplication } from './replication-supervisor';
import type { LagTransition } from './replication-lag';
import type { StandbyRecord } from './standby-repo';

/** Control's cluster-wide settings (config `control`). */
export interface ControlPolicy {
  /** Whether the old primary keeps its copy after a move; a volume's `replica` option overrides it. */
  keepReplica: boolean;
  /** fence: control.leaseSeconds and control.leaseMarginSeconds (failover waits for a lease to be gone). */
  lease?: LeaseTiming;
  /** reclaim: what a remove does with data when a volume's options do not say (config control.reclaim/retainRemoved). */
  reclaim?: Reclaim;
}

/** reclaim: without a config (tests), removes delete, and a retain keeps 7 days. */
const DEFAULT_RECLAIM: Reclaim = { reclaim: 'delete', retainSeconds: 7 * 86_400 };

/** Control's answers straight from SQLite, in the same process (the single-host `ferry serve`). */
export class LocalControl implements ControlClient {
  constructor(
    private readonly db: Db,
    private readonly policy: ControlPolicy = { keepReplica: true },
  ) {}

  /** `v` is a fresh record: it gets its live facts in place rather than be copied (a List of 1,000). */
  private view(v: VolumeRecord, mounts: number, copies: CopyRecord[], standbys?: StandbyRecord[]): VolumeView {
    // replicate: a volume with replication shows its standbys and their lag.
    const sb = standbyViews(this.db, v, standbys, Date.now());
    return Object.assign(v, {
      mounts,
      replicas: copies.filter((c) => c.state === 'replica').map((c) => c.node),
      dropping: copies.filter((c) => c.state === 'dropping').map((c) => c.node),
      ...(sb ? { standbys: sb } : {}),
    });
  }

  async reserveVolume(v: VolumeReservation): Promise<boolean> {
    return this.db.transaction(() => {
      // policy (issue 7 item 3): a volume names only a policy that exists, checked where it is recorded.
      if (v.options.policy !== undefined && !getPolicy(this.db, v.options.policy)) throw noPolicy(this.db, v.options.policy);
      return insertVolume(this.db, v);
    })();
  }

  async confirmVolume(name: string, node: string): Promise<void> {
    this.db.transaction(() => {
      setVolumeState(this.db, name, 'ready');
      addEvent(this.db, { volume: name, node, kind: 'created' });
    })();
  }

  async abandonVolume(name: string, node: string, reason: string): Promise<void> {
    this.db.transaction(() => {
      deleteVolume(this.db, name);
      addEvent(this.db, { volume: name, node, kind: 'create-failed', detail: reason });
    })();
  }

  async getVolume(name: string): Promise<VolumeView | undefined> {
    const v = getVolume(this.db, name);
    if (!v) return undefined;
    const mounts = leasesOf(this.db, name).reduce((n, l) => n + l.count, 0);
    // snap: the snapshot count and newest, for Docker's inspect Status.
    return Object.assign(this.view(v, mounts, copiesOf(this.db, name), standbysOf(this.db, name)), { snapshots: snapshotSummaries(this.db, name).get(name) ?? NO_SNAPSHOTS });
  }

  async listVolumes(): Promise<VolumeView[]> {
    const counts = leaseCounts(this.db);
    const copies = allCopies(this.db);
    const snaps = snapshotSummaries(this.db);
    const standbys = allStandbys(this.db);
    return listVolumes(this.db).map((v) =>
      Object.assign(this.view(v, counts.get(v.name) ?? 0, copies.get(v.name) ?? [], standbys.get(v.name)), { snapshots: snaps.get(v.name) ?? NO_SNAPSHOTS }),
    );
  }

  async beginDelete(name: string, node: string): Promise<string[]> {
    return (await this.beginRemove(name, node)).hosts;
  }

  async beginRemove(name: string, node: string): Promise<RemoveStart> {
    return this.db.transaction((): RemoveStart => {
      const v = getVolume(this.db, name);
      if (!v) return { hosts: [], retained: null };
      const dropping = (): string[] => copiesOf(this.db, name).filter((c) => c.state === 'dropping').map((c) => c.node);
      if (v.state === 'deleting') return { hosts: dropping(), retained: retainingOf(this.db, name) ?? null };
      if (v.state === 'creating') throw new FerryError('VOLUME_BUSY', `volume ${name} is being created right now; try again in a moment`);
      const leases = leasesOf(this.db, name);
      if (leases.length > 0) throw inUse(name, leases);
      const m = activeMove(this.db, name);
      if (m) {
        throw new FerryError(
          'VOLUME_BUSY',
          `volume ${name} is moving from ${m.source} to ${m.target} (${m.state}); remove it once the move has ended (ferry volume inspect ${name})`,
        );
      }
      // reclaim: decided here, in the same transaction, from the volume's options and control's defaults.
      const policy = v.options.policy ? (getPolicy(this.db, v.options.policy) ?? null) : null;
      const reclaim = reclaimOf(v.options, policy, this.policy.reclaim ?? DEFAULT_RECLAIM);
      // One transaction: from here on nothing mounts or moves it (both need state 'ready'), and every
      // host that holds a copy finds it in its heartbeat answer until it reports the copy destroyed.
      // A retained volume's primary copy is kept ('retaining') until its retained dataset exists.
      setVolumeState(this.db, name, 'deleting');
      markAllDropping(this.db, name);
      setCopy(this.db, name, v.primaryNode, reclaim.reclaim === 'retain' ? 'retaining' : 'dropping');
      const retained = reclaim.reclaim === 'retain' ? insertRemoved(this.db, v, reclaim.retainSeconds) : null;
      const hosts = dropping();
      addEvent(this.db, {
        volume: name,
        node,
        kind: 'deleting',
        detail:
          `removed on ${node}; copies to destroy on ${hosts.join(', ') || 'no host'}` +
          (retained ? `; its data is retained on ${v.primaryNode} until ${retained.expiresAt} (reclaim=retain)` : ''),
      });
      return { hosts, retained };
    })();
  }

  async copyDestroyed(name: string, node: string): Promise<void> {
    this.db.transaction(() => {
      if (!forgetCopyIn(this.db, name, node, 'dropping')) return;
      forgetSnapshotsOn(this.db, name, node); // snap: its snapshots went with the copy
      addEvent(this.db, { volume: name, node, kind: 'copy-destroyed' });
      const v = getVolume(this.db, name);
      if (v?.state !== 'deleting' || copiesOf(this.db, name).length > 0) return;
      deleteVolume(this.db, name);
      // Its ended moves go with it: a new volume of the same name starts without history.
      deleteMovesOf(this.db, name);
      addEvent(this.db, { volume: name, node, kind: 'deleted', detail: 'the last copy is gone' });
    })();
  }

  async forgetReplica(name: string, node: string, reason: string): Promise<void> {
    this.db.transaction(() => {
      if (!forgetCopyIn(this.db, name, node, 'replica')) return;
      forgetSnapshotsOn(this.db, name, node); // snap: its snapshots went with the copy
      addEvent(this.db, { volume: name, node, kind: 'replica-forgotten', detail: reason });
    })();
  }

  // --- reclaim (DESIGN: "Removing volumes safely") ---

  async retainedCopyMade(id: number, node: string): Promise<RemovedVolume> {
    return this.db.transaction(() => {
      const r = getRemoved(this.db, id);
      if (!r) throw new FerryError('VOLUME_NOT_FOUND', `removal ${id} is not recorded`);
      if (r.node !== node) throw new FerryError('INVALID_REQUEST', `the data of removed volume ${r.name} is kept on ${r.node}, not ${node}`);
      if (!setRemovedState(this.db, id, 'retaining', 'retained')) return r;
      // The retained copy exists: only now may the live one go (never neither).
      const c = copiesOf(this.db, r.name).find((x) => x.node === node && x.state === 'retaining');
      if (c) setCopy(this.db, r.name, node, 'dropping');
      addEvent(this.db, { volume: r.name, node, kind: 'retained', detail: `its data is kept as ${r.dataset} on ${node} until ${r.expiresAt}` });
      return getRemoved(this.db, id)!;
    })();
  }

  async listRemoved(): Promise<RemovedVolume[]> {
    return listRemoved(this.db);
  }

  async beginUndelete(id: number, as: string, node: string): Promise<RemovedVolume> {
    return this.db.transaction(() => {
      const r = getRemoved(this.db, id);
      if (!r || r.state !== 'retained') {
        throw new FerryError('VOLUME_NOT_FOUND', `removed volume ${r?.name ?? `#${id}`} is ${r ? (r.state === 'retaining' ? 'still being removed; retry shortly' : 'expired or already undeleted') : 'not retained'}: see ferry volume ls --removed`);
      }
      if (r.node !== node) {
        throw new FerryError('INVALID_REQUEST', `the data of removed volume ${r.name} is kept on ${r.node}: run ferry volume undelete ${r.name} there`);
      }
      const taken = getVolume(this.db, as);
      if (taken?.state === 'deleting') throw new FerryError('VOLUME_BUSY', `volume ${as} is still being removed; retry shortly`);
      if (taken) {
        throw new FerryError(
          'VOLUME_EXISTS',
          `a volume named ${as} exists again (created since ${r.name} was removed): bring the old data back under another name with ferry volume undelete ${r.name} --as NEW`,
        );
      }
      insertVolume(this.db, { name: as, backend: r.backend, sizeBytes: r.sizeBytes ?? undefined, fs: r.fs ?? undefined, options: r.options, primaryNode: node });
      return r;
    })();
  }

  async finishUndelete(id: number, as: string, node: string): Promise<void> {
    this.db.transaction(() => {
      const r = getRemoved(this.db, id);
      const v = getVolume(this.db, as);
      if (!r || !v || v.state !== 'creating' || v.primaryNode !== node) throw new FerryError('VOLUME_BUSY', `the undelete of removal ${id} as ${as} is no longer current`);
      if (!setRemovedState(this.db, id, 'retained', 'dropping')) throw new FerryError('VOLUME_NOT_FOUND', `removed volume ${r.name} expired during its undelete`);
      setVolumeState(this.db, as, 'ready');
      addEvent(this.db, { volume: as, node, kind: 'undeleted', detail: `the data of ${r.name}, removed at ${r.removedAt}, is back as ${as}` });
    })();
  }

  async expireRemoved(id: number, node: string): Promise<boolean> {
    return this.db.transaction(() => {
      const r = getRemoved(this.db, id);
      if (!r || r.node !== node || !setRemovedState(this.db, id, 'retained', 'dropping')) return false;
      addEvent(this.db, { volume: r.name, node, kind: 'retained-expired', detail: `kept until ${r.expiresAt}; ${r.dataset} on ${node} is destroyed now` });
      return true;
    })();
  }

  async forgetRemoved(id: number, node: string): Promise<void> {
    this.db.transaction(() => {
      const r = getRemoved(this.db, id);
      if (!r || r.node !== node || !deleteRemoved(this.db, id)) return;
      addEvent(this.db, { volume: r.name, node, kind: 'retained-destroyed', detail: `${r.dataset} on ${node} is gone` });
    })();
  }

  async acquireLease(l: { volume: string; mountId: string; node: string; mountpoint: string; generation: number }): Promise<void> {
    this.db.transaction(() => {
      const v = getVolume(this.db, l.volume);
      if (!v) throw new FerryError('VOLUME_NOT_FOUND', `volume ${l.volume} does not exist`);
      // A remove may have begun on another host since this host looked (a lease would pin its data).
      if (v.state !== 'ready') throw new FerryError('VOLUME_BUSY', `volume ${l.volume} is ${v.state === 'deleting' ? 'being removed' : 'being created'}`);
      if (v.primaryNode !== l.node || v.generation !== l.generation) {
        throw new FerryError(
          'NOT_PRIMARY',
          `volume ${l.volume} is now primary on ${v.primaryNode} (generation ${v.generation}); host ${l.node} holds an older copy and must not write it`,
        );
      }
      const m = activeMove(this.db, l.volume);
      if (m && MOVE_STATES[m.state].refusesMounts) throw moving(m);
      // fence: the new primary of a failover makes its snapshot live before anything mounts it.
      if (promotionPending(this.db, l.volume)) throw new FerryError('VOLUME_BUSY', `volume ${l.volume} is failing over to ${v.primaryNode}: its data is being made live there; try again shortly`);
      acquireLease(this.db, l);
    })();
  }

  async releaseLease(volume: string, mountId: string): Promise<boolean> {
    return releaseLease(this.db, volume, mountId);
  }

  async leasesOf(volume: string): Promise<Lease[]> {
    return leasesOf(this.db, volume);
  }

  async leasesOnNode(node: string): Promise<Lease[]> {
    return leasesOnNode(this.db, node);
  }

  async dropLeases(volume: string, node: string, reason: string): Promise<number> {
    return this.db.transaction(() => {
      const n = dropLeases(this.db, volume, node);
      if (n > 0) addEvent(this.db, { volume, node, kind: 'leases-dropped', detail: reason });
      return n;
    })();
  }

  async recordUsage(usage: Map<string, number>): Promise<void> {
    this.db.transaction(() => {
      for (const [name, bytes] of usage) recordUsage(this.db, name, bytes);
    })();
  }

  async eventsOf(volume: string): Promise<ClusterEvent[]> {
    return eventsOf(this.db, volume);
  }

  async recentEvents(limit: number): Promise<ClusterEvent[]> {
    return recentEvents(this.db, limit);
  }

  // quiesce (issue 7 item 2): what an agent saw around a snapshot, for `ferry volume inspect`.
  async recordEvent(e: { volume?: string; node: string; kind: string; detail?: string }): Promise<void> {
    addEvent(this.db, e);
  }

  async listLeases(): Promise<Lease[]> {
    return allLeases(this.db);
  }

  async registerNode(n: { name: string; address: string; transferKey: string; bootId: string }): Promise<void> {
    this.db.transaction(() => {
      upsertNode(this.db, n);
      addEvent(this.db, { node: n.name, kind: 'node-registered', detail: n.address });
    })();
  }

  async heartbeat(
    name: string,
    bootId: string,
  ): Promise<{ known: boolean; moves: MoveRecord[]; destroy: CopyToDestroy[]; primaries: LeasedPrimary[]; failovers: FailoverDuty[] }> {
    const known = heartbeat(this.db, name, bootId);
    // fence: primaries renew the host's time-bound lease on exactly these volumes at these generations;
    // failovers: what it must promote or fence.
    return known
      ? { known, moves: movesOfNode(this.db, name), destroy: copiesToDestroy(this.db, name), primaries: primariesOf(this.db, name), failovers: failoverDuties(this.db, name) }
      : { known, moves: [], destroy: [], primaries: [], failovers: [] };
  }

  async listNodes(): Promise<NodeRecord[]> {
    return listNodes(this.db);
  }

  async reportHost(r: Omit<HostReport, 'at'>): Promise<void> {
    saveHostReport(this.db, r);
  }

  async hostReports(): Promise<HostReport[]> {
    return listHostReports(this.db);
  }

  /** Marks nodes silent for longer than `timeoutMs` as down (control's own timer calls this). */
  markSilentNodesDown(timeoutMs: number): string[] {
    return this.db.transaction(() => {
      const down = markSilentNodesDown(this.db, new Date(Date.now() - timeoutMs).toISOString());
      for (const node of down) {
        addEvent(this.db, { node, kind: 'node-down', detail: `no heartbeat for ${timeoutMs} ms` });
        // A move needs both of its hosts until the switch: it fails now, with the reason, and the source
        // stays primary (a target cut off cannot record its own failure). After the switch it is the
        // target's to finish, whenever it is back.
        for (const m of movesOfNode(this.db, node)) {
          if (!canMove(m.state, 'host-down')) continue;
          const reason = `host ${node} stopped answering during ${m.state} (no heartbeat for ${Math.round(timeoutMs / 1000)} s); ${m.volume} stays on ${m.source}`;
          transitionMove(this.db, m, 'host-down', { error: reason });
          addEvent(this.db, { volume: m.volume, node, kind: 'move-failed', detail: `move ${m.id}: ${reason}` });
        }
      }
      return down;
    })();
  }

  async annotateLeases(volume: string, node: string, containers: string[]): Promise<void> {
    annotateLeases(this.db, volume, node, containers);
  }

  async setMoveContainers(id: number, specs: ContainerSpec[]): Promise<void> {
    this.db.transaction(() => {
      const m = getMove(this.db, id);
      if (!m) return;
      setMoveContainers(this.db, id, specs);
      if (specs.length) addEvent(this.db, { volume: m.volume, node: m.source, kind: 'containers-stopped', detail: specs.map((c) => c.name).join(', ') });
    })();
  }

  async requestMove(volume: string, target: string, opts: { restartContainers?: boolean } = {}): Promise<MoveRecord> {
    return this.db.transaction(() => {
      const v = getVolume(this.db, volume);
      if (!v || v.state === 'creating') throw new FerryError('VOLUME_NOT_FOUND', `volume ${volume} does not exist`);
      if (v.state === 'deleting') throw new FerryError('VOLUME_BUSY', `volume ${volume} is being removed; it cannot move`);
      const t = getNode(this.db, target);
      if (!t) throw new FerryError('NODE_NOT_FOUND', `host ${target} is not part of the cluster: see ferry node ls`);
      const current = activeMove(this.db, volume);
      if (current) {
        if (current.target === target) return current;
        throw new FerryError(
          'MOVE_CONFLICT',
          `volume ${volume} is already moving from ${current.source} to ${current.target} (${current.state}); wait for it or move it again afterwards`,
        );
      }
      if (v.primaryNode === target) throw new FerryError('MOVE_CONFLICT', `volume ${volume} is already on ${target}`);
      // The target's old copy is being destroyed: a move into it now would race that.
      if (copiesOf(this.db, volume).some((c) => c.node === target && c.state === 'dropping')) {
        throw new FerryError('VOLUME_BUSY', `host ${target} is still removing its old copy of ${volume}; retry in a few seconds`);
      }
      const s = getNode(this.db, v.primaryNode);
      if (!s || s.state !== 'up') {
        throw new FerryError('NODE_UNREACHABLE', `volume ${volume} lives on ${v.primaryNode}, which is down: its data cannot be moved until it is back`);
      }
      const m = insertMove(this.db, { volume, source: v.primaryNode, target, fromGeneration: v.generation, restartContainers: opts.restartContainers });
      addEvent(this.db, { volume, node: target, kind: 'move-requested', detail: `from ${v.primaryNode} to ${target} (move ${m.id})` });
      return m;
    })();
  }

  async getMove(id: number): Promise<MoveRecord | undefined> {
    return getMove(this.db, id);
  }

  async moveOf(volume: string): Promise<MoveRecord | undefined> {
    return activeMove(this.db, volume) ?? lastMove(this.db, volume);
  }

  async recentMoves(endedLimit: number): Promise<MoveRecord[]> {
    return recentMoves(this.db, endedLimit);
  }

  /**
   * Move `id` as it is now, checked able to take `event` (or, without one, progress: only before the
   * switch); MOVE_CONFLICT naming its state otherwise.
   */
  private current(id: number, event?: MoveEvent): MoveRecord {
    const m = getMove(this.db, id);
    if (!m) throw new FerryError('MOVE_CONFLICT', `move ${id} does not exist`);
    if (!isActiveMove(m.state)) {
      throw new FerryError('MOVE_CONFLICT', `move ${id} of ${m.volume} is ${m.state}${m.error ? ` (${m.error})` : ''}, no longer under way`);
    }
    if (event) nextMoveState(m.state, event, m);
    else if (!acceptsProgress(m.state)) throw new FerryError('MOVE_CONFLICT', `move ${id} of ${m.volume} is ${m.state}: it takes no progress reports after the switch`);
    return m;
  }

  async updateMove(id: number, u: { state?: 'releasing' | 'final'; bytesDone?: number; bytesTotal?: number | null }): Promise<MoveRecord> {
    return this.db.transaction(() => {
      const m = this.current(id);
      // A reported state is the event that leads to it; a repeat of the state the move is in (an
      // agent's retried call) only records progress; a state behind it (final -> releasing) is refused.
      if (u.state && u.state !== m.state) {
        transitionMove(this.db, m, eventOfReportedState(u.state));
        addEvent(this.db, { volume: m.volume, kind: `move-${u.state}`, detail: `move ${id}` });
      }
      updateMoveProgress(this.db, id, { bytesDone: u.bytesDone, bytesTotal: u.bytesTotal });
      return getMove(this.db, id)!;
    })();
  }

  async failMove(id: number, reason: string): Promise<void> {
    this.db.transaction(() => {
      const m = getMove(this.db, id);
      // Only a move that has not switched can fail; after the switch the target finishes it.
      if (!m || !canMove(m.state, 'fail')) return;
      transitionMove(this.db, m, 'fail', { error: reason });
      addEvent(this.db, { volume: m.volume, kind: 'move-failed', detail: `move ${id}: ${reason}` });
    })();
  }

  async switchMove(id: number): Promise<VolumeView> {
    return this.db.transaction(() => {
      const m = this.current(id, 'switch');
      const leases = leasesOf(this.db, m.volume);
      if (leases.length > 0) throw inUse(m.volume, leases);
      if (!switchPrimary(this.db, m.volume, m.source, m.target, m.fromGeneration)) {
        transitionMove(this.db, m, 'fail', { error: 'the volume changed during the move' });
        throw new FerryError('MOVE_CONFLICT', `volume ${m.volume} changed during move ${id}; nothing was switched`);
      }
      transitionMove(this.db, m, 'switch');
      const v = getVolume(this.db, m.volume)!;
      // The target's copy is the primary now, not a replica; the source's copy stays or goes by policy.
      forgetCopy(this.db, m.volume, m.target);
      const keep = keepsReplica(v.options, this.policy.keepReplica);
      setCopy(this.db, m.volume, m.source, keep ? 'replica' : 'dropping');
      addEvent(this.db, {
        volume: m.volume,
        node: m.target,
        kind: 'move-switched',
        detail: `primary ${m.source} -> ${m.target}, generation ${m.fromGeneration + 1}; ${m.source} ${keep ? 'keeps a replica' : 'drops its copy'}`,
      });
      return this.view(v, 0, copiesOf(this.db, m.volume), standbysOf(this.db, m.volume));
    })();
  }

  async finishMove(id: number): Promise<void> {
    this.db.transaction(() => {
      const m = getMove(this.db, id);
      // Idempotent: a target resumed after a crash may finish a move that is already done.
      if (!m || !canMove(m.state, 'mounted')) return;
      transitionMove(this.db, m, 'mounted');
      addEvent(this.db, { volume: m.volume, node: m.target, kind: 'move-done', detail: `move ${id}` });
    })();
  }

  // --- snap (issue 7 item 1): the snapshot registry ---

  async recordSnapshot(r: SnapshotReport): Promise<void> {
    this.db.transaction(() => {
      const v = getVolume(this.db, r.volume);
      if (!v) throw new FerryError('VOLUME_NOT_FOUND', `volume ${r.volume} does not exist; snapshot ${r.name} on ${r.node} was not recorded`);
      const known = snapshotsOf(this.db, r.volume).find((s) => s.name === r.name);
      if (known && !known.hosts.includes(r.node)) {
        // Names are unique per volume, and a second host holds a name only by receiving it from one
        // that holds it: then the same name on two hosts is the same data (snapshot-chain.ts relies on it).
        if (r.from === undefined) {
          throw new FerryError('VOLUME_EXISTS', `volume ${r.volume} already has a snapshot named ${r.name} (on ${known.hosts.join(', ')}): pick another name`);
        }
        if (!known.hosts.includes(r.from)) {
          throw new FerryError('SNAPSHOT_NOT_FOUND', `host ${r.from} holds no recorded snapshot ${r.name} of ${r.volume}; the copy on ${r.node} is not recorded`);
        }
      } else if (!known && r.from !== undefined) {
        throw new FerryError('SNAPSHOT_NOT_FOUND', `no host holds a recorded snapshot ${r.name} of ${r.volume}; the copy ${r.node} received from ${r.from} is not recorded`);
      }
      // A received copy keeps the facts of the snapshot as it was taken.
      recordSnapshot(this.db, known ? { ...r, origin: known.origin, createdAt: known.createdAt, group: known.group, policy: known.policy } : r);
      // People see the snapshots they take and keep; schedules and replication would flood the log.
      if (!known && (r.origin === 'manual' || r.origin === 'fenced' || r.origin === 'removed')) {
        addEvent(this.db, { volume: r.volume, node: r.node, kind: 'snapshot-created', detail: `${r.name} (${r.origin})` });
      }
    })();
  }

  async forgetSnapshot(volume: string, name: string, node: string): Promise<void> {
    this.db.transaction(() => {
      if (!forgetSnapshot(this.db, volume, name, node)) return;
      const left = snapshotsOf(this.db, volume).some((s) => s.name === name);
      if (!left && !name.startsWith('_')) addEvent(this.db, { volume, node, kind: 'snapshot-removed', detail: name });
    })();
  }

  async snapshotsOf(volume: string): Promise<SnapshotRecord[]> {
    return snapshotsOf(this.db, volume);
  }

  // --- policy (issue 7 item 3) ---

  async createPolicy(p: PolicySpec): Promise<PolicyRecord> {
    const spec = checkPolicy(p);
    return this.db.transaction(() => {
      this.checkPolicyBank(spec);
      if (!insertPolicy(this.db, spec)) {
        throw new FerryError('POLICY_EXISTS', `policy ${spec.name} already exists: change it with ferry policy update ${spec.name}, or pick another name`);
      }
      addEvent(this.db, { kind: 'policy-created', detail: `policy ${spec.name}${describePolicy(spec)}` });
      return getPolicy(this.db, spec.name)!;
    })();
  }

  async updatePolicy(name: string, changes: PolicyChanges): Promise<PolicyRecord> {
    return this.db.transaction(() => {
      const old = getPolicy(this.db, name);
      if (!old) throw noPolicy(this.db, name);
      const { createdAt: _c, updatedAt: _u, ...current } = old;
      const spec = checkPolicy({ ...current, ...changes, name });
      this.checkPolicyBank(spec);
      savePolicy(this.db, spec);
      addEvent(this.db, { kind: 'policy-updated', detail: `policy ${name}: ${Object.keys(changes).join(', ') || 'nothing'} changed${describePolicy(spec)}` });
      return getPolicy(this.db, name)!;
    })();
  }

  /** bank-policy: a policy backs up only to a bank this cluster has added, and not a read-only one. */
  private checkPolicyBank(p: PolicySpec): void {
    if (!p.backupTo) return;
    const bank = getBank(this.db, p.backupTo);
    if (!bank) throw new FerryError('BANK_NOT_FOUND', `policy ${p.name}: no bank named ${p.backupTo} is added to this cluster: ferry bank ls lists them, ferry bank add adds one`);
    if (bank.readOnly) {
      throw new FerryError('BANK_READ_ONLY', `policy ${p.name}: bank ${p.backupTo} was added read-only to this cluster: backups cannot go there; back up to a bank added without --read-only`);
    }
  }

  async getPolicy(name: string): Promise<PolicyRecord | undefined> {
    return getPolicy(this.db, name);
  }

  async listPolicies(): Promise<PolicyRecord[]> {
    return listPolicies(this.db);
  }

  async deletePolicy(name: string): Promise<void> {
    this.db.transaction(() => {
      if (!getPolicy(this.db, name)) throw noPolicy(this.db, name);
      const users = volumesWithPolicy(this.db, name);
      if (users.length > 0) {
        const shown = users.length > 10 ? `${users.slice(0, 10).join(', ')} and ${users.length - 10} more` : users.join(', ');
        throw new FerryError(
          'POLICY_IN_USE',
          `policy ${name} is used by volume${users.length > 1 ? 's' : ''} ${shown}: give ${users.length > 1 ? 'them' : 'it'} another policy first (ferry volume set VOLUME policy=OTHER, or policy= for none)`,
          { details: { volumes: users } },
        );
      }
      deletePolicy(this.db, name);
      addEvent(this.db, { kind: 'policy-deleted', detail: `policy ${name}` });
    })();
  }

  async setVolumeOptions(name: string, changes: Record<string, string | null>, node: string): Promise<VolumeView> {
    this.db.transaction(() => {
      const v = getVolume(this.db, name);
      if (!v || v.state === 'deleting') throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} does not exist`);
      if (v.state === 'creating') throw new FerryError('VOLUME_BUSY', `volume ${name} is being created right now; try again in a moment`);
      const options = applyOptionChanges(v.options, changes);
      if (options.policy !== undefined && options.policy !== v.options.policy && !getPolicy(this.db, options.policy)) throw noPolicy(this.db, options.policy);
      setVolumeOptions(this.db, name, options);
      const said = Object.entries(changes).map(([k, val]) => (val === null || val === '' ? `${k} removed` : `${k}=${val}`));
      addEvent(this.db, { volume: name, node, kind: 'volume-set', detail: said.join(', ') });
    })();
    return (await this.getVolume(name))!;
  }

  // --- replicate (issue 7 item 4): standbys kept by replication rounds ---

  async replicationDuties(node: string): Promise<ReplicationDuty[]> {
    return replicationDuties(this.db, node);
  }

  async standbyReplicated(r: { volume: string; node: string; snapshot: string; bytes: number; takenAt?: string }): Promise<{ oldestBase: string | null }> {
    return recordStandbyRound(this.db, r);
  }

  /** Control's replication timer: chooses standbys and records lag events (see replication-supervisor.ts). */
  superviseReplication(now = Date.now()): LagTransition[] {
    return superviseReplication(this.db, now);
  }

  // --- fence (issue 7 item 5): fenced failover ---

  private get leaseTiming(): LeaseTiming {
    return this.policy.lease ?? { leaseSeconds: 30, marginSeconds: 2 };
  }

  async failoverVolume(volume: string, to: string, opts: { force: boolean; node: string }): Promise<FailoverRecord> {
    return this.db.transaction(() => {
      const v = getVolume(this.db, volume);
      if (!v) throw new FerryError('VOLUME_NOT_FOUND', `volume ${volume} does not exist`);
      const d = decide(this.db, v, this.leaseTiming, Date.now(), { to, force: opts.force });
      if (d.act === 'refuse') throw new FerryError(d.code, d.message);
      if (d.act !== 'promote') throw new FerryError('VOLUME_BUSY', `volume ${volume} cannot fail over now: ${d.reason}`);
      return promote(this.db, v, d, opts.node);
    })();
  }

  async failoverPromoted(volume: string, node: string, generation: number): Promise<void> {
    markPromoted(this.db, volume, node, generation);
  }

  async failoverFenced(volume: string, node: string, generation: number, keptAs: string | null): Promise<void> {
    this.db.transaction(() => markFenced(this.db, volume, node, generation, keptAs))();
  }

  async failoversOf(volume: string): Promise<FailoverRecord[]> {
    return failoversOf(this.db, volume);
  }

  // --- bank-ops (issue 8): banks ---
  async addBank(b: Omit<BankRecord, 'createdAt'>, secrets: BankSecrets, node: string): Promise<BankRecord> {
    return this.db.transaction(() => {
      const added = insertBank(this.db, b, secrets);
      if (!added) throw new FerryError('BANK_EXISTS', `a bank named ${b.name} is already added (ferry bank ls); pick another name or ferry bank rm ${b.name} first`);
      // The URL only: never a secret in the event log.
      addEvent(this.db, { node, kind: 'bank-added', detail: `bank ${b.name} at ${b.url}${b.readOnly ? ' (read-only)' : ''}, id ${b.bankId}` });
      return added;
    })();
  }

  async listBanks(): Promise<BankRecord[]> {
    return listBanks(this.db);
  }

  async getBank(name: string): Promise<BankRecord | undefined> {
    return getBank(this.db, name);
  }

  async removeBank(name: string, node: string): Promise<void> {
    this.db.transaction(() => {
      const b = getBank(this.db, name);
      if (!b) throw noBank(name);
      // Forgetting a bank a policy backs up to would turn its schedule into a stream of failures.
      const users = listPolicies(this.db).filter((p) => p.backupTo === name).map((p) => p.name);
      if (users.length > 0) {
        throw new FerryError(
          'BANK_IN_USE',
          `bank ${name} is where polic${users.length > 1 ? 'ies' : 'y'} ${users.join(', ')} back${users.length > 1 ? '' : 's'} up: give ${users.length > 1 ? 'them' : 'it'} another bank first (ferry policy update POLICY --backup-to OTHER, or --backup-to none)`,
          { details: { policies: users } },
        );
      }
      if (!deleteBank(this.db, name)) throw noBank(name);
      addEvent(this.db, { node, kind: 'bank-removed', detail: `bank ${name} at ${b.url} forgotten; its data stays there` });
    })();
  }

  async bankSecrets(name: string): Promise<BankSecrets> {
    const s = bankSecrets(this.db, name);
    if (!s) throw noBank(name);
    return s;
  }

  /** Control's failover timer: promotes the volumes of down hosts whose mode is auto, once their lease is gone. */
  superviseFailover(now = Date.now()): ReturnType<typeof superviseFailover> {
    return superviseFailover(this.db, this.leaseTiming, now);
  }
}

/** The error a Mount gets while its volume is in the last steps of a move. */
export function moving(m: MoveRecord): FerryError {
  const pct = m.bytesTotal ? `: ${Math.floor((100 * m.bytesDone) / m.bytesTotal)}%` : '';
  return new FerryError('VOLUME_BUSY', `volume ${m.volume} is moving from ${m.source} to ${m.target} (${m.state}${pct}); try again shortly`);
}

/** POLICY_NOT_FOUND for `name`, naming the policies there are. */
function noPolicy(db: Db, name: string): FerryError {
  const names = listPolicies(db).map((p) => p.name);
  return new FerryError(
    'POLICY_NOT_FOUND',
    `policy ${name} does not exist: ${names.length ? `the policies are ${names.join(', ')}` : 'there are no policies yet'} (ferry policy create ${name} --schedule CRON --keep SPEC)`,
  );
}

/** A policy's settings in a few words, for its events. */
function describePolicy(p: PolicySpec): string {
  const parts = [
    p.schedule !== null ? `schedule "${p.schedule}"` : '',
    p.keep !== null ? `keep "${p.keep}"` : '',
    p.replicateTo.length ? `replicate to ${p.replicateTo.join(',')}` : p.replicas !== null ? `${p.replicas} replicas` : '',
    p.rpoSeconds !== null ? `rpo ${p.rpoSeconds}s` : '',
    p.bandwidthBytes !== null ? `bandwidth ${p.bandwidthBytes} B/s` : '',
    `failover ${p.failover}`,
    `reclaim ${p.reclaim}`,
    p.retainRemovedSeconds !== null ? `retain removed ${p.retainRemovedSeconds}s` : '',
    p.backupTo ? `back up to ${p.backupTo} "${p.backupSchedule}"` : '',
    p.backupKeep ? `backup keep "${p.backupKeep}"` : '',
    p.verifyEverySeconds ? `restore drill every ${p.verifyEverySeconds}s with "${p.verifyWith}"` : '',
  ].filter(Boolean);
  return `: ${parts.join(', ')}`;
}

/** bank-ops: BANK_NOT_FOUND for bank `name`, saying where the names are. */
function noBank(name: string): FerryError {
  return new FerryError('BANK_NOT_FOUND', `no bank named ${name} is added to this cluster: ferry bank ls lists them, ferry bank add adds one`);
}
