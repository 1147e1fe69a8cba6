import { FerryError } from '../errors';
import type { Logger } from '../log';
import { newSnapshotName, parseSnapshotName, validateStoredSnapshotName } from '../volume/snapshot-names';
import type { ControlClient } from '../wire/control-client';
import type { SnapshotOrigin, SnapshotRecord, VolumeView } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import { requireSnapshots } from './backends/backend';
import type { KeyedLock } from './keyed-lock';
import { volumeNotFound } from './volume-errors';

/** How a snapshot is made consistent: `none` (crash-consistent), `pause` (containers frozen for the instant). */
export type QuiesceMode = 'none' | 'pause';

/**
 * What runs around the instant of a snapshot (owner: quiesce): pauses the containers using the
 * volume, runs their pre/post hooks, and always undoes what it did, whatever `work` does.
 */
export interface Quiescer {
  around<T>(volume: string, mode: QuiesceMode, work: () => Promise<T>): Promise<T>;
}

/** No quiescing: the snapshot is crash-consistent (`pause` is refused until a Quiescer that can is given). */
export const NO_QUIESCE: Quiescer = {
  around(volume, mode, work) {
    if (mode !== 'none') throw new FerryError('INVALID_OPTION', `quiesce=${mode} is not available on this host; snapshot ${volume} without it`);
    return work();
  },
};

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
      if ((await backend.listSnapshots(volume)).includes(name)) {
        throw new FerryError('VOLUME_EXISTS', `volume ${volume} already has a snapshot named ${name}; pick another name or remove it first`);
      }
      const started = Date.now();
      await this.quiesce.around(volume, o.quiesce ?? 'none', () => backend.snapshot(volume, name));
      const record: SnapshotRecord = {
        volume,
        name,
        origin: o.origin,
        createdAt: at.toISOString(),
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
