import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { formatSize, parseSize } from '../src/volume/size';
import type { PipeRun } from './btrfs-pipe';
import type { CpuTimes } from './cpu';
import type { CommandTotal, Round } from './move-log';
import { MiB } from './random-files';
import type { RsyncRun } from './sshd';
import { elapsedMs } from './stats';

/** The move benchmark's figures (what its JSON line carries) and the pure helpers that make them. */

export const DEFAULT_MOVE_SIZES = '256M,1G';
/** Sizes the benchmark knows how to run; --move-sizes picks among them (or any other size). */
export const ALL_MOVE_SIZES = '256M,1G,4G';
/** The change whose cost is measured: 10 MiB overwritten in place. */
export const CHANGE_BYTES = 10 * MiB;

export interface MoveSize {
  label: string;
  bytes: number;
}

/** "256M,1G" -> sizes, smallest first. */
export function parseMoveSizes(spec: string): MoveSize[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => parseSize(s, 'move size'))
    .sort((a, b) => a - b)
    .map((bytes) => ({ bytes, label: formatSize(bytes).replace('.0 ', ' ') }));
}

/** Control's events of one move, as epoch milliseconds. */
export interface MoveEvents {
  requested: number;
  releasing?: number;
  final: number;
  switched: number;
  done: number;
}

/** One `ferry volume move` (or a Mount-driven move), as seen from outside and from control's events. */
export interface MoveRun {
  id: number;
  from: string;
  to: string;
  /** Wall time of `ferry volume move NAME --to HOST`; absent for a Mount-driven move. */
  wallMs?: number;
  /** Then `sync -f` of the target's pool: until what the move wrote is on disk (whole-volume moves only). */
  syncMs?: number;
  /** When `ferry volume move` failed while the move went on (wallMs then runs until control recorded it done). */
  cliError?: string;
  /** move-requested -> move-done. */
  moveMs: number;
  /** move-final -> move-done: no Mount is granted anywhere in this window (DESIGN step 4-6). */
  finalToDoneMs: number;
  /** control's move.bytesDone, as `ferry volume inspect` shows it. */
  bytesDone: number;
  /** What the target agent counted ("move done" in its log): every byte received, pre-copy rounds and final increment. */
  bytesReceived: number;
  /** Each pre-copy round (target agent's log); the final increment is the rest of bytesReceived. */
  precopyRounds: Round[];
  events: MoveEvents;
  /** CPU each process spent during the move (agents: themselves, and their exited children such as btrfs send/receive). */
  cpu?: Record<string, CpuTimes>;
}

/** The cut-over as a container sees it: the source releases the volume, the target's Mount returns. */
export interface MountDrivenRun extends MoveRun {
  /** The source's Unmount (the old container is gone) -> move-final (the target noticed the release). */
  releaseToFinalMs: number;
  /** move-done -> the target's Mount returned its mountpoint. */
  doneToMountMs: number;
  /** The source's Unmount sent -> the target's Mount answered: the volume's downtime for its user. */
  releaseToMountMs: number;
  /** ... -> a first 4 KiB file written and fsynced on the target. */
  releaseToFirstWriteMs: number;
  /** The source's Unmount alone. */
  unmountMs: number;
  /** Mount then first write on the same host with no move: the floor of the figures above. */
  localMountMs: number;
  localFirstWriteMs: number;
  /** Commands the agents ran between the source's release and the target's Mount answering. */
  cutoverCommands: CommandTotal[];
}

export interface SizeFigures {
  label: string;
  bytes: number;
  files: number;
  /** Writing the random data into the volume on h1 (through a plugin Mount), fsynced. */
  fillMs: number;
  /** (a) the first move h1 -> h2: the whole volume. */
  full: MoveRun;
  /** (a) the same for a second volume of the same size, right after: runs in the order rsync, ferry, ferry, rsync. */
  full2: MoveRun;
  /** (b) btrfs send | btrfs receive between two local pools. */
  pipe: PipeRun;
  /** (c) rsync -a over OpenSSH from h1's namespace to h2's, before (a). */
  rsync: RsyncRun;
  /** (c) the same for the second volume, after its move. */
  rsync2: RsyncRun;
  /** The move back h2 -> h1 with nothing changed: what a move costs when nothing needs to travel. */
  back: MoveRun;
  /** (d, e) 10 MiB changed on h1 since the snapshot both hosts share, then `ferry volume move` to h2. */
  change: MoveRun;
  /** rsync -a of the same 10 MiB change onto its earlier copy. */
  rsyncChange: RsyncRun;
  /** (d) Mount-driven move h2 -> h1 with 10 MiB written after the pre-copy, before the release: the final increment carries it. */
  mount: MountDrivenRun;
}

export interface MoveFigures {
  sizes: SizeFigures[];
  /** Sizes of ALL_MOVE_SIZES that this run left out. */
  skipped: string[];
  changeBytes: number;
  /** Pools of the local pipe have quotas on, as ferry's do. */
  pipeQuotas: boolean;
  /** The page cache was dropped before every timed run (`--drop-caches`): each read its data from disk. */
  dropCaches: boolean;
  /** This machine's single-core rates in Node (OpenSSL), in chunks of an ssh packet's size. */
  crypto: { sha256MiBps: number; crc32MiBps: number; aes128gcmMiBps: number };
  totalMs: number;
}

/** What `ferry volume inspect` prints, as far as the benchmark reads it. */
export interface InspectAnswer {
  volume: { primaryNode: string; generation: number };
  move: { id: number; state: string; source: string; target: string; bytesDone: number; error: string | null } | null;
  events: { at: string; kind: string; detail: string | null }[];
}


/**
 * SHA-256 (the envelope's format 1), CRC-32 (format 2) and AES-128-GCM over 256 MiB in 32 KiB pieces
 * (an ssh packet's payload), MiB/s on one core: the best of three passes, the first of which warms up
 * V8 and the allocator (a single cold pass read AES-GCM at a quarter of its rate, 645 against 2,800 MiB/s).
 */
export function cryptoRates(): MoveFigures['crypto'] {
  const piece = 32 * 1024;
  const buf = randomBytes(16 * MiB);
  const rate = (start: () => { update: (b: Buffer) => void; done: () => void }): number => {
    let best = 0;
    for (let pass = 0; pass < 3; pass++) {
      const run = start();
      const t0 = process.hrtime.bigint();
      for (let n = 0; n < 16; n++) for (let o = 0; o < buf.length; o += piece) run.update(buf.subarray(o, o + piece));
      run.done();
      best = Math.max(best, 256 / (elapsedMs(t0) / 1000));
    }
    return best;
  };
  const sha256MiBps = rate(() => {
    const hash = createHash('sha256');
    return { update: (b) => void hash.update(b), done: () => void hash.digest() };
  });
  const crc32MiBps = rate(() => {
    let crc = 0;
    return { update: (b) => void (crc = crc32(b, crc)), done: () => undefined };
  });
  const aes128gcmMiBps = rate(() => {
    const cipher = createCipheriv('aes-128-gcm', randomBytes(16), randomBytes(12));
    return { update: (b) => void cipher.update(b), done: () => void cipher.final() };
  });
  return { sha256MiBps, crc32MiBps, aes128gcmMiBps };
}

/** Events of move `id` from an inspect answer; throws when one is missing. */
export function moveEvents(events: InspectAnswer['events'], id: number): MoveEvents {
  const start = events.findIndex((e) => e.kind === 'move-requested' && (e.detail ?? '').endsWith(`(move ${id})`));
  if (start < 0) throw new Error(`no move-requested event for move ${id} in ${JSON.stringify(events)}`);
  const after = events.slice(start);
  const at = (kind: string, own = true): number | undefined => {
    const e = after.find((x) => x.kind === kind && (!own || x.detail === `move ${id}`));
    return e ? Date.parse(e.at) : undefined;
  };
  const final = at('move-final');
  const switched = at('move-switched', false);
  const done = at('move-done');
  if (final === undefined || switched === undefined || done === undefined) throw new Error(`move ${id} lacks events: ${JSON.stringify(after)}`);
  return { requested: Date.parse(events[start].at), releasing: at('move-releasing'), final, switched, done };
}

