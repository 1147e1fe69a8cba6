import { FerryError, isFerryError } from '../errors';
import type { Logger } from '../log';
import { newSnapshotName, parseSnapshotName, validateStoredSnapshotName } from '../volume/snapshot-names';
import type { ControlClient } from '../wire/control-client';
import type { SnapshotOrigin, SnapshotRecord, VolumeView } from '../wire/records';
import { quiesceModeOf, type QuiesceMode } from '../volume/options';
import type { QuiesceReport } from './quiesce-plan';
import type { BackendSlots } from './backend-slots';
import { hasSnapshotSizes, requireSnapshots } from './backends/backend';
import type { KeyedLock } from './keyed-lock';
import { volumeNotFound } from './volume-errors';
import { inUse } from '../wire/in-use';
import { isActiveMove } from '../control/move-states';

/** How a snapshot is made consistent: `none` (crash-consistent), `pause` (containers frozen for the instant). */
export type { QuiesceMode } from '../volume/options';

/**
 * What runs around the instant of a snapshot (owner: quiesce): pauses the containers using the
 * volume, runs their pre/post hooks, and always undoes what it did, whatever `work` does.
 */
export interface Quiescer {
  around<T>(volume: string, mode: QuiesceMode, work: () => Promise<T>): Promise<T>;
  /** quiesce: `work` with the containers using any of `volumes` quiesced together (a group's one instant). */
  aroundAll<T>(volumes: readonly string[], mode: QuiesceMode, work: () => Promise<T>): Promise<{ value: T; report: QuiesceReport }>;
  /** quiesce: the named volumes that Compose project `project`'s running containers use on this host. */
  projectVolumes(project: string): Promise<string[]>;
}

/** No quiescing: the snapshot is crash-consistent (`pause` is refused until a Quiescer that can is given). */
export const NO_QUIESCE: Quiescer = {
  around(volume, mode, work) {
    if (mode !== 'none') throw new FerryError('INVALID_OPTION', `quiesce=${mode} is not available on this host; snapshot ${volume} without it`);
    return work();
  },
  async aroundAll(volumes, mode, work) {
    if (mode !== 'none') throw new FerryError('INVALID_OPTION', `quiesce=${mode} is not available on this host; snapshot ${volumes.join(', ')} without it`);
    return { value: await work(), report: { mode, containers: [], paused: [], pausedMs: null, hooks: [], warnings: [] } };
  },
  async projectVolumes(project) {
    throw new FerryError('BACKEND_UNAVAILABLE', `this host cannot look up Compose project ${project}: name the volumes of the group`);
  },
};

/** quiesce: a group's name (`--group NAME`; a Compose project's name when no volume is named). */
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** quiesce: what `takeGroup` answers. */
export interface GroupSnapshot {
  group: string;
  /** One per volume, all with the same stored name and `group`, in volume name order. */
  snapshots: SnapshotRecord[];
  /** How long the containers stayed paused (ms); null when none was. */
  pausedMs: number | null;
  /** Post hooks that failed: the snapshots stand. */
  warnings: string[];
}

/** What a snapshot is taken with (common.md's shared interface). */
export interface TakeOptions {
  /** The stored name; default: the UTC time (manual), `_schedule.<policy>.<time>`, `_replication.<time>`. */
  name?: string;
  origin: SnapshotOrigin;
  policy?: string;
  group?: string;
  quiesce?: QuiesceMode;
}

/**
 * Snapshots of this host's volumes (agent part `snapshots`): takes them on the volume's primary and
 * records them in control's registry, removes this host's copy and tells control. Every other part
 * (CLI routes, schedules, replication, fencing, reclaim) takes and removes snapshots through here.
 */
export class Snapshots {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly lock: KeyedLock,
    private readonly log: Logger,
    private readonly quiesce: Quiescer = NO_QUIESCE,
  ) {}

  /**
   * Takes a snapshot of `volume`, which must be primary here (NOT_PRIMARY names the host to run it
   * on), and records it. VOLUME_EXISTS when the name is taken, INVALID_REQUEST when the backend has
   * no snapshots, INVALID_NAME for a name of another owner. On a failure to record it, the snapshot
   * is deleted again: nothing is left that the registry does not know.
   */
  async take(volume: string, o: TakeOptions): Promise<SnapshotRecord> {
    const at = new Date();
    const name = newSnapshotName(o.origin, o, at);
    return this.lock.run(volume, async () => {
      const v = await this.primaryHere(volume, 'snapshot');
      const backend = requireSnapshots(this.backends.backendFor(v.backend), volume, 'snapshot');
      const started = Date.now();
      // No listing first (a command per take): the backend refuses a name it holds (SnapshotCapable).
      await this.quiesce.around(volume, quiesceModeOf([v.options], o.quiesce), () => backend.snapshot(volume, name)).catch((err: unknown) => {
        if (!isFerryError(err, 'VOLUME_EXISTS')) throw err;
        throw new FerryError('VOLUME_EXISTS', `volume ${volume} already has a snapshot named ${name}; pick another name or remove it first`, { cause: err });
      });
      const record: SnapshotRecord = {
        volume,
        name,
        origin: o.origin,
        createdAt: at.toISOString(),
        // A fresh snapshot shares all its data; its own size grows later and is read when listed (withSizes).
        sizeBytes: null,
        hosts: [this.node],
        group: o.group ?? null,
        policy: o.policy ?? null,
      };
      try {
        await this.control.recordSnapshot({ ...record, node: this.node });
      } catch (err) {
        await backend.deleteSnapshot(volume, name).catch((e: unknown) => this.log.warn({ err: e, volume, snapshot: name }, 'cannot delete an unrecorded snapshot'));
        throw err;
      }
      this.log.info({ volume, op: 'snapshot', snapshot: name, origin: o.origin, ms: Date.now() - started }, 'snapshot taken');
      return record;
    });
  }

  /**
   * quiesce (issue 7 item 2): snapshots several volumes of this host at one instant, the containers
   * using any of them hooked and (mode pause) frozen together, and records each with `group`. No
   * volumes: those of the running containers labelled `com.docker.compose.project=GROUP` that ferry
   * knows. Every volume must be primary here (NOT_PRIMARY before anything is taken); all or none:
   * when one snapshot or record fails, those already taken are deleted again.
   */
  async takeGroup(group: string, volumes: readonly string[] | undefined, o: Omit<TakeOptions, 'group'>): Promise<GroupSnapshot> {
    if (!GROUP_NAME.test(group)) {
      throw new FerryError('INVALID_NAME', `invalid group name ${JSON.stringify(group)}: use letters, digits, _ . - (a Compose project name), starting with a letter or digit`);
    }
    const names = volumes?.length ? [...new Set(volumes)].sort() : await this.projectFerryVolumes(group);
    const at = new Date();
    const name = newSnapshotName(o.origin, o, at);
    // One lock per volume, always taken in name order, so two groups sharing volumes cannot deadlock.
    const locked = names.reduceRight<() => Promise<GroupSnapshot>>(
      (inner, volume) => () => this.lock.run(volume, inner),
      async () => {
        const views = await Promise.all(names.map((n) => this.primaryHere(n, 'snapshot')));
        const backends = views.map((v) => requireSnapshots(this.backends.backendFor(v.backend), v.name, 'snapshot'));
        for (const [i, b] of backends.entries()) {
          if ((await b.listSnapshots(names[i])).includes(name)) {
            throw new FerryError('VOLUME_EXISTS', `volume ${names[i]} already has a snapshot named ${name}; pick another name or remove it first`);
          }
        }
        const taken: number[] = [];
        const undo = async (): Promise<void> => {
          for (const i of taken) {
            await backends[i].deleteSnapshot(names[i], name).catch((e: unknown) => this.log.warn({ err: e, volume: names[i], snapshot: name }, 'cannot delete a snapshot of a failed group'));
            await this.control.forgetSnapshot(names[i], name, this.node).catch(() => undefined);
          }
        };
        const { report } = await this.quiesce.aroundAll(names, quiesceModeOf(views.map((v) => v.options), o.quiesce), async () => {
          // All at once: the instant is as short as the slowest backend's snapshot.
          const results = await Promise.allSettled(backends.map((b, i) => b.snapshot(names[i], name)));
          results.forEach((r, i) => r.status === 'fulfilled' && taken.push(i));
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed) {
            await undo();
            throw failed.reason;
          }
        });
        const snapshots = names.map<SnapshotRecord>((volume) => ({
          volume,
          name,
          origin: o.origin,
          createdAt: at.toISOString(),
          sizeBytes: null,
          hosts: [this.node],
          group,
          policy: o.policy ?? null,
        }));
        try {
          for (const s of snapshots) await this.control.recordSnapshot({ ...s, node: this.node });
        } catch (err) {
          await undo();
          throw err;
        }
        this.log.info({ group, volumes: names, op: 'snapshot-group', snapshot: name, pausedMs: report.pausedMs }, 'group snapshot taken');
        return { group, snapshots, pausedMs: report.pausedMs, warnings: report.warnings };
      },
    );
    return locked();
  }

  /** quiesce: the volumes of Compose project `project` on this host that ferry knows (others are Docker's own). */
  private async projectFerryVolumes(project: string): Promise<string[]> {
    const used = await this.quiesce.projectVolumes(project);
    const known = (await Promise.all(used.map(async (n) => ((await this.control.getVolume(n))?.state === 'ready' ? n : undefined)))).filter((n): n is string => !!n);
    if (known.length === 0) {
      throw new FerryError('VOLUME_NOT_FOUND', `the containers of Compose project ${project} on host ${this.node} use no ferry volume (${used.join(', ')}): name the volumes of the group`);
    }
    return known;
  }

  /**
   * Deletes this host's copy of snapshot `name` of `volume` and tells control (idempotent: a copy
   * already gone is forgotten all the same). A move's snapshots are refused: only moves delete them.
   * Which owner may remove what is the caller's rule (users: only their own).
   */
  async remove(volume: string, name: string): Promise<void> {
    validateStoredSnapshotName(name);
    if (parseSnapshotName(name)?.owner === 'move') {
      throw new FerryError('INVALID_REQUEST', `snapshot ${name} of ${volume} belongs to a move; ferry deletes it when that move no longer needs it`);
    }
    await this.lock.run(volume, async () => {
      const v = await this.control.getVolume(volume);
      if (!v) throw volumeNotFound(volume);
      const backend = requireSnapshots(this.backends.backendFor(v.backend), volume, 'remove a snapshot of');
      await backend.deleteSnapshot(volume, name);
      await this.control.forgetSnapshot(volume, name, this.node);
      this.log.info({ volume, op: 'snapshot-remove', snapshot: name }, 'snapshot removed');
    });
  }

  /**
   * Makes `volume`'s live data exactly that of its snapshot `name`, on its primary (this host), with
   * the volume's lock held so that no Mount comes between. Refused while any host mounts it
   * (VOLUME_IN_USE naming hosts and containers) or while it moves (VOLUME_BUSY); SNAPSHOT_NOT_FOUND
   * when this host does not hold that snapshot. Every snapshot stays, older and newer.
   */
  async rollback(volume: string, name: string): Promise<void> {
    validateStoredSnapshotName(name);
    await this.lock.run(volume, async () => {
      const v = await this.primaryHere(volume, 'be rolled back');
      const backend = requireSnapshots(this.backends.backendFor(v.backend), volume, 'roll back');
      const leases = await this.control.leasesOf(volume);
      if (leases.length > 0) throw inUse(volume, leases);
      const m = await this.control.moveOf(volume);
      if (m && isActiveMove(m.state)) {
        throw new FerryError('VOLUME_BUSY', `volume ${volume} is moving from ${m.source} to ${m.target} (${m.state}); roll it back once the move has ended`);
      }
      if (!(await backend.listSnapshots(volume)).includes(name)) {
        const known = (await this.control.snapshotsOf(volume)).find((s) => s.name === name);
        throw new FerryError(
          'SNAPSHOT_NOT_FOUND',
          known
            ? `snapshot ${name} of ${volume} is held on ${known.hosts.join(', ')}, not on ${this.node} where ${volume} lives; it cannot be rolled back to here`
            : `volume ${volume} has no snapshot ${name}: see ferry snapshot ls ${volume}`,
        );
      }
      const started = Date.now();
      await backend.rollback(volume, name, { sizeBytes: v.sizeBytes ?? undefined, fs: v.fs ?? undefined });
      this.log.info({ volume, op: 'rollback', snapshot: name, ms: Date.now() - started }, 'volume rolled back');
    });
  }

  /**
   * The registry's records of `volume`'s snapshots, each held here with its size as the backend tells
   * it now (a snapshot's own bytes grow as the live data moves away from it); others as recorded.
   */
  async withSizes(volume: string, records: SnapshotRecord[]): Promise<SnapshotRecord[]> {
    const v = await this.control.getVolume(volume);
    if (!v) return records;
    let backend;
    try {
      backend = this.backends.backendFor(v.backend);
    } catch {
      return records;
    }
    if (!hasSnapshotSizes(backend)) return records;
    const sized = backend;
    return Promise.all(records.map(async (r) => (r.hosts.includes(this.node) ? { ...r, sizeBytes: (await sized.snapshotSize(volume, r.name)) ?? r.sizeBytes } : r)));
  }

  /** The volume's record, checked ready and primary on this host (NOT_PRIMARY says where to run `what`). */
  private async primaryHere(volume: string, what: string): Promise<VolumeView> {
    const v = await this.control.getVolume(volume);
    if (!v || v.state === 'creating') throw volumeNotFound(volume);
    if (v.state === 'deleting') throw new FerryError('VOLUME_BUSY', `volume ${volume} is being removed; it cannot ${what}`);
    if (v.primaryNode !== this.node) {
      throw new FerryError('NOT_PRIMARY', `volume ${volume} lives on ${v.primaryNode}, not ${this.node}: run it on ${v.primaryNode}`);
    }
    return v;
  }
}
