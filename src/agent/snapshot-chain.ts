/**
 * The snapshot chain: carries a volume's snapshots from one host to another, oldest first, each as
 * an increment on the previous one both hosts hold (snap, issue 7 item 1). A move runs it in its
 * pre-copy, before its own rounds (which then base on the newest snapshot it answers); replication
 * runs the same function to keep a standby fresh.
 *
 *   sendChain(c: ChainContext): Promise<ChainResult>
 *
 * runs on the RECEIVING host, `c.source` being a connection to the sending host (TransferClient,
 * the Mover's MoveSource). It sends every snapshot that the sender holds, the receiver lacks, control's
 * registry records on the sender and `c.wanted` accepts (default: all of them but moves' own and
 * replication snapshots older than the receiver's newest, which it dropped itself), records
 * each received copy in control ({from: c.from}), and answers `base`: the newest snapshot (in the
 * sender's order) that both now hold and that is a safe base, or undefined when there is none (the
 * next stream must then be a full one). Replication: take a `_replication.<key>` snapshot on the
 * primary (Snapshots.take, origin 'replication'), then call sendChain on the standby; it carries that
 * snapshot and any others missing there.
 *
 * Which snapshot is a safe base. An increment is only right on top of a base that holds the same data
 * on both hosts. A same-named snapshot on both is not proof (mover.commonBase's rule): a user on each
 * host may have taken one of that name. It is a safe base when
 *  - a move owns it (`_move.<id>.*`): only that move made it, on the source, and sent it to the target;
 *  - or control's registry records both hosts holding it: control records a taken snapshot only under
 *    a name no host of the volume holds, and a second host's copy only as received ({from}) from a
 *    host recorded holding it (LocalControl.recordSnapshot). So two recorded copies came one from the
 *    other by a verified stream: the same data. A host's rows go with its copy (copyDestroyed,
 *    forgetReplica), so a stale row cannot vouch for a dataset made anew.
 * A same-named snapshot that is neither is skipped (never sent over, never a base) and logged.
 */
import { Transform, type Readable } from 'node:stream';
import type { Logger } from '../log';
import { streamBuffers } from '../stream/buffer-size';
import type { TransferRequest } from '../transfer/protocol';
import { replicationSnapshotsDropped } from '../volume/replication-names';
import { moveOfSnapshot } from '../volume/snapshot-names';
import type { ControlClient } from '../wire/control-client';
import type { SnapshotRecord } from '../wire/records';
import type { MovableBackend } from './backends/backend';

/** The sending host as the receiver talks to it (what TransferClient and the Mover's MoveSource offer). */
export interface ChainSource {
  ask(req: TransferRequest): Promise<string>;
  request(req: TransferRequest): Readable;
}

/** What one run of the chain needs. */
export interface ChainContext {
  volume: string;
  /** The sending host, and this (receiving) host. */
  from: string;
  to: string;
  source: ChainSource;
  /** This host's backend of the volume. */
  backend: MovableBackend;
  control: ControlClient;
  log: Logger;
  /** Which stored names to carry; default: every registered snapshot that a move does not own. */
  wanted?: (name: string) => boolean;
  /** Called with each chunk's size as it arrives (progress, metrics). */
  onBytes?: (n: number) => void;
}

/** What a run carried, and the base for what follows. */
export interface ChainResult {
  base: string | undefined;
  sent: string[];
  bytes: number;
}

/** One stream of the chain: `snapshot`, as an increment on `base` when there is one. */
export interface ChainStep {
  snapshot: string;
  base?: string;
}

/**
 * The plan (pure): walks the sender's snapshots oldest first; one the receiver holds becomes the base
 * when it is `shared` (a safe base) and is skipped otherwise; one it lacks is sent when `carry`
 * accepts it, on the current base, and becomes the base.
 */
export function planChain(p: {
  source: readonly string[];
  target: ReadonlySet<string>;
  carry: (name: string) => boolean;
  shared: (name: string) => boolean;
}): { steps: ChainStep[]; base: string | undefined; conflicts: string[] } {
  const steps: ChainStep[] = [];
  const conflicts: string[] = [];
  let base: string | undefined;
  for (const s of p.source) {
    if (p.target.has(s)) {
      if (p.shared(s)) base = s;
      else if (p.carry(s)) conflicts.push(s);
      continue;
    }
    if (!p.carry(s)) continue;
    steps.push(base === undefined ? { snapshot: s } : { snapshot: s, base });
    base = s;
  }
  return { steps, base, conflicts };
}

/**
 * The plan of one run (pure): `theirs` the sender's snapshots (its order, oldest first), `ours` the
 * receiver's, `holders` the hosts control's registry records holding a name. Carried: what the
 * registry records on the sender, `wanted` accepts, no move owns, and the receiver has not dropped
 * (replicationSnapshotsDropped); a base: a move's, or one recorded on both hosts.
 */
export function chainPlan(p: {
  theirs: readonly string[];
  ours: readonly string[];
  holders: (name: string) => readonly string[];
  from: string;
  to: string;
  wanted?: (name: string) => boolean;
}): ReturnType<typeof planChain> {
  const on = (s: string, host: string): boolean => p.holders(s).includes(host);
  const wanted = p.wanted ?? (() => true);
  const dropped = new Set(replicationSnapshotsDropped(p.theirs, p.ours));
  return planChain({
    source: p.theirs,
    target: new Set(p.ours),
    carry: (s) => moveOfSnapshot(s) === undefined && !dropped.has(s) && on(s, p.from) && wanted(s),
    shared: (s) => moveOfSnapshot(s) !== undefined || (on(s, p.from) && on(s, p.to)),
  });
}

/** Sends what the receiver lacks (see the top of this file). Throws what a stream or the backend throws. */
export async function sendChain(c: ChainContext): Promise<ChainResult> {
  const log = c.log.child({ volume: c.volume, op: 'snapshot-chain', from: c.from });
  const theirs = JSON.parse(await c.source.ask({ op: 'snapshots', volume: c.volume })) as string[];
  const ours = await c.backend.listSnapshots(c.volume);
  const registry = new Map((await c.control.snapshotsOf(c.volume)).map((s) => [s.name, s]));
  const plan = chainPlan({ theirs, ours, holders: (s) => registry.get(s)?.hosts ?? [], from: c.from, to: c.to, wanted: c.wanted });
  for (const s of plan.conflicts) log.warn({ snapshot: s }, 'a snapshot of this name here may hold other data: not sent, not a base');
  const sent: string[] = [];
  let bytes = 0;
  for (const step of plan.steps) {
    const n = await pull(c, step, c.onBytes);
    bytes += n;
    const rec = registry.get(step.snapshot)!;
    try {
      await c.control.recordSnapshot(received(rec, c));
    } catch (err) {
      // Removed on the sender meanwhile (or never recorded): an unrecorded copy is never a base.
      log.warn({ err, snapshot: step.snapshot }, 'received snapshot not recorded: deleted here');
      await c.backend.deleteSnapshot(c.volume, step.snapshot);
      throw err;
    }
    sent.push(step.snapshot);
    log.info({ snapshot: step.snapshot, base: step.base, bytes: n }, 'snapshot carried');
  }
  return { base: plan.base, sent, bytes };
}

function received(rec: SnapshotRecord, c: ChainContext) {
  return {
    volume: c.volume,
    name: rec.name,
    node: c.to,
    origin: rec.origin,
    createdAt: rec.createdAt,
    sizeBytes: rec.sizeBytes,
    group: rec.group,
    policy: rec.policy,
    from: c.from,
  };
}

/** Streams one existing snapshot from the sender into this host's pool; the bytes received. */
async function pull(c: ChainContext, step: ChainStep, onBytes?: (n: number) => void): Promise<number> {
  let bytes = 0;
  const counter = new Transform({
    ...streamBuffers,
    transform(chunk: Buffer, _e, cb) {
      bytes += chunk.length;
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  const source = c.source.request({ op: 'send-snapshot', volume: c.volume, snapshot: step.snapshot, ...(step.base ? { base: step.base } : {}) });
  source.on('error', (err) => counter.destroy(err));
  // The backend reads counter's error once it gets to it; an error before then must not go unhandled.
  counter.on('error', () => undefined);
  source.pipe(counter);
  await c.backend.receive(c.volume, step.snapshot, counter);
  return bytes;
}
