import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Backend, MovableBackend } from '../src/agent/backends/backend';
import { btrfsBackend } from '../src/agent/backends/btrfs/descriptor';
import { loopBackend } from '../src/agent/backends/loop/descriptor';
import { zfsBackend } from '../src/agent/backends/zfs/descriptor';
import { ProcessRunner } from '../src/exec/runner';
import { silentLogger } from '../src/log';
import { BackendSlots } from '../src/agent/backend-slots';
import type { BackendKind } from '../src/agent/backends/registry';
import { KeyedLock } from '../src/agent/keyed-lock';
import { Snapshots } from '../src/agent/snapshots';
import { LocalControl } from '../src/control/control';
import { openDb } from '../src/control/db';
import { cleanupDir, makeLoopFs, makeTempDir } from '../test/support/host';
import { destroyPools, testPoolName, zfsMissing } from '../test/support/zfs';
import { progress } from './bench-env';
import { MiB, writeRandomFiles } from './random-files';
import { markdownTable } from './report';
import { elapsedMs, fmtMs, fmtRatio, summarize, type Summary } from './stats';
import { lvmBenchBackend } from './lvm-backend';

/**
 * The backends side by side, through their Backend objects (no plugin, no dockerd), each on two
 * fresh pools of its own on this machine: Create, Mount+Unmount, snapshot, a full stream of 1 GiB
 * and a 10 MiB increment from one pool into the other (send | receive in this process, in ferry's
 * envelope). Ratios are to btrfs, measured in the same run.
 */

const runner = new ProcessRunner(silentLogger());
const log = silentLogger();

/** One backend under the bench: how to make a pool of it in `dir`, and what to remove besides `dir`. */
export interface BenchBackend {
  label: string;
  /** What this machine lacks for it, in words; [] when it can run. */
  missing(): string[];
  /** Size of the streamed volume's limit (the pool must fit 1 GiB of data plus a little). */
  spec: { sizeBytes: number; fs?: string };
  make(dir: string): Promise<MovableBackend>;
  cleanup(): void;
}

const zfsPools: string[] = [];

/** The list; the first is the baseline of the ratios. Another backend adds one entry. */
export const BENCH_BACKENDS: BenchBackend[] = [
  {
    label: 'btrfs',
    missing: () => [],
    spec: { sizeBytes: 1536 * MiB },
    async make(dir) {
      const b = await btrfsBackend.create({ poolFile: join(dir, 'pool.img'), poolSize: '3G', poolMount: join(dir, 'pool') }, runner, log);
      await b.init();
      return b as MovableBackend;
    },
    cleanup: () => undefined,
  },
  {
    label: 'loop ext4',
    missing: () => [],
    spec: { sizeBytes: 1536 * MiB, fs: 'ext4' },
    async make(dir) {
      makeLoopFs(`${dir}.img`, join(dir, 'fs'), 8 * 1024 * MiB, 'ext4');
      const b = await loopBackend.create({ dir: join(dir, 'fs', 'loop') }, runner, log);
      await b.init();
      return b as MovableBackend;
    },
    cleanup: () => undefined,
  },
  {
    label: 'zfs (zfs-fuse)',
    missing: zfsMissing,
    spec: { sizeBytes: 1536 * MiB },
    async make(dir) {
      const pool = testPoolName();
      zfsPools.push(pool);
      const b = await zfsBackend.create({ poolName: pool, poolFile: join(dir, 'pool.img'), poolSize: '3G', workDir: join(dir, 'work') }, runner, log);
      await b.init();
      return b as MovableBackend;
    },
    cleanup: () => destroyPools(zfsPools.splice(0)),
  },
  // Only where device-mapper is: on this project's machines, in the VM (scripts/vm/lvm-tests.sh --bench).
  lvmBenchBackend,
];

export interface BackendFigures {
  label: string;
  create: Summary;
  mountUnmount: Summary;
  snapshot: Summary;
  /** snap: `ferry snapshot create`'s work in the agent (Snapshots.take: the backend's snapshot, recorded in control's registry). */
  ferrySnapshot: Summary;
  fullStreamMs: number;
  fullStreamBytes: number;
  incrementMs: number;
  incrementBytes: number;
}

export interface BackendsCounts {
  creates: number;
  mounts: number;
  snapshots: number;
  streamBytes: number;
  incrementBytes: number;
}
export const FULL_BACKENDS_COUNTS: BackendsCounts = { creates: 20, mounts: 20, snapshots: 20, streamBytes: 1024 * MiB, incrementBytes: 10 * MiB };
export const QUICK_BACKENDS_COUNTS: BackendsCounts = { creates: 5, mounts: 5, snapshots: 5, streamBytes: 64 * MiB, incrementBytes: 4 * MiB };

async function timeEach(n: number, fn: (i: number) => Promise<void>): Promise<Summary> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    ms.push(elapsedMs(t));
  }
  return summarize(ms);
}

/** Streams snapshot `snap` (changes since `base`) of `name` from `a` into `b`; its time and bytes. */
async function stream(a: MovableBackend, b: MovableBackend, name: string, snap: string, base?: string): Promise<{ ms: number; bytes: number }> {
  let bytes = 0;
  // Counted as it passes, not by a 'data' listener: that would make it flow before receive reads it.
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const t = process.hrtime.bigint();
  const received = b.receive(name, snap, counter);
  await Promise.all([pipeline(a.send(name, snap, base), counter), received]);
  return { ms: elapsedMs(t), bytes };
}

export class BackendsBench {
  aborted = false;
  private dir = '';

  constructor(private readonly counts: BackendsCounts) {}

  async run(): Promise<{ figures: BackendFigures[]; skipped: string[] }> {
    const figures: BackendFigures[] = [];
    const skipped: string[] = [];
    for (const bb of BENCH_BACKENDS) {
      const missing = bb.missing();
      if (missing.length > 0) {
        skipped.push(`${bb.label} (lacks ${missing.join(', ')})`);
        continue;
      }
      if (this.aborted) break;
      progress(`backends: ${bb.label}`);
      this.dir = makeTempDir(`bench-${bb.label.replace(/\W+/g, '-')}`);
      try {
        figures.push(await this.one(bb));
      } finally {
        await this.cleanup();
      }
    }
    return { figures, skipped };
  }

  private async one(bb: BenchBackend): Promise<BackendFigures> {
    const a = await bb.make(join(this.dir, 'a'));
    const b = await bb.make(join(this.dir, 'b'));
    const mnt = join(this.dir, 'mnt');
    mkdirSync(mnt);
    const small = { ...bb.spec, sizeBytes: bb.spec.fs === 'xfs' ? 300 * MiB : 64 * MiB };
    const create = await timeEach(this.counts.creates, (i) => a.create(`c${i}`, small));
    await a.create('m', small);
    const mountUnmount = await timeEach(this.counts.mounts, async () => {
      await a.mount('m', mnt);
      await a.unmount('m', mnt);
    });
    await a.mount('m', mnt);
    writeFileSync(join(mnt, 'f'), 'x');
    const snapshot = await timeEach(this.counts.snapshots, (i) => a.snapshot('m', `s${i}`));
    // snap: the same through the agent part that ferry snapshot create calls, control in process.
    const control = new LocalControl(openDb(':memory:'));
    const slots = new BackendSlots('bench', control);
    slots.set(a.kind as BackendKind, { backend: a });
    await control.reserveVolume({ name: 'm', backend: a.kind, options: {}, primaryNode: 'bench' });
    await control.confirmVolume('m', 'bench');
    const snapshots = new Snapshots('bench', control, slots, new KeyedLock(), silentLogger());
    const ferrySnapshot = await timeEach(this.counts.snapshots, async (i) => void (await snapshots.take('m', { name: `f${i}`, origin: 'manual' })));
    await a.unmount('m', mnt);

    await a.create('big', bb.spec);
    await a.mount('big', mnt);
    await writeRandomFiles(mnt, this.counts.streamBytes);
    await a.unmount('big', mnt);
    await a.snapshot('big', 'full');
    const full = await stream(a, b, 'big', 'full');
    await a.mount('big', mnt);
    await writeRandomFiles(join(mnt, 'more'), this.counts.incrementBytes);
    await a.unmount('big', mnt);
    await a.snapshot('big', 'incr');
    const incr = await stream(a, b, 'big', 'incr', 'full');
    for (const x of [a, b] as Backend[]) {
      for (const v of await x.list()) await x.destroy(v);
    }
    return {
      label: bb.label,
      create,
      mountUnmount,
      snapshot,
      ferrySnapshot,
      fullStreamMs: full.ms,
      fullStreamBytes: full.bytes,
      incrementMs: incr.ms,
      incrementBytes: incr.bytes,
    };
  }

  async cleanup(): Promise<void> {
    for (const bb of BENCH_BACKENDS) bb.cleanup();
    if (this.dir) cleanupDir(this.dir);
    this.dir = '';
  }
}

/** One table: a row per figure, a column per backend, each with its ratio to the first backend. */
export function renderBackends(figures: readonly BackendFigures[], counts: BackendsCounts): string {
  if (figures.length === 0) return '(no backend could run)';
  const base = figures[0];
  const cell = (ms: number, baseMs: number, f: BackendFigures): string => (f === base ? fmtMs(ms) : `${fmtMs(ms)} (${fmtRatio(ms / baseMs)})`);
  const rows: [string, (f: BackendFigures) => number][] = [
    [`Create 64M, p50 (N=${counts.creates})`, (f) => f.create.p50],
    [`Mount+Unmount, p50 (N=${counts.mounts})`, (f) => f.mountUnmount.p50],
    [`snapshot, p50 (N=${counts.snapshots})`, (f) => f.snapshot.p50],
    [`snapshot, p99`, (f) => f.snapshot.p99],
    [`ferry snapshot create (recorded), p50`, (f) => f.ferrySnapshot.p50],
    [`ferry snapshot create (recorded), p99`, (f) => f.ferrySnapshot.p99],
    [`full stream ${counts.streamBytes / MiB} MiB, pool to pool`, (f) => f.fullStreamMs],
    [`increment ${counts.incrementBytes / MiB} MiB, pool to pool`, (f) => f.incrementMs],
  ];
  return markdownTable(
    ['Figure', ...figures.map((f) => (f === base ? `${f.label} (baseline)` : `${f.label} (× ${base.label})`))],
    rows.map(([label, get]) => [label, ...figures.map((f) => cell(get(f), get(base), f))]),
  );
}
