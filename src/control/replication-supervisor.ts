import { FerryError } from '../errors';
import { replicationOf, type ReplicationSettings } from '../volume/replication-settings';
import { replicationTimeOf } from '../volume/replication-names';
import type { ReplicationDuty, StandbyView, VolumeRecord } from '../wire/records';
import { allCopies, copiesOf, setCopy } from './copy-repo';
import type { Db } from './db';
import { addEvent } from './event-repo';
import { activeMove } from './move-repo';
import { getNode, listHostReports, listNodes } from './node-repo';
import { lagSeconds, lagTransitions, type LagInput, type LagTransition } from './replication-lag';
import { chooseStandbys, type StandbyCandidate } from './standby-chooser';
import { addStandby, allStandbys, removeStandby, setStandbyLate, setStandbySnapshot, standbysOf, standbysOnNode, type StandbyRecord } from './standby-repo';
import { getVolume, listVolumes } from './volume-repo';

/**
 * Control's side of replication (issue 7 item 4): which hosts keep standbys of which volume, what
 * each standby host must do, what a round reports, and the lag check that records events. The
 * deciding is pure (standby-chooser.ts, replication-lag.ts); these functions read and write SQLite.
 */

/** A volume's replication settings, or undefined (none asked for, or options that no longer parse). */
function settingsOf(v: VolumeRecord): ReplicationSettings | undefined {
  try {
    return replicationOf(v.options);
  } catch {
    return undefined;
  }
}

/**
 * One pass of control's replication timer: brings every ready volume's standbys to what its settings
 * ask (pure chooser), then records the standbys that became late or caught up (pure transitions).
 * One transaction; answers the transitions it recorded.
 */
export function superviseReplication(db: Db, now: number): LagTransition[] {
  return db.transaction(() => {
    const nodes = listNodes(db);
    const reports = new Map(listHostReports(db).map((r) => [r.node, r.backends.filter((b) => b.ok).map((b) => b.kind)]));
    const volumes = listVolumes(db);
    const copies = allCopies(db);
    const standbys = allStandbys(db);
    const held = new Map<string, number>();
    for (const v of volumes) held.set(v.primaryNode, (held.get(v.primaryNode) ?? 0) + 1);
    for (const cs of copies.values()) for (const c of cs) held.set(c.node, (held.get(c.node) ?? 0) + 1);
    const lagInputs: LagInput[] = [];
    for (const v of volumes) {
      const settings = v.state === 'ready' ? settingsOf(v) : undefined;
      const current = (standbys.get(v.name) ?? []).map((s) => s.node);
      const dropping = new Set((copies.get(v.name) ?? []).filter((c) => c.state === 'dropping').map((c) => c.node));
      const hosts: StandbyCandidate[] = nodes
        .filter((n) => !dropping.has(n.name))
        .map((n) => ({
          name: n.name,
          up: n.state === 'up',
          backends: reports.get(n.name),
          copies: held.get(n.name) ?? 0,
          holdsCopy: (copies.get(v.name) ?? []).some((c) => c.node === n.name && c.state === 'replica'),
        }));
      const chosen = settings ? chooseStandbys(settings, { primary: v.primaryNode, backend: v.backend, standbys: current }, hosts) : [];
      for (const node of current.filter((n) => !chosen.includes(n))) {
        removeStandby(db, v.name, node);
        // Its copy stays a replica: still the base of a quick move there.
        if (v.state === 'ready') addEvent(db, { volume: v.name, node, kind: 'standby-dropped', detail: `${node} is no longer a standby of ${v.name}` });
      }
      for (const node of chosen.filter((n) => !current.includes(n))) {
        addStandby(db, v.name, node);
        held.set(node, (held.get(node) ?? 0) + 1);
        addEvent(db, { volume: v.name, node, kind: 'standby-chosen', detail: `${node} keeps a standby of ${v.name}, RPO ${settings!.rpoSeconds} s` });
      }
      if (!settings) continue;
      for (const s of standbysOf(db, v.name)) lagInputs.push(lagInputOf(s, settings));
    }
    const changes = lagTransitions(lagInputs, now);
    for (const t of changes) {
      setStandbyLate(db, t.volume, t.node, t.late);
      addEvent(db, { volume: t.volume, node: t.node, kind: t.kind, detail: t.detail });
    }
    return changes;
  })();
}

function lagInputOf(s: StandbyRecord, settings: ReplicationSettings): LagInput {
  return {
    volume: s.volume,
    node: s.node,
    snapshotAt: s.snapshotAt === null ? null : Date.parse(s.snapshotAt),
    chosenAt: Date.parse(s.chosenAt),
    rpoSeconds: settings.rpoSeconds,
    late: s.late,
  };
}

/** The oldest of the standbys' newest snapshots (names sort by time); null while one has none. */
function oldestBase(rows: readonly StandbyRecord[]): string | null {
  if (rows.length === 0 || rows.some((s) => s.snapshot === null)) return null;
  return rows.map((s) => s.snapshot!).sort()[0];
}

/** What `node` must keep fresh: its standbys of ready volumes whose primary is up and that do not move now. */
export function replicationDuties(db: Db, node: string): ReplicationDuty[] {
  const out: ReplicationDuty[] = [];
  for (const s of standbysOnNode(db, node)) {
    const v = getVolume(db, s.volume);
    if (!v || v.state !== 'ready' || v.primaryNode === node || activeMove(db, v.name)) continue;
    const settings = settingsOf(v);
    if (!settings || getNode(db, v.primaryNode)?.state !== 'up') continue;
    out.push({
      volume: v.name,
      backend: v.backend,
      sizeBytes: v.sizeBytes,
      fs: v.fs,
      primary: v.primaryNode,
      generation: v.generation,
      rpoSeconds: settings.rpoSeconds,
      bandwidthBytes: settings.bandwidthBytes,
      oldestBase: oldestBase(standbysOf(db, v.name).filter((x) => x.node !== v.primaryNode)),
    });
  }
  return out;
}

/**
 * A standby's round ended with `snapshot`: its lag restarts from the snapshot's time, and its copy
 * is a replica (what moves and failover look for). Answers the oldest base every standby needs.
 */
export function recordStandbyRound(db: Db, r: { volume: string; node: string; snapshot: string; bytes: number }): { oldestBase: string | null } {
  const at = replicationTimeOf(r.snapshot);
  if (!at) throw new FerryError('INVALID_REQUEST', `${r.snapshot} is not a replication snapshot (_replication.<yyyymmddThhmmssZ>)`);
  return db.transaction(() => {
    const v = getVolume(db, r.volume);
    if (!v) throw new FerryError('VOLUME_NOT_FOUND', `volume ${r.volume} does not exist`);
    if (setStandbySnapshot(db, { ...r, snapshotAt: at.toISOString() }) && v.primaryNode !== r.node) {
      const copy = copiesOf(db, r.volume).find((c) => c.node === r.node);
      // A copy being dropped stays so: the remove (or policy) that asked for it wins over a late round.
      if (!copy) {
        setCopy(db, r.volume, r.node, 'replica');
        addEvent(db, { volume: r.volume, node: r.node, kind: 'standby-synced', detail: `first round: ${r.snapshot}, ${r.bytes} bytes` });
      }
    }
    return { oldestBase: oldestBase(standbysOf(db, r.volume).filter((x) => x.node !== v.primaryNode)) };
  })();
}

/** The standbys of `v` as views show them, with their lag at `now`; undefined without replication. */
export function standbyViews(v: VolumeRecord, rows: readonly StandbyRecord[] | undefined, now: number): StandbyView[] | undefined {
  const settings = settingsOf(v);
  if (!settings) return undefined;
  return (rows ?? []).map((s) => ({
    node: s.node,
    snapshot: s.snapshot,
    snapshotAt: s.snapshotAt,
    lagSeconds: Math.round(lagSeconds(lagInputOf(s, settings), now) * 10) / 10,
    late: s.late,
    rpoSeconds: settings.rpoSeconds,
    syncedAt: s.syncedAt,
    lastBytes: s.bytes,
  }));
}

export { allStandbys, standbysOf };
