import { Transform, type Readable } from 'node:stream';
import type { ControlClient } from '../wire/control-client';
import type { ContainerSpec, MoveRecord, VolumeView } from '../wire/records';
import { canMove, isActiveMove, nextMoveState, type ActiveMoveState, type MoveState } from '../control/move-states';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { NO_METRICS, type MetricsSink } from '../metrics/sink';
import { TransferClient, type Peer } from '../transfer/client';
import type { TransferRequest } from '../transfer/protocol';
import { describeProgress } from '../wire/move-progress';
import { moveFinalSnapshot, moveOfSnapshot, moveRoundSnapshot } from '../volume/snapshot-names';
import type { MovableBackend } from './backends/backend';
import { streamBuffers } from '../stream/buffer-size';
import { sendChain } from './snapshot-chain';
import { KeyedLock } from './keyed-lock';
import { newestCommonBase } from '../volume/replication-names';

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

/** The source host of a move as the target talks to it: TransferClient, or an in-memory fake in tests. */
export interface MoveSource {
  /** A request whose whole answer is a short text (snapshots, prune). */
  ask(req: TransferRequest): Promise<string>;
  /** A request answered by a stream (send, send-final); the stream errors when the source fails it. */
  request(req: TransferRequest): Readable;
  close(): void;
}

/** Connects to the source host of a move. */
export type SourceConnector = (peer: Peer) => Promise<MoveSource>;

/** What one run of a move carries from step to step. */
interface MoveRun {
  m: MoveRecord;
  log: Logger;
  backend: MovableBackend;
  /** The connection to the source and the newest snapshot both hosts hold, made on first use. */
  source?: { client: MoveSource; base: string | undefined };
  /** Bytes received so far, and the reporter of progress to control. */
  done: number;
  report: (bytes: number) => void;
  /** When the source released the volume (the start of the downtime), if this run saw it. */
  released?: number;
  /** Control's view at the switch, when this run made it. */
  switched?: VolumeView;
  isLive: () => void;
}

/**
 * Runs moves whose target is this host (DESIGN: pre-copy, wait for release, final sync, verify,
 * switch, mount). The target drives; the source only answers transfer requests. A move is resumable:
 * run it again after any crash and it goes on from the state control records, one step per state
 * (control/move-states.ts holds the table of states and the only ways from one to the next).
 */
export class Mover {
  /** Moves under way here: `done` when all is over, `live` once the volume is primary and usable here. */
  private readonly running = new Map<number, { done: Promise<void>; live: Promise<void> }>();
  private readonly connect: SourceConnector;

  /** One step per active state: each does its work, records the event in control, and returns the next state. */
  private readonly steps: Record<ActiveMoveState, (run: MoveRun) => Promise<MoveState>> = {
    // One stream into a volume's pool here at a time: a replication round under way ends first.
    precopy: (run) => this.incoming.run(run.m.volume, () => this.precopy(run)),
    releasing: (run) => this.releasing(run),
    final: (run) => this.finalSync(run),
    switched: (run) => this.complete(run),
  };

  constructor(
    private readonly side: TargetSide,
    private readonly control: ControlClient,
    privateKey: string,
    private readonly log: Logger,
    private readonly opts: { stepDelayMs: number } = { stepDelayMs: 0 },
    connect?: SourceConnector,
    private readonly metrics: MetricsSink = NO_METRICS,
    /** Shared with the Replicator: a move's pre-copy and a replication round of one volume never receive at once. */
    private readonly incoming: KeyedLock = new KeyedLock(),
  ) {
    this.connect = connect ?? ((peer) => TransferClient.connect(peer, privateKey));
  }

  private async step(): Promise<void> {
    // Only tests set a delay: it lets them kill a process between two steps of a move.
    if (this.opts.stepDelayMs > 0) await new Promise((r) => setTimeout(r, this.opts.stepDelayMs));
  }

  /** How many moves to this host run now. */
  inFlight(): number {
    return this.running.size;
  }

  /**
   * A move was just requested through this host (`ferry volume move`): the hosts with work to do
   * hear of it now rather than at their next heartbeat. The target starts the move; with
   * `restartContainers`, the source stops the volume's containers. Each learns its part from a
   * heartbeat answer, as ever: this host heartbeats now (`beatHere`, a no-op until it has joined the
   * cluster, so a move is never started before its backends are up); another host gets a 'wake' over
   * the transfer channel, best effort: if that fails, its next heartbeat brings the move.
   */
  announce(m: MoveRecord, beatHere: () => void): void {
    const hosts = new Set(m.restartContainers ? [m.target, m.source] : [m.target]);
    for (const host of hosts) {
      if (host === this.side.node) {
        beatHere();
        continue;
      }
      void this.wake(host, m.volume).catch((err: unknown) =>
        this.log.debug({ err: (err as Error).message, move: m.id, host }, 'could not wake a host of a move; its heartbeat brings it'),
      );
    }
  }

  private async wake(host: string, volume: string): Promise<void> {
    const peer = await this.connect(await this.peer(host));
    try {
      await peer.ask({ op: 'wake', volume });
    } finally {
      peer.close();
    }
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

  /** Runs move `m` from the state it is in to its end: one step per state. */
  private async run(m: MoveRecord, isLive: () => void): Promise<void> {
    const log = this.log.child({ volume: m.volume, move: m.id, op: 'move' });
    const started = Date.now();
    let run: MoveRun | undefined;
    try {
      run = { m, log, backend: await this.side.backendOf(m.volume), done: m.bytesDone, report: this.reporter(m.id), isLive };
      let state: MoveState = m.state;
      while (isActiveMove(state)) state = await this.steps[state](run);
      const now = Date.now();
      log.info({ durationMs: now - started, downtimeMs: run.released ? now - run.released : undefined, bytes: run.done, outcome: 'ok' }, 'move done');
      this.metrics.moveEnded({ outcome: 'ok', seconds: (now - started) / 1000, downtimeSeconds: run.released ? (now - run.released) / 1000 : undefined, bytes: run.done - m.bytesDone });
    } catch (err) {
      const e = toFerryError(err);
      log.warn({ err: e.message, code: e.code, outcome: 'error' }, 'move failed');
      this.metrics.moveEnded({ outcome: 'error', seconds: (Date.now() - started) / 1000, bytes: run ? run.done - m.bytesDone : 0 });
      this.metrics.error(e.code, 'move');
      const now = await this.control.getMove(m.id).catch(() => undefined);
      // Before the switch a failure leaves the source primary and nothing of the move here; after it,
      // the target is primary and a later run finishes the move.
      if (now && canMove(now.state, 'fail')) {
        await this.control.failMove(m.id, e.message).catch(() => undefined);
        await this.dropPartial(m, log);
      }
      throw e;
    } finally {
      run?.source?.client.close();
    }
  }

  /**
   * Progress goes to control at most every PROGRESS_EVERY_MS, one call at a time: a call per received
   * chunk (tens of thousands per GiB) would cost more CPU than the transfer itself.
   */
  private reporter(id: number): (bytes: number) => void {
    let lastReport = 0;
    let reporting = false;
    return (bytes) => {
      const now = Date.now();
      if (reporting || now - lastReport < PROGRESS_EVERY_MS) return;
      reporting = true;
      lastReport = now;
      void this.control
        .updateMove(id, { bytesDone: bytes })
        .catch(() => undefined)
        .finally(() => (reporting = false));
    };
  }

  /** The connection to the source, made once per run, with the newest snapshot both hosts hold. */
  private async source(run: MoveRun): Promise<{ client: MoveSource; base: string | undefined }> {
    if (run.source) return run.source;
    const client = await this.connect(await this.peer(run.m.source));
    try {
      const base = await this.commonBase(client, run.backend, run.m.volume);
      const v = await this.control.getVolume(run.m.volume);
      await this.control.updateMove(run.m.id, { bytesTotal: v?.usedBytes ?? null });
      run.source = { client, base };
    } catch (err) {
      client.close();
      throw err;
    }
    return run.source;
  }

  /** precopy: rounds of increments while the volume may be in use, until the delta is small. */
  private async precopy(run: MoveRun): Promise<MoveState> {
    const { m, backend, log } = run;
    const src = await this.source(run);
    // snap: the volume's own snapshots go first, oldest first, each an increment on the one before;
    // the rounds then base on the newest snapshot both hosts hold (snapshot-chain.ts says which are safe).
    const chain = await sendChain({
      volume: m.volume,
      from: m.source,
      to: this.side.node,
      source: src.client,
      backend,
      control: this.control,
      log,
      onBytes: (n) => {
        run.done += n;
        run.report(run.done);
        this.metrics.transferReceived(n);
      },
    });
    src.base = chain.base ?? src.base;
    const have = new Set(await backend.listSnapshots(m.volume));
    for (let round = 1; round <= MAX_PRECOPY_ROUNDS; round++) {
      const snap = moveRoundSnapshot(m.id, round);
      // A resumed move keeps the rounds that arrived before the crash.
      if (have.has(snap)) {
        src.base = snap;
        continue;
      }
      const req = { op: 'send' as const, volume: m.volume, snapshot: snap, base: src.base };
      const bytes = await this.pull(src.client, backend, m, req, (n) => {
        run.done += n;
        run.report(run.done);
      });
      log.info({ round, snapshot: snap, base: src.base, bytes }, 'pre-copy round done');
      src.base = snap;
      await this.step();
      if (bytes < SMALL_DELTA_BYTES) break;
    }
    run.m = await this.control.updateMove(m.id, { state: 'releasing', bytesDone: run.done });
    await this.step();
    return run.m.state;
  }

  /** releasing: wait until the source holds no lease. */
  private async releasing(run: MoveRun): Promise<MoveState> {
    // Connected before the wait, so that the downtime after the release holds no handshake.
    await this.source(run);
    await this.waitForRelease(run.m);
    run.m = await this.control.updateMove(run.m.id, { state: 'final' });
    await this.step();
    return run.m.state;
  }

  /** final: the last increment, taken on the source with the volume released, then the atomic switch. */
  private async finalSync(run: MoveRun): Promise<MoveState> {
    const { m, backend, log } = run;
    const snap = moveFinalSnapshot(m.id);
    run.released ??= Date.now();
    // Connected even when the final snapshot is here already: after the switch the source's replica is pruned.
    const src = await this.source(run);
    if (!(await backend.listSnapshots(m.volume)).includes(snap)) {
      await this.pull(src.client, backend, m, { op: 'send-final', volume: m.volume, snapshot: snap, base: src.base }, (n) => (run.done += n));
      await this.control.updateMove(m.id, { bytesDone: run.done });
      await this.step();
    }
    // The received snapshot was verified end to end (stream envelope) before it was kept.
    run.switched = await this.control.switchMove(m.id);
    log.info({ generation: m.fromGeneration + 1 }, 'switched primary');
    run.m = { ...m, state: nextMoveState(m.state, 'switch') };
    await this.step();
    return run.m.state;
  }

  /**
   * switched: the received final snapshot becomes the live dataset; then tidying: this host keeps
   * only the move's final snapshot of what moves made (the base of a next move back), and a source
   * that keeps a replica keeps only that one of the moves' snapshots too. Others' snapshots stay.
   */
  private async complete(run: MoveRun): Promise<MoveState> {
    const { m, backend, log } = run;
    const keep = moveFinalSnapshot(m.id);
    await this.side.promote(m.volume, keep);
    await this.control.finishMove(m.id);
    run.isLive();
    const specs = (await this.control.getMove(m.id))?.containers;
    if (specs?.length) await this.side.startContainers(specs);
    for (const s of await backend.listSnapshots(m.volume)) {
      const owner = moveOfSnapshot(s);
      if (owner === undefined || owner > m.id || s === keep) continue;
      await backend.deleteSnapshot(m.volume, s).catch((err: unknown) => log.warn({ err, snapshot: s }, 'cannot prune'));
    }
    // Control's policy decided at the switch: the old copy stays as a replica for fast moves back (its
    // snapshot `keep` is the next base), or the source destroys it when its heartbeat says so. A run
    // resumed after the switch leaves the source's old move snapshots to the next move's tidying.
    if (run.source && run.switched?.replicas.includes(m.source)) {
      await run.source.client.ask({ op: 'prune', volume: m.volume, keep }).catch((err: unknown) => log.warn({ err }, 'cannot prune the replica on the source'));
    }
    return nextMoveState(m.state, 'mounted');
  }

  /** Streams one snapshot from the source into this host's pool; returns the bytes received. */
  private async pull(
    client: MoveSource,
    backend: MovableBackend,
    m: MoveRecord,
    req: { op: 'send' | 'send-final'; volume: string; snapshot: string; base?: string },
    progress: (bytes: number) => void,
  ): Promise<number> {
    let bytes = 0;
    const metrics = this.metrics;
    const counter = new Transform({
      ...streamBuffers,
      transform(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        progress(chunk.length);
        metrics.transferReceived(chunk.length);
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

  /**
   * The newest move snapshot both hosts have (a replica from an earlier move makes this an increment);
   * none: a full stream. Snapshots of other owners are never a base, and a move deletes none of them.
   */
  private async commonBase(client: MoveSource, backend: MovableBackend, volume: string): Promise<string | undefined> {
    const theirs = JSON.parse(await client.ask({ op: 'snapshots', volume })) as string[];
    if (!(await backend.exists(volume)) && (await backend.listSnapshots(volume)).length === 0) return undefined;
    // Only a move's or replication's own snapshots: one of those on both hosts was sent from one to
    // the other, so it holds the same data on both (replicate: a standby's newest round is a base).
    return newestCommonBase(theirs, await backend.listSnapshots(volume));
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
   * (cut off, or down): the snapshots of moves that control records as failed. Skips volumes
   * with a move under way here. Idempotent; run at start and whenever control answers again.
   */
  async dropFailed(): Promise<void> {
    for (const v of await this.control.listVolumes()) {
      if (v.primaryNode === this.side.node) continue;
      const current = await this.control.moveOf(v.name);
      if (current && current.target === this.side.node && isActiveMove(current.state)) continue;
      let backend: MovableBackend;
      try {
        backend = await this.side.backendOf(v.name);
      } catch {
        continue;
      }
      const ids = new Set((await backend.listSnapshots(v.name)).map(moveOfSnapshot).filter((x): x is number => x !== undefined));
      for (const id of ids) {
        const m = await this.control.getMove(id);
        if (m && m.state === 'failed' && m.target === this.side.node) await this.dropPartial(m, this.log.child({ volume: m.volume, move: m.id, op: 'move' }));
      }
    }
  }

  /** A failed move leaves nothing of itself on the target: its own snapshots go, nobody else's. */
  private async dropPartial(m: MoveRecord, log: Logger): Promise<void> {
    try {
      const backend = await this.side.backendOf(m.volume);
      for (const s of await backend.listSnapshots(m.volume)) if (moveOfSnapshot(s) === m.id) await backend.deleteSnapshot(m.volume, s);
      const others = await backend.listSnapshots(m.volume);
      const v = await this.control.getVolume(m.volume);
      // A target that had nothing before the move keeps nothing after it (a snapshot of anyone else's
      // keeps it); the snapshots the move's chain carried here (recorded as this host's) go with it.
      const node = this.side.node;
      const carried = new Set((await this.control.snapshotsOf(m.volume)).filter((s) => s.hosts.includes(node)).map((s) => s.name));
      if (others.every((s) => carried.has(s)) && v && v.primaryNode !== node && !v.replicas.includes(node)) {
        await backend.destroy(m.volume);
        for (const s of carried) await this.control.forgetSnapshot(m.volume, s, node);
      }
    } catch (err) {
      log.warn({ err }, 'cannot remove what the failed move left');
    }
  }
}
