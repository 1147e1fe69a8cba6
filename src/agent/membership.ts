import { randomUUID } from 'node:crypto';
import type { ControlClient } from '../wire/control-client';
import type { Logger } from '../log';
import type { Mover } from './mover';
import type { ContainerSpec } from '../wire/records';
import type { ControlAway } from './control-away';
import type { PrimaryLease } from './primary-lease';
import type { FailoverDuties } from './failover-duties';

/** What membership asks of the agent: the source side of a plain Docker move, and dropping copies. */
export interface MemberAgent {
  stopContainersFor(volume: string): Promise<ContainerSpec[]>;
  /** Destroys this host's copy of `volume` if control still asks for it; true when it did. */
  destroyCopy(volume: string): Promise<boolean>;
}

/** After a failed destroy, wait this long before the next heartbeat tries again. */
const DESTROY_RETRY_MS = 10_000;

/**
 * Keeps this host registered with control: registers at start (retrying until control answers),
 * heartbeats, registers again when control forgot it, runs the moves whose target is this host
 * (resuming any that a crash interrupted), and destroys the copies control asks it to drop (removed
 * volumes, replicas not kept): so a host that was down when a volume was removed finishes the job.
 */
export class Membership {
  private readonly bootId = randomUUID();
  private timer?: NodeJS.Timeout;
  private registered = false;
  private stopped = false;
  /** A heartbeat is under way (from the timer or beatNow), and whether beatNow asked for another after it. */
  private beating = false;
  private again = false;
  /** Whether the last heartbeat reached control. */
  private heard = false;
  private readonly stopping = new Set<number>();
  /** Copies being destroyed now, and when a failed destroy may be tried again. */
  private readonly destroying = new Set<string>();
  private readonly destroyRetryAt = new Map<string, number>();

  constructor(
    private readonly control: ControlClient,
    private readonly node: { name: string; address: string; transferKey: string },
    private readonly mover: Mover,
    private readonly agent: MemberAgent,
    private readonly intervalMs: number,
    private readonly log: Logger,
    /**
     * fence: the time-bound lease each answered heartbeat renews, what was done while control was
     * away, and the failover steps (promote, fence) a heartbeat answer asks for.
     */
    private readonly fence?: { lease: PrimaryLease; away: ControlAway; failovers: FailoverDuties },
  ) {}

  /** Registers once (throws when control is unreachable) and starts the heartbeat. */
  async start(): Promise<void> {
    await this.register();
    // A first heartbeat at once: it carries moves and copies to drop, and starts the primary lease.
    // A wake meanwhile is followed by one more, as during any heartbeat.
    await this.beatMarked();
    this.afterBeat();
  }

  private async register(): Promise<void> {
    await this.control.registerNode({ ...this.node, bootId: this.bootId });
    this.registered = true;
    this.log.info({ node: this.node.name, address: this.node.address }, 'registered with control');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** One heartbeat, then the next one an interval later (or at once, when beatNow asked meanwhile). */
  private tick(): void {
    void this.beatMarked().then(() => this.afterBeat());
  }

  /** A heartbeat, marked as under way while it runs (beatNow then asks for one more). Never throws. */
  private async beatMarked(): Promise<void> {
    this.beating = true;
    try {
      await this.beat();
    } finally {
      this.beating = false;
    }
  }

  private afterBeat(): void {
    if (this.again && !this.stopped) {
      this.again = false;
      this.tick();
    } else {
      this.schedule();
    }
  }

  /**
   * A heartbeat now instead of at the next interval: a move this host takes part in was just
   * requested, and control's answer carries it. One under way (the first one at start included) is
   * followed by one more at once, so the answer reflects the request; many calls meanwhile make that
   * one more. Before start, and after stop, nothing.
   */
  beatNow(): void {
    if (this.stopped) return;
    if (this.beating) {
      this.again = true;
      return;
    }
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.tick();
  }

  private async beat(): Promise<void> {
    try {
      if (!this.registered) await this.register();
      // The lease counts from the moment the heartbeat is sent (DESIGN: how the timers relate).
      const sent = this.fence?.lease.mark();
      const r = await this.control.heartbeat(this.node.name, this.bootId);
      if (!r.known) {
        this.registered = false;
        return;
      }
      if (this.fence && sent) {
        this.fence.lease.renew(sent, r.primaries ?? []);
        if (r.failovers?.length) this.fence.failovers.take(r.failovers);
        if (this.fence.away.pending().length) await this.fence.away.catchUp();
      }
      // First answer since start or since control was out of reach: moves may have failed meanwhile.
      if (!this.heard) {
        this.heard = true;
        void this.mover.dropFailed().catch((err: unknown) => this.log.warn({ err }, 'cannot drop what failed moves left'));
      }
      for (const m of r.moves) {
        if (m.target === this.node.name) {
          this.mover.ensure(m).catch((err: unknown) => this.log.debug({ err, move: m.id }, 'move ended with an error'));
        } else if (m.source === this.node.name && m.restartContainers && m.containers === null && !this.stopping.has(m.id)) {
          void this.stopContainers(m.id, m.volume);
        }
      }
      for (const d of r.destroy ?? []) {
        if (this.destroying.has(d.volume) || (this.destroyRetryAt.get(d.volume) ?? 0) > Date.now()) continue;
        void this.destroy(d.volume);
      }
    } catch (err) {
      this.heard = false;
      this.fence?.lease.missed();
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private async destroy(volume: string): Promise<void> {
    this.destroying.add(volume);
    try {
      await this.agent.destroyCopy(volume);
      this.destroyRetryAt.delete(volume);
    } catch (err) {
      this.destroyRetryAt.set(volume, Date.now() + DESTROY_RETRY_MS);
      this.log.error({ err, volume, retryInMs: DESTROY_RETRY_MS }, 'cannot destroy a copy that control asks this host to drop');
    } finally {
      this.destroying.delete(volume);
    }
  }

  /** Plain Docker move away from here: stop the volume's containers so the move can go on. */
  private async stopContainers(id: number, volume: string): Promise<void> {
    this.stopping.add(id);
    try {
      const specs = await this.agent.stopContainersFor(volume);
      await this.control.setMoveContainers(id, specs);
    } catch (err) {
      this.log.error({ err, volume, move: id }, 'cannot stop the containers of a moving volume');
      await this.control.failMove(id, `cannot stop the containers using ${volume} on ${this.node.name}: ${(err as Error).message}`).catch(() => undefined);
    } finally {
      this.stopping.delete(id);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
