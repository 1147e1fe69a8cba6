import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, UsageCapable } from '../src/agent/backends/backend';
import { btrfsBackend } from '../src/agent/backends/btrfs/descriptor';
import { directoryBackend } from '../src/agent/backends/directory/descriptor';
import { loopBackend } from '../src/agent/backends/loop/descriptor';
import { ProcessRunner } from '../src/exec/runner';
import { silentLogger } from '../src/log';
import { cleanupDir, makeTempDir } from '../test/support/host';
import { progress } from './bench-env';
import { markdownTable } from './report';
import { fmtRatio, fmtSummary, summarize, timed, type Summary } from './stats';

/**
 * What measuring used bytes at Create costs (so that `docker volume inspect` shows them at once):
 * per backend, a Create beside the one-volume measurement that now runs after it (beside the
 * answer: Create does not wait, the first Get of the volume does), and that measurement beside the
 * periodic pass over every volume. Backends made straight from their descriptors in a
 * temp dir (a 1 GiB btrfs pool file, loop ext4 images and directories on the temp dir's disk).
 */
export interface CreateUsageFigures {
  backend: string;
  volumes: number;
  create: Summary;
  usageOfOne: Summary;
  usageOfAll: Summary;
}

export class CreateUsageBench {
  aborted = false;
  private dir?: string;
  private readonly made: { backend: Backend; names: string[] }[] = [];

  constructor(private readonly volumes: number) {}

  async run(): Promise<CreateUsageFigures[]> {
    const runner = new ProcessRunner(silentLogger());
    const log = silentLogger();
    this.dir = makeTempDir('bench-create-usage');
    const d = this.dir;
    const backends: [string, () => Promise<Backend>, { sizeBytes?: number; fs?: string }][] = [
      ['btrfs', () => btrfsBackend.create({ poolFile: join(d, 'btrfs.img'), poolSize: '1G', poolMount: join(d, 'btrfs') }, runner, log), { sizeBytes: 16 * 2 ** 20 }],
      ['loop (ext4)', () => loopBackend.create({ dir: join(d, 'loop') }, runner, log), { sizeBytes: 16 * 2 ** 20, fs: 'ext4' }],
      ['directory', () => directoryBackend.create({ dir: join(d, 'directory') }, runner, log), {}],
    ];
    const out: CreateUsageFigures[] = [];
    for (const [label, make, spec] of backends) {
      if (this.aborted) break;
      mkdirSync(d, { recursive: true });
      const backend = await make();
      await backend.init();
      const u = backend as Backend & UsageCapable;
      const entry = { backend, names: [] as string[] };
      this.made.push(entry);
      const create: number[] = [];
      const one: number[] = [];
      const all: number[] = [];
      progress(`create-usage: ${label}: ${this.volumes} creates, each measured alone, and a pass over all`);
      for (let i = 0; i < this.volumes && !this.aborted; i++) {
        const name = `bench${i}`;
        create.push((await timed(() => backend.create(name, spec))).ms);
        entry.names.push(name);
        one.push((await timed(() => u.usage([name]))).ms);
        // The periodic pass, over however many volumes exist by now (every tenth create: it grows).
        if (i % 10 === 9) all.push((await timed(() => u.usage())).ms);
      }
      out.push({ backend: label, volumes: this.volumes, create: summarize(create), usageOfOne: summarize(one), usageOfAll: summarize(all) });
    }
    return out;
  }

  async cleanup(): Promise<void> {
    for (const { backend, names } of this.made.splice(0)) {
      for (const n of names) await backend.destroy(n).catch(() => undefined);
      await (backend as { close?: () => Promise<void> }).close?.().catch(() => undefined);
    }
    if (this.dir) {
      // The btrfs pool stays mounted until unmounted: cleanupDir unmounts what is under the dir.
      cleanupDir(this.dir);
      this.dir = undefined;
    }
  }
}

/** The section's table: the added cost as a share of a Create. */
export function renderCreateUsage(figures: CreateUsageFigures[]): string {
  return markdownTable(
    ['backend', `Create (n=${figures[0]?.volumes ?? 0})`, 'measuring the new volume (beside Create; a Get waits for it)', 'measuring ÷ Create (p50)', 'periodic pass over all (every 10th create)'],
    figures.map((f) => [f.backend, fmtSummary(f.create), fmtSummary(f.usageOfOne), fmtRatio(f.usageOfOne.p50 / f.create.p50), fmtSummary(f.usageOfAll)]),
  );
}
