import { FerryError } from '../errors';
import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import type { VolumeView } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import type { Containers } from './containers';
import type { HostState } from './host-state';
import type { KeyedLock } from './keyed-lock';
import type { UsageMeter } from './usage';
import { volumeNotFound } from './volume-errors';
import { isControlUnreachable, type ControlAway } from './control-away';

/** Cluster mode: how a Mount here of a volume primary elsewhere pulls it (the Mover's target side). */
export interface MountPuller {
  pullForMount(volume: string, waitMs: number): Promise<void>;
}

/**
 * Docker's Mount, Unmount and Path: mounts a volume's filesystem at its mountpoint, counts Docker's
 * Mount IDs as leases in control (fencing by generation), and unmounts when the last lease goes.
 */
export class Mounts {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
    private readonly lock: KeyedLock,
    private readonly meter: UsageMeter,
    private readonly containers: Containers,
    private readonly log: Logger,
    /** Absent on a single host: a volume primary elsewhere cannot come here. */
    private readonly pull?: { puller: MountPuller; waitMs: number },
    /** fence, cluster mode: mounting and unmounting while control is unreachable, within the lease. */
    private readonly away?: ControlAway,
  ) {}

  /**
   * Mounts for Docker Mount ID `mountId`; returns the mountpoint. Counted per ID. In cluster mode,
   * while control is unreachable, a volume whose primary this host is mounts locally until the
   * host's lease runs out (LEASE_EXPIRED after it); control hears of the Mount ID when it is back.
   */
  async mount(name: string, mountId: string): Promise<string> {
    return this.lock.run(name, async () => {
      try {
        const target = await this.mountOnline(name, mountId);
        this.away?.granted(name, mountId);
        return target;
      } catch (err) {
        if (!this.away || !isControlUnreachable(err)) throw err;
        return this.mountOffline(this.away, name, mountId);
      }
    });
  }

  /** Control unreachable: mount a volume this host's lease covers, and keep the Mount ID for control. */
  private async mountOffline(away: ControlAway, name: string, mountId: string): Promise<string> {
    const v = away.grantOffline(name);
    if (this.state.isMissing(name)) {
      throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} is recorded but its ${v.backend} dataset is missing on ${this.node}; see ferry status`);
    }
    const target = this.state.mountpointOf(name);
    if (this.state.mountedAt(name) === undefined) {
      await this.backends.backendFor(v.backend).mount(name, target);
      this.state.markMounted(name);
    }
    away.granted(name, mountId, { mountpoint: target, generation: v.generation });
    this.log.warn({ volume: name, op: 'mount', mountId, generation: v.generation }, 'mounted while control is unreachable, under this host\'s lease');
    return target;
  }

  private async mountOnline(name: string, mountId: string): Promise<string> {
    const v = await this.usable(name);
    const target = this.state.mountpointOf(name);
    const backend = this.backends.backendFor(v.backend);
    const fresh = this.state.mountedAt(name) === undefined;
    if (fresh) {
      await backend.mount(name, target);
      this.state.markMounted(name);
    }
    // Mount first, lease second: a crash between them leaves a mount without lease, which
    // reconciliation unmounts; the reverse would leave a lease nobody ever releases. Control grants
    // the lease only to the primary at the current generation (fencing).
    try {
      await this.control.acquireLease({ volume: name, mountId, node: this.node, mountpoint: target, generation: v.generation });
    } catch (err) {
      if (fresh) {
        await backend.unmount(name, target).catch((e: unknown) => this.log.warn({ err: e, volume: name }, 'cannot unmount after a refused lease'));
        this.state.markUnmounted(name);
      }
      throw err;
    }
    // dockerd starts the container once Mount has answered: look it up a little later.
    if (this.containers.available) setTimeout(() => void this.containers.annotate(name), 2000).unref();
    return target;
  }

  /** Releases Docker Mount ID `mountId`; unmounts the filesystem when no lease is left here. */
  async unmount(name: string, mountId: string): Promise<void> {
    await this.lock.run(name, async () => {
      try {
        await this.unmountOnline(name, mountId);
        this.away?.released(name, mountId, false);
      } catch (err) {
        if (!this.away || !isControlUnreachable(err)) throw err;
        // Control unreachable: count here, unmount with the last Mount ID, tell control later.
        const left = this.away.released(name, mountId, true);
        this.log.warn({ volume: name, op: 'unmount', mountId, left }, 'unmount while control is unreachable');
        const known = this.away.known(name);
        if (left === 0 && known && this.state.mountedAt(name) !== undefined) await this.unmountHere(name, known.backend);
      }
    });
  }

  /** fence: a Mount granted here while control was away that control has not heard of yet (upkeep keeps it mounted). */
  awaitingControl(name: string): boolean {
    return this.away?.awaitingControl(name) ?? false;
  }

  private async unmountOnline(name: string, mountId: string): Promise<void> {
    if (!(await this.control.releaseLease(name, mountId))) {
      this.log.warn({ volume: name, op: 'unmount', mountId }, 'unmount for a mount id that holds no lease');
    }
    const left = (await this.control.leasesOf(name)).filter((l) => l.node === this.node);
    if (left.length > 0) return;
    const v = await this.control.getVolume(name);
    if (!v) return;
    await this.unmountHere(name, v.backend);
    // What the last container left, measured now rather than at the next pass (beside the Unmount).
    this.meter.measure(this.backends.backendFor(v.backend), name);
  }

  /** Unmounts the filesystem of `name` here (the caller holds the volume's lock and knows no lease holds it). */
  async unmountHere(name: string, kind: string): Promise<void> {
    await this.backends.backendFor(kind).unmount(name, this.state.mountpointOf(name));
    this.state.markUnmounted(name);
  }

  /** The mountpoint while mounted, else the empty string (Docker's Path). */
  path(name: string): string {
    return this.state.mountedAt(name) ?? '';
  }

  /** The volume, if this host may mount it now: pulls it here first in cluster mode. */
  private async usable(name: string): Promise<VolumeView> {
    let v = await this.control.getVolume(name);
    if (!v) throw volumeNotFound(name);
    if (v.primaryNode !== this.node && this.pull && v.state === 'ready') {
      await this.pull.puller.pullForMount(name, this.pull.waitMs);
      v = await this.control.getVolume(name);
      if (!v) throw volumeNotFound(name);
    }
    if (v.state !== 'ready') {
      throw new FerryError('VOLUME_BUSY', `volume ${name} is ${v.state === 'creating' ? 'being created' : 'being removed'}; try again shortly`);
    }
    // bank-ops: a restore fills the volume before anything may use it.
    if (v.options.restoring) {
      throw new FerryError(
        'VOLUME_BUSY',
        `volume ${name} is being restored from ${v.options.restoring}: wait for ferry backup restore to finish; if that restore was cut off, remove ${name} and restore again`,
      );
    }
    if (v.primaryNode !== this.node) {
      throw new FerryError(
        'NOT_PRIMARY',
        this.pull
          ? `volume ${name} moved to host ${v.primaryNode} meanwhile; retry the mount`
          : `volume ${name} lives on host ${v.primaryNode}, not ${this.node}: moving volumes between hosts needs ferry control (cluster mode)`,
      );
    }
    if (this.state.isMissing(name)) {
      throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} is recorded but its ${v.backend} dataset is missing on ${this.node}; see ferry status`);
    }
    return v;
  }
}
