import { Transform } from 'node:stream';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { NO_METRICS, type MetricsSink } from '../metrics/sink';
import { streamBuffers } from '../stream/buffer-size';
import { throttle } from '../stream/token-bucket';
import type { Peer } from '../transfer/client';
import { newestCommonBase, prunableReplicationSnapshots, replicationSnapshotAt, replicationTimeOf } from '../volume/replication-names';
import type { ControlClient } from '../wire/control-client';
import type { ReplicationDuty } from '../wire/records';
import type { MovableBackend } from './backends/backend';
import type { MoveSource, SourceConnector } from './mover';
import type { Snapshots } from './snapshots';

/** How often the replicator asks control what this host keeps standbys of. */
const DUTY_POLL_MS = 1000;
/** After a failed round, the next one waits this long (or the round interval, if shorter). */
const RETRY_AFTER_MS = 2000;

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
 * drives, as a move's target does (DESIGN: replication): every half RPO it names a replication
 * snapshot after the time, asks the primary's transfer service to send it (the primary takes it at
 * once, under the volume's lock; `send` takes a name only once), as an increment from the newest
 * snapshot both hold, or whole the first time; then tells control (the lag restarts from the
 * snapshot's time), drops its own older replication snapshots and asks the primary to drop those
 * no standby needs. One round at a time per volume: a slow round delays the next, never overlaps it.
 */
export class Replicator {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Per volume: a round under way, and when the next may start. */
  private readonly running = new Map<string, Promise<void>>();
  private readonly nextAt = new Map<string, number>();

  constructor(
    private readonly side: StandbySide,
    private readonly control: ControlClient,
    /** Old replication snapshots here go through the snapshot part (control's registry forgets them). */
    private readonly snapshots: Pick<Snapshots, 'remove'>,
    private readonly connect: SourceConnector,
    private readonly log: Logger,
    private readonly metrics: MetricsSink = NO_METRICS,
    private readonly now: () => number = Date.now,
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

  /** Stops starting rounds; resolves when the rounds under way have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([...this.running.values()]);
  }

  /** One look at control's duties: starts each volume's round that is due and not under way. */
  private async poll(): Promise<void> {
    let duties: ReplicationDuty[];
    try {
      duties = await this.control.replicationDuties(this.side.node);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cannot read replication duties');
      return;
    }
    for (const d of duties) {
      if (this.running.has(d.volume) || (this.nextAt.get(d.volume) ?? 0) > this.now()) continue;
      const started = this.now();
      // A round every half RPO keeps the lag (which reaches interval + round time) within the RPO.
      this.nextAt.set(d.volume, started + (d.rpoSeconds * 1000) / 2);
      const r = this.round(d)
        .catch((err: unknown) => {
          const e = toFerryError(err);
          this.log.warn({ volume: d.volume, primary: d.primary, err: e.message, code: e.code }, 'replication round failed');
          this.metrics.error(e.code, 'transfer');
          this.nextAt.set(d.volume, Math.min(this.nextAt.get(d.volume) ?? 0, this.now() + RETRY_AFTER_MS));
        })
        .then(() => undefined)
        .finally(() => this.running.delete(d.volume));
      this.running.set(d.volume, r);
    }
  }

  /** One replication round of `d.volume` from its primary to this host. */
  async round(d: ReplicationDuty): Promise<RoundResult> {
    const started = this.now();
    const log = this.log.child({ volume: d.volume, primary: d.primary, op: 'replicate' });
    const backend = await this.side.backendOf(d.volume);
    const client = await this.connect(await this.peer(d.primary));
    try {
      const theirs = JSON.parse(await client.ask({ op: 'snapshots', volume: d.volume })) as string[];
      const ours = await backend.listSnapshots(d.volume);
      const base = newestCommonBase(theirs, ours);
      const snapshot = replicationSnapshotAt(new Date(this.now()));
      if (ours.includes(snapshot)) return { volume: d.volume, snapshot, base, bytes: 0, durationMs: 0 };
      const bytes = await this.pull(client, backend, d, snapshot, base);
      // A standby's copy is a dataset like a move's replica (reconciliation looks for it): the first
      // round makes the received snapshot live; later ones only add snapshots (nothing mounts it).
      if (!(await backend.exists(d.volume))) {
        await backend.rollback(d.volume, snapshot, { sizeBytes: d.sizeBytes ?? undefined, fs: d.fs ?? undefined });
      }
      const takenAt = replicationTimeOf(snapshot)!.toISOString();
      await this.control.recordSnapshot({ volume: d.volume, name: snapshot, node: this.side.node, origin: 'replication', createdAt: takenAt });
      const { oldestBase } = await this.control.standbyReplicated({ volume: d.volume, node: this.side.node, snapshot, bytes });
      // Here only the newest is needed (the next base); there, what no standby still needs.
      for (const s of prunableReplicationSnapshots(await backend.listSnapshots(d.volume), snapshot)) {
        await this.snapshots.remove(d.volume, s).catch((err: unknown) => log.warn({ err, snapshot: s }, 'cannot prune a replication snapshot'));
      }
      if (oldestBase !== null) {
        await client.ask({ op: 'prune-replication', volume: d.volume, oldest: oldestBase }).catch((err: unknown) => log.warn({ err }, 'cannot prune on the primary'));
      }
      const durationMs = this.now() - started;
      const lagMs = this.now() - (replicationTimeOf(snapshot)?.getTime() ?? started);
      log.info({ snapshot, base, bytes, durationMs, lagMs }, 'replication round done');
      return { volume: d.volume, snapshot, base, bytes, durationMs };
    } finally {
      client.close();
    }
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
