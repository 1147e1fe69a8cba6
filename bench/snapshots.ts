import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, SnapshotCapable } from '../src/agent/backends/backend';
import { btrfsBackend } from '../src/agent/backends/btrfs/descriptor';
import { directoryBackend } from '../src/agent/backends/directory/descriptor';
import { loopBackend } from '../src/agent/backends/loop/descriptor';
import { DockerHost } from '../src/agent/docker-host';
import { ContainerQuiescer } from '../src/agent/quiesce';
import { CgroupFreezer, detectCgroupLayout } from '../src/agent/cgroup-freezer';
import { LocalControl } from '../src/control/control';
import { openDb } from '../src/control/db';
import { ProcessRunner } from '../src/exec/runner';
import { silentLogger } from '../src/log';
import { docker, dockerOk, TEST_IMAGE } from '../test/support/docker';
import { cleanupDir, makeTempDir } from '../test/support/host';
import { BENCH_LABEL, progress } from './bench-env';
import { markdownTable } from './report';
import { fmtRatio, fmtSummary, summarize, timed, type Summary } from './stats';

/**
 * quiesce (issue 7 item 2): what a consistent snapshot costs. Per backend, one volume mounted and
 * used by a container writing a counter every 10 ms (a Docker `local` volume bound onto the
 * backend's mountpoint, so that dockerd names the container as using it): the backend's own
 * snapshot (for btrfs one `btrfs subvolume snapshot -r`: the baseline), the same through ferry's
 * quiescer with `quiesce=none` (it lists the containers, none has hooks) and with `pause`, and how
 * long the container stayed paused; group: `pause` once more by the cgroup freezer directly (what
 * ferry does where it can reach it), beside dockerd's pause.
 */
export interface SnapshotFigures {
  backend: string;
  samples: number;
  bare: Summary;
  none: Summary;
  pause: Summary;
  paused: Summary;
  /** group: pause and paused with the cgroup freezer written directly; absent without one. */
  freezerPause?: Summary;
  freezerPaused?: Summary;
}

export class SnapshotsBench {
  aborted = false;
  private dir?: string;
  private readonly made: { backend: Backend; name: string; mountpoint: string; dockerVolume: string; container: string }[] = [];

  constructor(private readonly samples: number) {}

  async run(): Promise<SnapshotFigures[]> {
    const runner = new ProcessRunner(silentLogger());
    const log = silentLogger();
    this.dir = makeTempDir('bench-snapshots');
    const d = this.dir;
    const control = new LocalControl(openDb(':memory:'));
    const dockerHost = new DockerHost('/var/run/docker.sock', log);
    // dockerd's pause only (no freezer), and the cgroup freezer as serve sets it up.
    const quiescer = new ContainerQuiescer('bench', control, dockerHost, log);
    const layout = detectCgroupLayout();
    const frozen = layout && new ContainerQuiescer('bench', control, dockerHost, log, undefined, new CgroupFreezer(join(d, 'frozen.json'), layout, log));
    const backends: [string, () => Promise<Backend>, { sizeBytes?: number; fs?: string }][] = [
      ['btrfs', () => btrfsBackend.create({ poolFile: join(d, 'btrfs.img'), poolSize: '1G', poolMount: join(d, 'btrfs') }, runner, log), { sizeBytes: 64 * 2 ** 20 }],
      ['loop (ext4)', () => loopBackend.create({ dir: join(d, 'loop') }, runner, log), { sizeBytes: 64 * 2 ** 20, fs: 'ext4' }],
      ['directory', () => directoryBackend.create({ dir: join(d, 'directory') }, runner, log), {}],
    ];
    const out: SnapshotFigures[] = [];
    for (const [label, make, spec] of backends) {
      if (this.aborted) break;
      const backend = await make();
      await backend.init();
      const s = backend as Backend & SnapshotCapable;
      const kind = label.split(' ')[0];
      const name = `benchq-${kind}`;
      await backend.create(name, spec);
      const mountpoint = join(d, 'mnt', name);
      mkdirSync(mountpoint, { recursive: true });
      await backend.mount(name, mountpoint);
      const entry = { backend, name, mountpoint, dockerVolume: `ferry-bench-q-${kind}`, container: `ferry-bench-q-${kind}` };
      this.made.push(entry);
      dockerOk(['volume', 'create', '-d', 'local', '-o', 'type=none', '-o', 'o=bind', '-o', `device=${mountpoint}`, entry.dockerVolume]);
      const counter = 'i=0; while :; do i=$((i+1)); echo $i > /data/counter; usleep 10000; done';
      dockerOk(['run', '-d', '--name', entry.container, '--label', BENCH_LABEL, '-v', `${entry.dockerVolume}:/data`, TEST_IMAGE, 'sh', '-c', counter]);
      progress(`snapshots: ${label}: ${this.samples} snapshots each bare, quiesce=none and quiesce=pause, a container writing`);
      const bare: number[] = [];
      const none: number[] = [];
      const pause: number[] = [];
      const paused: number[] = [];
      const fPause: number[] = [];
      const fPaused: number[] = [];
      let n = 0;
      for (let i = 0; i < this.samples && !this.aborted; i++) {
        // Interleaved, so that a slow spell of the machine falls on all three alike.
        bare.push((await timed(() => s.snapshot(name, `b${n++}`))).ms);
        none.push((await timed(() => quiescer.aroundAll([entry.dockerVolume], 'none', () => s.snapshot(name, `b${n++}`)))).ms);
        const p = await timed(() => quiescer.aroundAll([entry.dockerVolume], 'pause', () => s.snapshot(name, `b${n++}`)));
        pause.push(p.ms);
        paused.push(p.value.report.pausedMs ?? NaN);
        if (frozen) {
          const f = await timed(() => frozen.aroundAll([entry.dockerVolume], 'pause', () => s.snapshot(name, `b${n++}`)));
          fPause.push(f.ms);
          fPaused.push(f.value.report.pausedMs ?? NaN);
        }
      }
      for (const snap of await s.listSnapshots(name)) await s.deleteSnapshot(name, snap).catch(() => undefined);
      out.push({ backend: label, samples: bare.length, bare: summarize(bare), none: summarize(none), pause: summarize(pause), paused: summarize(paused), ...(frozen && { freezerPause: summarize(fPause), freezerPaused: summarize(fPaused) }) });
    }
    return out;
  }

  async cleanup(): Promise<void> {
    for (const m of this.made.splice(0)) {
      docker(['rm', '-f', m.container]);
      docker(['volume', 'rm', '-f', m.dockerVolume]);
      const s = m.backend as Backend & SnapshotCapable;
      for (const snap of await s.listSnapshots(m.name).catch(() => [] as string[])) await s.deleteSnapshot(m.name, snap).catch(() => undefined);
      await m.backend.unmount(m.name, m.mountpoint).catch(() => undefined);
      await m.backend.destroy(m.name).catch(() => undefined);
    }
    if (this.dir) {
      cleanupDir(this.dir);
      this.dir = undefined;
    }
  }
}

/** The section's table: ferry's snapshot with and without a pause beside the backend's own. */
export function renderSnapshots(figures: SnapshotFigures[]): string {
  return markdownTable(
    ['backend', `backend's own snapshot (baseline; n=${figures[0]?.samples ?? 0})`, 'quiesce=none', 'quiesce=pause (dockerd)', 'pause ÷ baseline (p50)', 'paused for (dockerd)', 'quiesce=pause (cgroup freezer)', 'paused for (cgroup freezer)'],
    figures.map((f) => [
      f.backend,
      fmtSummary(f.bare),
      fmtSummary(f.none),
      fmtSummary(f.pause),
      fmtRatio(f.pause.p50 / f.bare.p50),
      fmtSummary(f.paused),
      f.freezerPause ? fmtSummary(f.freezerPause) : 'no freezer',
      f.freezerPaused ? fmtSummary(f.freezerPaused) : 'no freezer',
    ]),
  );
}
