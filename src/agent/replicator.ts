import { Transform } from 'node:stream';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { NO_METRICS, type MetricsSink } from '../metrics/sink';
import { streamBuffers } from '../stream/buffer-size';
import { throttle } from '../stream/token-bucket';
import type { Peer } from '../transfer/client';
import { newestCommonBase, prunableReplicationSnapshots, replicationSnapshotAt } from '../volume/replication-names';
import type { ControlClient } from '../wire/control-client';
import { isActiveMove } from '../control/move-states';
import type { ReplicationDuty } from '../wire/records';
import type { MovableBackend } from './backends/backend';
import type { MoveSource, SourceConnector } from './mover';
import { KeyedLock } from './keyed-lock';
import type { Snapshots } from './snapshots';

/** How often the replicator asks control what this host keeps standbys of. */
const DUTY_POLL_MS = 1000;
/** After a failed round, the next one waits this long (or the round interval, if shorter). */
const RETRY_AFTER_MS = 2000;
/** Rounds start at most this often, however short the RPO. */
const MIN_INTERVAL_MS = 1000;

/**
 * How long after a round starts the next may start (pure): a quarter of the RPO, at least a second.
 * The lag peaks at this interval plus a round's time just before a round ends, so a round that takes
 * up to three quarters of the RPO keeps the lag within it; a slower one delays the next, never overlaps it.
 */
export function roundInterval(rpoSeconds: number): number {
  return Math.max(MIN_INTERVAL_MS, (rpoSeconds * 1000) / 4);
}

/** What the replicator needs of the agent: the volume's backend here. */
export interface StandbySide {
  readonly node: string;
  backendOf(volume: string): Promise<MovableBackend>;
}

/** What one round did, for logs and tests. */
export interface RoundResult {
  volume: string;
  snapshot: string;
  base: string | undefined;
  bytes: number;
  durationMs: number;
}

/**
 * The standby side of replication (issue 7 item 4): keeps this host's standbys fresh. The standby
 * drives, as a move's target does (DESIGN: replication): every quarter RPO it names a replication
 * snapshot after the time, asks the primary's transfer service to send it (the primary takes it at
 * once, under the volume's lock; `send` takes a name only once), as an increment from the newest
 * snapshot both hold, or whole the first time; then tells control (the lag restarts from the
 * snapshot's time), drops its own older replication snapshots and asks the primary to drop those
 * no standby needs. One round at a time per volume: a slow round delays the next, never overlaps it.
 */
export class Replicator {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Per volume: a round under way, when the next may start, the newest duty control gave. */
  private readonly running = new Map<string, Promise<void>>();
  private readonly nextAt = new Map<string, number>();
  private readonly duties = new Map<string, ReplicationDuty>();
  /**
   * Per volume: the snapshot the last round left here, which the primary keeps (it prunes only older
   * ones than every standby's newest): the next round's base without asking both hosts for lists.
   * Forgotten after any failure, so that a round after a surprise looks again.
   */
  private readonly lastBase = new Map<string, string>();
  /** Pruning after a round runs beside the next one (it deletes only older snapshots), one per volume. */
  private readonly pruning = new Map<string, Promise<void>>();

  constructor(
    private readonly side: StandbySide,
    private readonly control: ControlClient,
    /** Old replication snapshots here go through the snapshot part (control's registry forgets them). */
    private readonly snapshots: Pick<Snapshots, 'remove'>,
    private readonly connect: SourceConnector,
    private readonly log: Logger,
    private readonly metrics: MetricsSink = NO_METRICS,
    private readonly now: () => number = Date.now,
    /** Shared with the Mover (see round). */
    private readonly incoming: KeyedLock = new KeyedLock(),
  ) {}

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      void this.poll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, DUTY_POLL_MS).unref();
      });
    };
    tick();
  }

  /** Stops starting rounds; resolves when the rounds and pruning under way have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([...this.running.values(), ...this.pruning.values()]);
  }

  /** One look at control's duties: keeps the newest of each, starts the rounds that are due. */
  private async poll(): Promise<void> {
    let duties: ReplicationDuty[];
    try {
      duties = await this.control.replicationDuties(this.side.node);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cannot read replication duties');
      return;
    }
    const now = new Set(duties.map((d) => d.volume));
    for (const v of [...this.duties.keys()]) if (!now.has(v)) this.duties.delete(v);
    for (const d of duties) {
      if (this.duties.get(d.volume)?.primary !== d.primary) this.lastBase.delete(d.volume);
      this.duties.set(d.volume, d);
      this.startIfDue(d.volume);
    }
  }

  /** Starts a round of `volume` if control still asks for one, none runs, and it is due. */
  private startIfDue(volume: string): void {
    const d = this.duties.get(volume);
    if (this.stopped || !d || this.running.has(volume) || (this.nextAt.get(volume) ?? 0) > this.now()) return;
    this.nextAt.set(volume, this.now() + roundInterval(d.rpoSeconds));
    const r = this.round(d)
      .then(
        () => undefined,
        (err: unknown) => {
          const e = toFerryError(err);
          this.log.warn({ volume, primary: d.primary, err: e.message, code: e.code }, 'replication round failed');
          this.metrics.error(e.code, 'transfer');
          this.lastBase.delete(volume);
          this.nextAt.set(volume, Math.min(this.nextAt.get(volume) ?? 0, this.now() + RETRY_AFTER_MS));
        },
      )
      .finally(() => {
        this.running.delete(volume);
        // The next round starts when it is due, not at the next poll.
        if (!this.stopped) setTimeout(() => this.startIfDue(volume), Math.max(0, (this.nextAt.get(volume) ?? 0) - this.now())).unref();
      });
    this.running.set(volume, r);
  }

  /**
   * One replication round of `d.volume` from its primary to this host; undefined when a move of the
   * volume is under way (control gives no duty then, but this round may have been due before it began).
   * Under the lock a move's pre-copy takes here: the two would both receive the round's snapshot.
   */
  async round(d: ReplicationDuty): Promise<RoundResult | undefined> {
    return this.incoming.run(d.volume, async () => ((await this.moving(d.volume)) ? undefined : this.roundNow(d)));
  }

  private async roundNow(d: ReplicationDuty): Promise<RoundResult> {
    const started = this.now();
    const log = this.log.child({ volume: d.volume, primary: d.primary, op: 'replicate' });
    const backend = await this.side.backendOf(d.volume);
    const client = await this.connect(await this.peer(d.primary));
    let closeLater = false;
    try {
      let base = this.lastBase.get(d.volume);
      if (base === undefined) {
        const theirs = JSON.parse(await client.ask({ op: 'snapshots', volume: d.volume })) as string[];
        base = newestCommonBase(theirs, await backend.listSnapshots(d.volume));
      }
      const askedAt = new Date(this.now());
      const snapshot = replicationSnapshotAt(askedAt);
      if (snapshot === base) return { volume: d.volume, snapshot, base, bytes: 0, durationMs: 0 };
      const bytes = await this.pull(client, backend, d, snapshot, base);
      // A standby's copy is a dataset like a move's replica (reconciliation looks for it): the first
      // round makes the received snapshot live; later ones only add snapshots (nothing mounts it).
      if (base === undefined && !(await backend.exists(d.volume))) {
        await backend.rollback(d.volume, snapshot, { sizeBytes: d.sizeBytes ?? undefined, fs: d.fs ?? undefined });
      }
      // The lag restarts from when this host asked: the primary took the snapshot right after.
      const { oldestBase } = await this.control.standbyReplicated({ volume: d.volume, node: this.side.node, snapshot, bytes, takenAt: askedAt.toISOString() });
      // Recorded before the round lets go of the volume: a move that waited for it finds the copy here a safe base.
      // A received copy: `from` names the host it came from (the registry takes a name on a second host only so).
      await this.control.recordSnapshot({ volume: d.volume, name: snapshot, node: this.side.node, origin: 'replication', createdAt: askedAt.toISOString(), from: d.primary });
      this.lastBase.set(d.volume, snapshot);
      const durationMs = this.now() - started;
      log.info({ snapshot, base, bytes, durationMs, lagMs: this.now() - askedAt.getTime() }, 'replication round done');
      // The old snapshots on both hosts are tidied beside the next round.
      if (!this.pruning.has(d.volume)) {
        closeLater = true;
        const p = this.tidy(d.volume, backend, client, snapshot, oldestBase, log).finally(() => {
          this.pruning.delete(d.volume);
          client.close();
        });
        this.pruning.set(d.volume, p);
      }
      return { volume: d.volume, snapshot, base, bytes, durationMs };
    } finally {
      if (!closeLater) client.close();
    }
  }

  /**
   * After a round: deletes the older replication snapshots here (the new one is the next base) and
   * asks the primary to delete those that no standby needs any more. Failures are logged: the next
   * round's tidying tries again.
   */
  private async tidy(
    volume: string,
    backend: MovableBackend,
    client: MoveSource,
    snapshot: string,
    oldestBase: string | null,
    log: Logger,
  ): Promise<void> {
    try {
      // A move of the volume may have chosen one of them as its base (the newest both hosts held when
      // it began): nothing is pruned on either host while one is under way; the next round's tidying does it.
      if (await this.moving(volume)) return;
      for (const s of prunableReplicationSnapshots(await backend.listSnapshots(volume), snapshot)) {
        if (await this.moving(volume)) return;
        await this.snapshots.remove(volume, s);
      }
      if (oldestBase !== null && !(await this.moving(volume))) await client.ask({ op: 'prune-replication', volume, oldest: oldestBase });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot tidy replication snapshots');
    }
  }

  private async moving(volume: string): Promise<boolean> {
    const m = await this.control.moveOf(volume);
    return !!m && isActiveMove(m.state);
  }

  /** Streams `snapshot` (taken by the primary on request) into this host's pool, throttled to the duty's bandwidth. */
  private async pull(client: MoveSource, backend: MovableBackend, d: ReplicationDuty, snapshot: string, base: string | undefined): Promise<number> {
    let bytes = 0;
    const metrics = this.metrics;
    const counter = new Transform({
      ...streamBuffers,
      transform(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        metrics.transferReceived(chunk.length);
        cb(null, chunk);
      },
    });
    const source = client.request({ op: 'send', volume: d.volume, snapshot, base });
    const limited = d.bandwidthBytes ? source.pipe(throttle(d.bandwidthBytes)) : source;
    source.on('error', (err) => counter.destroy(err));
    if (limited !== source) limited.on('error', (err) => counter.destroy(err));
    // The backend reads counter's error once it gets to it; an error before then must not go unhandled.
    counter.on('error', () => undefined);
    limited.pipe(counter);
    await backend.receive(d.volume, snapshot, counter);
    return bytes;
  }

  private async peer(name: string): Promise<Peer> {
    const n = (await this.control.listNodes()).find((x) => x.name === name);
    if (!n || !n.address || !n.transferKey) throw new FerryError('NODE_NOT_FOUND', `host ${name} has not registered a transfer address`);
    if (n.state !== 'up') throw new FerryError('NODE_UNREACHABLE', `host ${name} is down`);
    return { name, address: n.address, hostKey: n.transferKey };
  }
}
