import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { planReclaim, type ReclaimAction } from '../volume/reclaim';
import { removedSnapshot } from '../volume/snapshot-names';
import type { ControlClient } from '../wire/control-client';
import type { RemovedVolume, VolumeView } from '../wire/records';
import { requireClones, requireSnapshots, type Backend, type CloneCapable, type SnapshotCapable } from './backends/backend';
import type { BackendSlots } from './backend-slots';
import type { Copies } from './copies';
import type { HostState } from './host-state';
import type { KeyedLock } from './keyed-lock';
import type { UsageMeter } from './usage';

/**
 * reclaim: the data of volumes removed with `reclaim=retain` on this host (DESIGN: "Removing volumes
 * safely"). A retain makes the retained dataset (`_removed.<id>`: a clone of a last snapshot) before
 * the live dataset goes; undelete clones it back under a volume name; upkeep finishes what a crash cut
 * off and destroys what has expired. Every step is ordered so that a crash leaves the live volume or
 * its retained copy, never neither.
 */
export class Reclaimer {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
    private readonly copies: Copies,
    private readonly lock: KeyedLock,
    private readonly meter: UsageMeter,
    private readonly log: Logger,
  ) {}

  /**
   * Makes the retained copy of removed volume `r` here and then destroys the live dataset. The caller
   * holds the volume's lock. Idempotent, and safe to run again after a crash at any step:
   * 1. unmount (no lease holds it: control refused the remove otherwise);
   * 2. the last snapshot `_removed.<id>` of the live dataset (an existing one is that same snapshot:
   *    nothing writes a volume being removed);
   * 3. a clone of it as `_removed.<id>`; a leftover of a cut-off clone is destroyed and made again,
   *    because control does not count it as made yet;
   * 4. control records it `retained` (and the live copy `dropping`), in one transaction;
   * 5. only then the live dataset goes, as any removed copy (reported destroyed; the record goes).
   */
  async retainHere(r: RemovedVolume): Promise<void> {
    const log = this.log.child({ volume: r.name, op: 'retain', removal: r.id });
    const backend = this.backendOf(r);
    if (r.state === 'retaining') {
      if (await backend.exists(r.name)) {
        await backend.unmount(r.name, this.state.mountpointOf(r.name));
        this.state.markUnmounted(r.name);
        const snap = removedSnapshot(r.id);
        if (!(await backend.listSnapshots(r.name)).includes(snap)) await backend.snapshot(r.name, snap);
        if (await backend.exists(r.dataset)) await backend.destroy(r.dataset);
        await backend.clone(r.name, snap, r.dataset, this.specOf(r));
      } else if (!(await backend.exists(r.dataset))) {
        // Neither is here: the live dataset was lost before ferry could keep it. Say so; never pretend.
        throw new FerryError('VOLUME_NOT_FOUND', `cannot retain removed volume ${r.name}: its dataset is not on ${this.node} any more`);
      }
      await this.control.retainedCopyMade(r.id, this.node);
      log.info({ dataset: r.dataset, expiresAt: r.expiresAt }, 'removed volume retained');
    }
    if (await backend.exists(r.name)) await this.copies.destroyHere(r.name, r.backend);
    else await this.control.copyDestroyed(r.name, this.node);
  }

  /**
   * Brings back the newest retained removal of `name` (or removal `id`) as volume `as` (default: the
   * same name), on this host, which must hold its data. VOLUME_EXISTS when `as` is taken again.
   */
  async undelete(name: string, opts: { as?: string; id?: number } = {}): Promise<VolumeView> {
    const removed = await this.control.listRemoved();
    const r = removed.find((x) => x.name === name && (opts.id === undefined ? x.state === 'retained' : x.id === opts.id));
    if (!r) {
      throw new FerryError(
        'VOLUME_NOT_FOUND',
        `no retained data of a removed volume ${name}${opts.id !== undefined ? ` (removal ${opts.id})` : ''}: ferry volume ls --removed lists what is kept`,
      );
    }
    const as = opts.as ?? name;
    return this.lock.run(as, () =>
      this.lock.run(r.dataset, async () => {
        const log = this.log.child({ volume: as, op: 'undelete', removal: r.id });
        const backend = this.backendOf(r);
        await this.control.beginUndelete(r.id, as, this.node);
        // From here `as` is recorded `creating`: a crash leaves it to reconciliation, which destroys
        // the half-made clone and forgets it; the retained copy is untouched until the undelete is done.
        try {
          const snap = removedSnapshot(r.id);
          if (!(await backend.listSnapshots(r.dataset)).includes(snap)) await backend.snapshot(r.dataset, snap);
          await backend.clone(r.dataset, snap, as, this.specOf(r));
        } catch (err) {
          const e = toFerryError(err);
          await backend.destroy(as).catch(() => undefined);
          await this.control.abandonVolume(as, this.node, `undelete of ${name} failed: ${e.message}`);
          throw new FerryError(e.code, `cannot undelete ${name}${as !== name ? ` as ${as}` : ''}: ${e.message}; its retained data is unchanged`, { cause: err });
        }
        await this.control.finishUndelete(r.id, as, this.node);
        log.info({ from: r.dataset }, 'removed volume undeleted');
        this.meter.measure(backend, as);
        await this.destroyRetained(r).catch((err: unknown) => log.warn({ err }, 'cannot destroy the retained copy yet; upkeep retries'));
        return (await this.control.getVolume(as))!;
      }),
    );
  }

  /** Upkeep: decides (planReclaim) and acts on this host's retained data; each step logs and goes on. */
  async maintain(now = new Date()): Promise<void> {
    const removed = await this.control.listRemoved();
    for (const a of planReclaim(removed, this.node, now)) {
      const r = removed.find((x) => x.id === a.id)!;
      await this.apply(a, r).catch((err: unknown) => this.log.warn({ err, volume: r.name, removal: r.id, action: a.kind }, 'reclaim step failed; retried at the next pass'));
    }
  }

  private async apply(a: ReclaimAction, r: RemovedVolume): Promise<void> {
    switch (a.kind) {
      case 'finish-retain':
        await this.lock.run(r.name, async () => {
          // Under the lock: a remove asked here may have finished it meanwhile.
          const now = (await this.control.listRemoved()).find((x) => x.id === r.id);
          if (now?.state === 'retaining') await this.retainHere(now);
        });
        return;
      case 'expire':
        await this.lock.run(r.dataset, async () => {
          if (!(await this.control.expireRemoved(r.id, this.node))) return;
          this.log.info({ volume: r.name, removal: r.id, reason: a.reason }, 'retained data expired');
          await this.destroyRetained(r);
        });
        return;
      case 'destroy':
        await this.lock.run(r.dataset, () => this.destroyRetained(r));
        return;
    }
  }

  /** Destroys the retained dataset of a `dropping` removal and tells control, which forgets it. */
  private async destroyRetained(r: RemovedVolume): Promise<void> {
    await this.copies.destroyDataset(r.dataset, r.backend);
    await this.control.forgetRemoved(r.id, this.node);
    this.log.info({ volume: r.name, removal: r.id, dataset: r.dataset }, 'retained data destroyed');
  }

  /** The removal's backend, which must snapshot and clone (every backend ferry has does). */
  private backendOf(r: RemovedVolume): Backend & SnapshotCapable & CloneCapable {
    const b = this.backends.backendFor(r.backend);
    requireSnapshots(b, r.name, 'retain the data of');
    requireClones(b, r.name, 'retain the data of');
    return b as Backend & SnapshotCapable & CloneCapable;
  }

  private specOf(r: RemovedVolume): { sizeBytes?: number; fs?: string } {
    return { ...(r.sizeBytes !== null ? { sizeBytes: r.sizeBytes } : {}), ...(r.fs !== null ? { fs: r.fs } : {}) };
  }
}
