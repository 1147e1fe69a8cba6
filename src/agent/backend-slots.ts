import { FerryError } from '../errors';
import type { ControlClient } from '../wire/control-client';
import type { BackendSlot } from './backends';
import { requireStreams, type Backend, type MovableBackend } from './backends/backend';
import type { BackendKind } from './backends/registry';
import { volumeNotFound } from './volume-errors';

/**
 * This host's backends as they came up at start, and the one way to get a usable one: by kind, or
 * by the volume whose dataset it holds. Filled once the backends are up (the plugin socket listens
 * before, and requests wait for startup).
 */
export class BackendSlots {
  private readonly slots = new Map<BackendKind, BackendSlot>();

  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
  ) {}

  set(kind: BackendKind, slot: BackendSlot): void {
    this.slots.set(kind, slot);
  }

  /** Every backend enabled here, up or not. */
  entries(): [BackendKind, BackendSlot][] {
    return [...this.slots];
  }

  /** The slots as reconciliation reads them. */
  asMap(): ReadonlyMap<BackendKind, BackendSlot> {
    return this.slots;
  }

  /** The backend of that kind; BACKEND_UNAVAILABLE when it is not enabled here or did not come up. */
  backendFor(kind: string): Backend {
    const slot = this.slots.get(kind as BackendKind);
    if (!slot) {
      throw new FerryError('BACKEND_UNAVAILABLE', `backend ${kind} is not enabled on host ${this.node}`);
    }
    if (slot.error) {
      throw new FerryError('BACKEND_UNAVAILABLE', `backend ${kind} is unavailable on host ${this.node}: ${slot.error}`);
    }
    return slot.backend;
  }

  /** The backend that holds `volume` (as control records it); VOLUME_NOT_FOUND for a volume control does not know. */
  async backendOf(volume: string): Promise<Backend> {
    const v = await this.control.getVolume(volume);
    if (!v) throw volumeNotFound(volume);
    return this.backendFor(v.backend);
  }

  /** The backend of a volume that moves (either side): only one with streams can; INVALID_REQUEST names it otherwise. */
  async movableBackendOf(volume: string): Promise<MovableBackend> {
    return requireStreams(await this.backendOf(volume), volume, 'move');
  }
}
