import { FerryError } from '../errors';
import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import type { BackendSlots } from './backend-slots';
import type { HostState } from './host-state';
import type { KeyedLock } from './keyed-lock';

/**
 * The removal side of this host's copies: destroys a dataset here when control asks for it (a
 * removed volume, a replica not kept) and tells control, which forgets the volume with its last copy.
 */
export class Copies {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
    private readonly lock: KeyedLock,
    private readonly log: Logger,
  ) {}

  /**
   * Destroys this host's copy of `volume` when control asks for it (a removed volume, a replica not
   * kept): heartbeat answers, upkeep, reconciliation and a peer's `drop` request call this. Checks
   * with control first, under the volume's lock, so a copy that is still wanted is never touched.
   * True when it destroyed one.
   */
  async destroyCopy(volume: string): Promise<boolean> {
    return this.lock.run(volume, async () => {
      const v = await this.control.getVolume(volume);
      if (!v || !v.dropping.includes(this.node)) return false;
      if (v.state !== 'deleting' && v.primaryNode === this.node) {
        throw new FerryError('INTERNAL', `control asks ${this.node} to drop its copy of ${volume}, but it is the primary; kept`);
      }
      await this.destroyHere(volume, v.backend);
      this.log.info({ volume, op: 'destroy-copy', reason: v.state === 'deleting' ? 'removed' : 'replica not kept' }, 'copy destroyed');
      return true;
    });
  }

  /** Destroys the dataset here and tells control. The caller holds the volume's lock. */
  async destroyHere(name: string, kind: string): Promise<void> {
    await this.destroyDataset(name, kind);
    await this.control.copyDestroyed(name, this.node);
  }

  /** Unmounts and destroys the dataset here, telling nobody (reconciliation's rollback of a cut-off Create). */
  async destroyDataset(name: string, kind: string): Promise<void> {
    const backend = this.backends.backendFor(kind);
    await backend.unmount(name, this.state.mountpointOf(name));
    this.state.markUnmounted(name);
    await backend.destroy(name);
  }
}
