import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalControl } from '../src/control/control';
import { openDb, type Db } from '../src/control/db';
import { readDashboard } from '../src/web/dashboard';
import { diffDashboard } from '../src/web/dashboard-view';
import { markdownTable } from './report';
import { fmtMs, summarize, type Summary } from './stats';

/** The dashboard's figures: what its once-a-second read costs beside a Docker List of the same volumes. */
export interface DashboardFigures {
  volumes: number;
  samples: number;
  /** The baseline: one List of every volume (what `docker volume ls` asks of control). */
  list: Summary;
  /** One read of the dashboard (every record it shows) and its diff against the read before. */
  read: Summary;
  /** Bytes of the first message (the whole view) and of a patch after one volume changed. */
  snapshotBytes: number;
  patchBytes: number;
}

/**
 * The dashboard's cost on control, in process (`ferry serve`'s LocalControl on a SQLite file): a
 * cluster of `volumes` volumes, a lease on every fifth, 20 ended moves and 50 events, read as the
 * feed reads it once a second while a page is open.
 */
export class DashboardBench {
  aborted = false;
  private dir?: string;
  private db?: Db;

  constructor(private readonly counts = { volumes: 1000, samples: 200 }) {}

  async run(): Promise<DashboardFigures> {
    this.dir = mkdtempSync(join(tmpdir(), 'ferry-bench-dashboard-'));
    const db = (this.db = openDb(join(this.dir, 'control.db')));
    const control = new LocalControl(db);
    for (const n of ['h1', 'h2', 'h3']) await control.registerNode({ name: n, address: `10.0.0.1:7401`, transferKey: 'ssh-ed25519 AAAAbenchkeybenchkey', bootId: n });
    for (let i = 0; i < this.counts.volumes; i++) {
      const name = `vol${i}`;
      await control.reserveVolume({ name, backend: 'btrfs', sizeBytes: 2 ** 30, options: {}, primaryNode: `h${(i % 3) + 1}` });
      await control.confirmVolume(name, `h${(i % 3) + 1}`);
      if (i % 5 === 0) await control.acquireLease({ volume: name, mountId: `m${i}`, node: `h${(i % 3) + 1}`, mountpoint: `/m/${name}`, generation: 1 });
    }
    for (let i = 0; i < 20; i++) {
      const m = await control.requestMove(`vol${i * 3 + 1}`, 'h3');
      await control.failMove(m.id, 'bench');
    }
    const source = { control };
    const list: number[] = [];
    const read: number[] = [];
    let last = await readDashboard(source);
    for (let i = 0; i < this.counts.samples && !this.aborted; i++) {
      let t = performance.now();
      await control.listVolumes();
      list.push(performance.now() - t);
      t = performance.now();
      const next = await readDashboard(source);
      diffDashboard(last, next);
      read.push(performance.now() - t);
      last = next;
    }
    const snapshotBytes = JSON.stringify(diffDashboard(undefined, last)).length;
    await control.recordUsage(new Map([['vol7', 123 * 2 ** 20]]));
    const patchBytes = JSON.stringify(diffDashboard(last, await readDashboard(source))).length;
    return { volumes: this.counts.volumes, samples: read.length, list: summarize(list), read: summarize(read), snapshotBytes, patchBytes };
  }

  async cleanup(): Promise<void> {
    this.db?.close();
    this.db = undefined;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The section's table: the read beside the List, as ratios, and what a page open costs per second. */
export function renderDashboard(f: DashboardFigures): string {
  const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
  return markdownTable(
    ['', 'p50', 'p99', 'beside a List (p50)'],
    [
      [`List of ${f.volumes} volumes (baseline)`, fmtMs(f.list.p50), fmtMs(f.list.p99), '1.0×'],
      ['dashboard read + diff (once a second while a page is open)', fmtMs(f.read.p50), fmtMs(f.read.p99), `${(f.read.p50 / f.list.p50).toFixed(1)}×`],
      ['share of one core while pages are open (p50 read / 1 s)', `${((100 * f.read.p50) / 1000).toFixed(2)}%`, '', ''],
      ['first message (the whole view) / a patch after one volume changed', kib(f.snapshotBytes), kib(f.patchBytes), ''],
    ],
  );
}
