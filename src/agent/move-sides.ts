import { FerryError } from '../errors';
import type { ControlClient } from '../wire/control-client';
import type { ContainerSpec } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import { requireSnapshots, type MovableBackend } from './backends/backend';
import type { Containers } from './containers';
import type { Copies } from './copies';
import type { HostState } from './host-state';
import type { KeyedLock } from './keyed-lock';
import type { MemberAgent } from './membership';
import type { Mounts } from './mounts';
import type { TargetSide } from './mover';
import type { SourceSide } from './transfer-handler';
import { volumeNotFound } from './volume-errors';

/**
 * This host as the source of a move: what the transfer service and membership ask of it (hand out
 * the dataset under the volume's lock, release it for the final step, stop its containers, drop it).
 */
export class MoveSource implements SourceSide, MemberAgent {
  constructor(
    readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly lock: KeyedLock,
    private readonly mounts: Mounts,
    private readonly copies: Copies,
    private readonly containers: Containers,
  ) {}

  backendOf(volume: string): Promise<MovableBackend> {
    return this.backends.movableBackendOf(volume);
  }

  withVolumeLock<T>(volume: string, work: () => Promise<T>): Promise<T> {
    return this.lock.run(volume, work);
  }

  /** For the final step of a move away from here: no lease may be held here; then unmount. */
  async releaseForMove(volume: string): Promise<void> {
    const held = (await this.control.leasesOf(volume)).filter((l) => l.node === this.node);
    if (held.length > 0) {
      throw new FerryError('VOLUME_IN_USE', `volume ${volume} is still mounted on ${this.node} by ${held.length} container mount(s)`);
    }
    const v = await this.control.getVolume(volume);
    if (!v) throw volumeNotFound(volume);
    await this.mounts.unmountHere(volume, v.backend);
  }

  destroyCopy(volume: string): Promise<boolean> {
    return this.copies.destroyCopy(volume);
  }

  stopContainersFor(volume: string): Promise<ContainerSpec[]> {
    return this.containers.stopContainersFor(volume);
  }
}

/** This host as the target of a move: what the Mover asks of it. */
export class MoveTarget implements TargetSide {
  constructor(
    readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
    private readonly containers: Containers,
  ) {}

  backendOf(volume: string): Promise<MovableBackend> {
    return this.backends.movableBackendOf(volume);
  }

  /**
   * The live dataset becomes snapshot `snap` (the target's last step of a move). No lock: a Mount
   * here that waits for this move holds the volume's lock, and nothing mounts a volume whose move
   * has not finished (control grants no lease), so nothing else touches the dataset.
   */
  async promote(volume: string, snap: string): Promise<void> {
    const v = await this.control.getVolume(volume);
    if (!v) throw volumeNotFound(volume);
    await requireSnapshots(this.backends.backendFor(v.backend), volume, 'promote').rollback(volume, snap, { sizeBytes: v.sizeBytes ?? undefined, fs: v.fs ?? undefined });
    this.state.found(volume);
  }

  startContainers(specs: ContainerSpec[]): Promise<void> {
    return this.containers.startContainers(specs);
  }
}
