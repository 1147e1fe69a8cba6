import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import type { FailoverDuty } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import { requireSnapshots } from './backends/backend';
import type { HostState } from './host-state';
import type { KeyedLock } from './keyed-lock';

/** The user-visible name of a fenced host's late writes (issue 7: never deleted by ferry). */
export function lostSnapshotName(lostGeneration: number, node: string): string {
  return `lost-gen${lostGeneration}-${node}`;
}

/**
 * fence (issue 7 item 5): what a host does after a failover, as its heartbeat answer asks. The new
 * primary makes the failover's snapshot live (as a move's target promotes its last increment). The
 * lost host, back again, never mounts its copy read-write (control refuses its leases: generation):
 * it keeps its live data, with whatever it wrote after that snapshot, as snapshot
 * `lost-gen<N>-<host>` (recorded, origin `fenced`), rolls its copy back to the failover's snapshot
 * where it has it, and becomes a standby that replication resyncs from the newest common snapshot.
 */
export class FailoverDuties {
  private readonly running = new Set<string>();

  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
    private readonly lock: KeyedLock,
    private readonly log: Logger,
  ) {}

  /** Starts each duty not already running; errors are logged and the next heartbeat asks again. */
  take(duties: readonly FailoverDuty[]): void {
    for (const d of duties) {
      const key = `${d.role}:${d.volume}:${d.generation}`;
      if (this.running.has(key)) continue;
      this.running.add(key);
      void (d.role === 'promote' ? this.promote(d) : this.fence(d))
        .catch((err: unknown) => this.log.error({ err, volume: d.volume, role: d.role, generation: d.generation }, 'failover step failed; retried at the next heartbeat'))
        .finally(() => this.running.delete(key));
    }
  }

  private async promote(d: FailoverDuty): Promise<void> {
    await this.lock.run(d.volume, async () => {
      const backend = requireSnapshots(this.backends.backendFor(d.backend), d.volume, 'fail over');
      // A standby's dataset is never mounted; unmount one left from a time it was primary here
      // (idempotent: the kernel may hold a mount this process never made, from before a restart).
      await this.backends.backendFor(d.backend).unmount(d.volume, this.state.mountpointOf(d.volume));
      this.state.markUnmounted(d.volume);
      await backend.rollback(d.volume, d.snapshot, { sizeBytes: d.sizeBytes ?? undefined, fs: d.fs ?? undefined });
      this.state.found(d.volume);
      await this.control.failoverPromoted(d.volume, this.node, d.generation);
      this.log.warn({ volume: d.volume, snapshot: d.snapshot, generation: d.generation }, 'failed over here: the snapshot is live');
    });
  }

  private async fence(d: FailoverDuty): Promise<void> {
    await this.lock.run(d.volume, async () => {
      const plain = this.backends.backendFor(d.backend);
      const backend = requireSnapshots(plain, d.volume, 'fence');
      // Control holds no lease of this host any more; a mount left from before (also one the kernel
      // kept across an agent restart) is unmounted: idempotent, VOLUME_BUSY while in use (retried).
      await plain.unmount(d.volume, this.state.mountpointOf(d.volume));
      this.state.markUnmounted(d.volume);
      const snaps = (await plain.exists(d.volume)) ? await backend.listSnapshots(d.volume) : null;
      let keptAs: string | null = null;
      if (snaps !== null) {
        keptAs = lostSnapshotName(d.generation - 1, this.node);
        const createdAt = new Date().toISOString();
        if (!snaps.includes(keptAs)) await backend.snapshot(d.volume, keptAs);
        await this.control.recordSnapshot({ volume: d.volume, name: keptAs, node: this.node, origin: 'fenced', createdAt });
        // The copy is the failover's snapshot again, the base replication resyncs from.
        if (snaps.includes(d.snapshot)) await backend.rollback(d.volume, d.snapshot, { sizeBytes: d.sizeBytes ?? undefined, fs: d.fs ?? undefined });
      }
      await this.control.failoverFenced(d.volume, this.node, d.generation, keptAs);
      this.log.warn({ volume: d.volume, keptAs, generation: d.generation }, 'fenced: this host lost the volume; its late writes are kept as a snapshot');
    });
  }
}
