import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import type { BackendSlots } from './backend-slots';
import type { Containers } from './containers';
import type { Copies } from './copies';
import type { HostState } from './host-state';
import type { KeyedLock } from './keyed-lock';
import type { Mounts } from './mounts';
import type { Reclaimer } from './reclaimer';
import { recordUsageOf } from './usage';

/**
 * Periodic upkeep of this host: measures used bytes, names the containers behind leases, unmounts
 * filesystems that no lease holds (an Unmount that found the filesystem busy), and retries copies
 * here that control asks to destroy (a remove whose destroy failed; in a cluster the heartbeat answer
 * also carries them), and keeps the data of removed volumes (reclaim: finishes retains, destroys what
 * expired). Each step logs and goes on.
 */
export class Upkeep {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
    private readonly lock: KeyedLock,
    private readonly mounts: Mounts,
    private readonly copies: Copies,
    private readonly containers: Containers,
    private readonly log: Logger,
    private readonly reclaimer: Reclaimer,
  ) {}

  async maintain(): Promise<void> {
    for (const v of await this.control.listVolumes()) {
      if (!v.dropping.includes(this.node)) continue;
      await this.copies.destroyCopy(v.name).catch((err: unknown) => this.log.warn({ err, volume: v.name }, 'still cannot destroy a removed copy'));
    }
    await this.reclaimer.maintain().catch((err: unknown) => this.log.warn({ err }, 'cannot keep up retained data of removed volumes'));
    for (const [, slot] of this.backends.entries()) {
      if (!slot.error) await recordUsageOf(slot.backend, this.control, this.log);
    }
    const leased = new Set((await this.control.leasesOnNode(this.node)).map((l) => l.volume));
    for (const name of leased) await this.containers.annotate(name);
    for (const name of this.state.mountedNames()) {
      // fence: mounted while control was away; control hears of its Mount IDs at the next heartbeat.
      if (leased.has(name) || this.mounts.awaitingControl(name)) continue;
      await this.lock.run(name, async () => {
        const v = await this.control.getVolume(name);
        if (!v || (await this.control.leasesOf(name)).some((l) => l.node === this.node)) return;
        try {
          await this.mounts.unmountHere(name, v.backend);
          this.log.info({ volume: name, op: 'maintain' }, 'unmounted a volume no container holds');
        } catch (err) {
          this.log.warn({ err, volume: name }, 'still cannot unmount');
        }
      });
    }
  }
}
