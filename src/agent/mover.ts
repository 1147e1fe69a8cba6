import { Transform } from 'node:stream';
import type { ControlClient } from '../control/control';
import type { MoveRecord } from '../control/move-repo';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { TransferClient, type Peer } from '../transfer/client';
import { describeProgress } from '../control/move-progress';
import type { MovableBackend } from './backends/backend';
import type { ContainerSpec } from './docker-host';
import { streamBuffers } from '../stream/buffer-size';

/** Stop pre-copying once an increment is this small: the final one will be as quick. */
export const SMALL_DELTA_BYTES = 32 * 1024 * 1024;
/** At most this many pre-copy rounds, however busy the volume. */
export const MAX_PRECOPY_ROUNDS = 4;
/** How often the target asks whether the source released the volume: often at first (a Swarm task
 * stops within seconds, and the wait is the move's downtime), then less, for a release that takes long. */
const RELEASE_POLL_MS = 40;
const RELEASE_POLL_SLOW_MS = 250;
const RELEASE_POLL_FAST_FOR_MS = 10_000;
const PROGRESS_EVERY_MS = 500;

/** What the target side of a move needs from the agent. */
export interface TargetSide {
  readonly node: string;
  backendOf(volume: string): Promise<MovableBackend>;
  /** The live dataset of `volume` becomes snapshot `snap` (the volume must not be mounted here). */
  promote(volume: string, snap: string): Promise<void>;
  /** Starts containers that a plain Docker move stopped on the source. */
  startContainers(specs: ContainerSpec[]): Promise<void>;
}

const finalSnapshot = (m: MoveRecord): string => `m${m.id}-final`;
const roundSnapshot = (m: MoveRecord, round: number): string => `m${m.id}-${round}`;
const ownSnapshot = (m: MoveRecord, s: string): boolean => s.startsWith(`m${m.id}-`);

/**
 * Runs moves whose target is this host (DESIGN: pre-copy, wait for release, final sync, verify,
 * switch, mount). The target drives; the source only answers transfer requests. A move is resumable:
 * run it again after any crash and it picks up from what control and the disks say.
 */
export class Mover {
  /** Moves under way here: `done` when all is over, `live` once the volume is primary and usable here. */
  private readonly running = new Map<number, { done: Promise<void>; live: Promise<void> }>();

  constructor(
    private readonly side: TargetSide,
    private readonly control: ControlClient,
    private readonly privateKey: string,
    private readonly log: Logger,
    private readonly opts: { stepDelayMs: number } = { stepDelayMs: 0 },
  ) {}

  private async step(): Promise<void> {
    // Only tests set a delay: it lets them kill a process between two steps of a move.
    if (this.opts.stepDelayMs > 0) await new Promise((r) => setTimeout(r, this.opts.stepDelayMs));
  }

  /** Starts move `m` unless it already runs here; resolves when it ends (rejects if it failed). */
  ensure(m: MoveRecord): Promise<void> {
    return this.start(m).done;
  }

  private start(m: MoveRecord): { done: Promise<void>; live: Promise<void> } {
    let r = this.running.get(m.id);
    if (!r) {
      let isLive!: () => void;
      const live = new Promise<void>((res) => (isLive = res));
      const done = this.run(m, isLive).finally(() => this.running.delete(m.id));
      done.catch(() => undefined);
      r = { done, live };
      this.running.set(m.id, r);
    }
    return r;
  }

  /**
   * A Mount here of a volume primary elsewhere: start or join its move, wait up to `waitMs`, and if
   * it has not finished, fail with its progress (dockerd gives Mount 2 minutes; Swarm retries).
   */
  async pullForMount(volume: string, waitMs: number): Promise<void> {
    const m = await this.control.requestMove(volume, this.side.node);
    const { done, live } = this.start(m);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), waitMs)));
    // The Mount needs the volume live here, not the tidying after (old snapshots, the source's replica).
    const ended = done.then(() => 'done' as const);
    // The move may fail after the race is decided (a timeout, or tidying after the volume went live).
    ended.catch(() => undefined);
    const result = await Promise.race([live.then(() => 'done' as const), ended, timeout]).finally(() => clearTimeout(timer));
    if (result === 'done') return;
    const now = (await this.control.getMove(m.id)) ?? m;
    throw new FerryError('VOLUME_BUSY', `moving ${volume} from ${m.source}: ${describeProgress(now)}; the move goes on, retry the mount (Swarm retries tasks)`);
  }

  private async run(m: MoveRecord, isLive: () => void): Promise<void> {
    const log = this.log.child({ volume: m.volume, move: m.id, op: 'move' });
    const started = Date.now();
    if (m.state === 'switched') return this.complete(m, log, isLive);
    let client: TransferClient | undefined;
    try {
      // First: a volume whose backend has no streams cannot move, and the move fails saying so.
      const backend = await this.side.backendOf(m.volume);
      const peer = await this.peer(m.source);
      client = await TransferClient.connect(peer, this.privateKey);
      const v = await this.control.getVolume(m.volume);
      let base = await this.commonBase(client, backend, m.volume);
      let done = m.bytesDone;
      // Progress goes to control at most every PROGRESS_EVERY_MS, one call at a time: a call per
      // received chunk (tens of thousands per GiB) would cost more CPU than the transfer itself.
      let lastReport = 0;
      let reporting = false;
      const report = (bytes: number): void => {
        const now = Date.now();
        if (reporting || now - lastReport < PROGRESS_EVERY_MS) return;
        reporting = true;
        lastReport = now;
        void this.control
          .updateMove(m.id, { bytesDone: bytes })
          .catch(() => undefined)
          .finally(() => (reporting = false));
      };
      await this.control.updateMove(m.id, { bytesTotal: v?.usedBytes ?? null });

      if (m.state === 'precopy') {
        const have = new Set(await backend.listSnapshots(m.volume));
        for (let round = 1; round <= MAX_PRECOPY_ROUNDS; round++) {
          const snap = roundSnapshot(m, round);
          // A resumed move keeps the rounds that arrived before the crash.
          if (have.has(snap)) {
            base = snap;
            continue;
          }
          const bytes = await this.pull(client, backend, m, { op: 'send', volume: m.volume, snapshot: snap, base }, (n) => {
            done += n;
            report(done);
          });
          log.info({ round, snapshot: snap, base, bytes }, 'pre-copy round done');
          base = snap;
          await this.step();
          if (bytes < SMALL_DELTA_BYTES) break;
        }
        m = await this.control.updateMove(m.id, { state: 'releasing', bytesDone: done });
        await this.step();
      }
      if (m.state === 'releasing') {
        await this.waitForRelease(m);
        m = await this.control.updateMove(m.id, { state: 'final' });
        await this.step();
      }
      const released = Date.now();
      const snap = finalSnapshot(m);
      if (!(await backend.listSnapshots(m.volume)).includes(snap)) {
        await this.pull(client, backend, m, { op: 'send-final', volume: m.volume, snapshot: snap, base }, (n) => (done += n));
        await this.control.updateMove(m.id, { bytesDone: done });
        await this.step();
      }
      // The received snapshot was verified end to end (stream envelope) before it was kept.
      const switched = await this.control.switchMove(m.id);
      log.info({ generation: m.fromGeneration + 1 }, 'switched primary');
      await this.step();
      await this.complete({ ...m, state: 'switched' }, log, isLive);
      // Control's policy decided at the switch: the old copy stays as a replica for fast moves back (its
      // snapshot `snap` is the next base), or the source destroys it when its heartbeat says so.
      if (switched.replicas.includes(m.source)) {
        await client.ask({ op: 'prune', volume: m.volume, keep: snap }).catch((err: unknown) => log.warn({ err }, 'cannot prune the replica on the source'));
      }
      log.info({ durationMs: Date.now() - started, downtimeMs: Date.now() - released, bytes: done, outcome: 'ok' }, 'move done');
    } catch (err) {
      const e = toFerryError(err);
      log.warn({ err: e.message, code: e.code, outcome: 'error' }, 'move failed');
      const now = await this.control.getMove(m.id).catch(() => undefined);
      if (now && now.state !== 'switched' && now.state !== 'done') {
        await this.control.failMove(m.id, e.message).catch(() => undefined);
        await this.dropPartial(m, log);
      }
      throw e;
    } finally {
      client?.close();
    }
  }

  /** After the switch: the received final snapshot becomes the live dataset; older snapshots go. */
  private async complete(m: MoveRecord, log: Logger, isLive: () => void): Promise<void> {
    const backend = await this.side.backendOf(m.volume);
    await this.side.promote(m.volume, finalSnapshot(m));
    await this.control.finishMove(m.id);
    isLive();
    const specs = (await this.control.getMove(m.id))?.containers;
    if (specs?.length) await this.side.startContainers(specs);
    for (const s of await backend.listSnapshots(m.volume)) {
      if (s !== finalSnapshot(m)) await backend.deleteSnapshot(m.volume, s).catch((err: unknown) => log.warn({ err, snapshot: s }, 'cannot prune'));
    }
  }

  /** Streams one snapshot from the source into this host's pool; returns the bytes received. */
  private async pull(
    client: TransferClient,
    backend: MovableBackend,
    m: MoveRecord,
    req: { op: 'send' | 'send-final'; volume: string; snapshot: string; base?: string },
    progress: (bytes: number) => void,
  ): Promise<number> {
    let bytes = 0;
    const counter = new Transform({
      ...streamBuffers,
      transform(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        progress(chunk.length);
        cb(null, chunk);
      },
    });
    const source = client.request(req);
    source.on('error', (err) => counter.destroy(err));
    // The backend reads counter's error once it gets to it; an error before then must not go unhandled.
    counter.on('error', () => undefined);
    source.pipe(counter);
    await backend.receive(m.volume, req.snapshot, counter);
    return bytes;
  }

  /** The newest snapshot both hosts have (a replica from an earlier move makes this an increment). */
  private async commonBase(client: TransferClient, backend: MovableBackend, volume: string): Promise<string | undefined> {
    const theirs = JSON.parse(await client.ask({ op: 'snapshots', volume })) as string[];
    if (!(await backend.exists(volume)) && (await backend.listSnapshots(volume)).length === 0) return undefined;
    const ours = new Set(await backend.listSnapshots(volume));
    return [...theirs].reverse().find((s) => ours.has(s));
  }

  private async waitForRelease(m: MoveRecord): Promise<void> {
    const since = Date.now();
    for (;;) {
      const cur = await this.control.getMove(m.id);
      if (!cur || cur.state !== 'releasing') throw new FerryError('MOVE_CONFLICT', `move ${m.id} of ${m.volume} ended while waiting for release`);
      const held = (await this.control.leasesOf(m.volume)).filter((l) => l.node === m.source);
      if (held.length === 0) return;
      await new Promise((r) => setTimeout(r, Date.now() - since < RELEASE_POLL_FAST_FOR_MS ? RELEASE_POLL_MS : RELEASE_POLL_SLOW_MS));
    }
  }

  private async peer(name: string): Promise<Peer> {
    const n = (await this.control.listNodes()).find((x) => x.name === name);
    if (!n || !n.address || !n.transferKey) throw new FerryError('NODE_NOT_FOUND', `host ${name} has not registered a transfer address`);
    if (n.state !== 'up') throw new FerryError('NODE_UNREACHABLE', `host ${name} is down`);
    return { name, address: n.address, hostKey: n.transferKey };
  }

  /**
   * Drops what moves to this host left here after they failed while this host could not hear of it
   * (cut off, or down): snapshots `m<id>-*` of moves that control records as failed. Skips volumes
   * with a move under way here. Idempotent; run at start and whenever control answers again.
   */
  async dropFailed(): Promise<void> {
    for (const v of await this.control.listVolumes()) {
      if (v.primaryNode === this.side.node) continue;
      const current = await this.control.moveOf(v.name);
      if (current && current.target === this.side.node && current.state !== 'done' && current.state !== 'failed') continue;
      let backend: MovableBackend;
      try {
        backend = await this.side.backendOf(v.name);
      } catch {
        continue;
      }
      const ids = new Set((await backend.listSnapshots(v.name)).map((s) => /^m(\d+)-/.exec(s)?.[1]).filter((x): x is string => !!x).map(Number));
      for (const id of ids) {
        const m = await this.control.getMove(id);
        if (m && m.state === 'failed' && m.target === this.side.node) await this.dropPartial(m, this.log.child({ volume: m.volume, move: m.id, op: 'move' }));
      }
    }
  }

  /** A failed move leaves nothing of itself on the target. */
  private async dropPartial(m: MoveRecord, log: Logger): Promise<void> {
    try {
      const backend = await this.side.backendOf(m.volume);
      for (const s of await backend.listSnapshots(m.volume)) if (ownSnapshot(m, s)) await backend.deleteSnapshot(m.volume, s);
      const others = await backend.listSnapshots(m.volume);
      const v = await this.control.getVolume(m.volume);
      // A target that had nothing before the move keeps nothing after it.
      if (others.length === 0 && v && v.primaryNode !== this.side.node && !v.replicas.includes(this.side.node)) await backend.destroy(m.volume);
    } catch (err) {
      log.warn({ err }, 'cannot remove what the failed move left');
    }
  }
}
