import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryProcess } from '../test/e2e/ferry-process';
import { waitFor } from '../test/support/docker';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../test/support/host';
import { cleanupStep, eachLimited, progress } from './bench-env';
import { cpuOf } from './cpu';
import { elapsedMs, fmtMs, fmtRatio, seededRandom, summarize, type Summary } from './stats';
import { PluginClient } from './unix-client';

/** How many of each; `--quick` shrinks them for a smoke run. */
export interface MetricsCounts {
  /** btrfs volumes in each ferry (Get of a random one). */
  volumes: number;
  /** Gets timed on each ferry. */
  gets: number;
}

export const FULL_METRICS_COUNTS: MetricsCounts = { volumes: 200, gets: 3000 };
export const QUICK_METRICS_COUNTS: MetricsCounts = { volumes: 20, gets: 300 };

/** Every figure of the section, in milliseconds. */
export interface MetricsFigures {
  counts: MetricsCounts;
  /** Get on a ferry with web.listen off: nothing counted, nothing served. */
  off: Summary;
  /** Get on a ferry with metrics on, its /metrics scraped every second while the Gets run. */
  on: Summary;
  /** The scrapes made meanwhile: their latency, and the size of one answer. */
  scrape: Summary;
  scrapeBytes: number;
  /**
   * CPU time (user + system) of each ferry process over the timed phase: the same Gets on both, so the
   * difference is what counting and the scrapes cost, a figure that the machine's other load does not blur.
   */
  cpuMs: { off: number; on: number };
}

/** The URL ferry's web listener logged ("web listening"), once it has. */
function webUrlOf(logFile: string): string | undefined {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"web listening"')) continue;
    return (JSON.parse(line) as { url: string }).url;
  }
  return undefined;
}

/**
 * The cost of metrics (issue 10): Get's p50 and p99 on two `ferry serve` processes side by side,
 * one with web.listen off (no metrics at all) and one with metrics on and scraped every second, as
 * Prometheus would (more often than its usual 15 s). The Gets alternate between the two, the first
 * of each pair swapping, so that whatever else the machine does falls on both alike. No dockerd.
 */
export class MetricsBench {
  aborted = false;
  private readonly dir = makeTempDir('bench-metrics');
  private readonly off = new FerryProcess(join(this.dir, 'off'), join(this.dir, 'off', 'plugin.sock'), [], 'off');
  private readonly on = new FerryProcess(join(this.dir, 'on'), join(this.dir, 'on', 'plugin.sock'));
  private clients: PluginClient[] = [];
  private cleaning?: Promise<void>;

  constructor(private readonly counts: MetricsCounts) {
    requireRootAndTools('btrfs', 'mkfs.btrfs');
  }

  async run(): Promise<MetricsFigures> {
    const c = this.counts;
    progress(`metrics: starting two ferry serve processes (web.listen off, and on) under ${this.dir}`);
    for (const f of [this.off, this.on]) mkdirSync(f.dir, { recursive: true });
    await Promise.all([this.off.start(), this.on.start()]);
    const [off, on] = (this.clients = [new PluginClient(this.off.pluginSocket, true), new PluginClient(this.on.pluginSocket, true)]);
    let url: string | undefined;
    await waitFor('the web listener of the ferry with metrics', () => (url = webUrlOf(this.on.logFile)) !== undefined);
    const metricsUrl = `${url!}/metrics`;
    progress(`metrics: ${c.volumes} btrfs volumes in each`);
    const names = Array.from({ length: c.volumes }, (_, i) => `bench-metrics-${String(i).padStart(4, '0')}`);
    for (const client of [off, on]) {
      await eachLimited(names, 2, (n) => {
        this.check();
        return client.call('/VolumeDriver.Create', { Name: n, Opts: { size: '64M' } });
      });
    }
    const rand = seededRandom(7);
    const pick = (): string => names[Math.floor(rand() * names.length)];
    for (let i = 0; i < 100; i++) await Promise.all([off.call('/VolumeDriver.Get', { Name: pick() }), on.call('/VolumeDriver.Get', { Name: pick() })]); // warm-up

    progress(`metrics: ${c.gets} Gets on each, alternating, while ${metricsUrl} is scraped every second`);
    const scrapes: number[] = [];
    let scrapeBytes = 0;
    let scraping = true;
    const scraper = (async () => {
      while (scraping) {
        const start = process.hrtime.bigint();
        const r = await fetch(metricsUrl);
        const text = await r.text();
        if (r.status !== 200) throw new Error(`GET ${metricsUrl} answered ${r.status}: ${text.slice(0, 200)}`);
        scrapes.push(elapsedMs(start));
        scrapeBytes = Buffer.byteLength(text);
        await new Promise((res) => setTimeout(res, 1000));
      }
    })();
    const times: { off: number[]; on: number[] } = { off: [], on: [] };
    const cpu = (): { off: number; on: number } => ({ off: cpuOf(this.off.pid!).selfMs, on: cpuOf(this.on.pid!).selfMs });
    const cpuBefore = cpu();
    const timed = async (which: 'off' | 'on'): Promise<void> => {
      const start = process.hrtime.bigint();
      await (which === 'off' ? off : on).call('/VolumeDriver.Get', { Name: pick() });
      times[which].push(elapsedMs(start));
    };
    try {
      for (let i = 0; i < c.gets; i++) {
        this.check();
        const order: ('off' | 'on')[] = i % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
        for (const w of order) await timed(w);
      }
    } finally {
      scraping = false;
      await scraper;
    }
    const cpuAfter = cpu();
    const cpuMs = { off: cpuAfter.off - cpuBefore.off, on: cpuAfter.on - cpuBefore.on };
    return { counts: c, off: summarize(times.off), on: summarize(times.on), scrape: summarize(scrapes), scrapeBytes, cpuMs };
  }

  private check(): void {
    if (this.aborted) throw new Error('interrupted');
  }

  /** Stops both ferries and removes their data dirs (pools, mounts). Idempotent. */
  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      for (const c of this.clients) c.close();
      for (const f of [this.off, this.on]) await cleanupStep('metrics cleanup', `ferry ${f.webListen}`, () => f.kill('SIGTERM'));
      await cleanupStep('metrics cleanup', 'data dirs', () => cleanupDir(this.dir));
    })();
    return this.cleaning;
  }
}

/** The section's table: Get with metrics off and on, as ratios, and what a scrape costs. */
export function renderMetrics(f: MetricsFigures): string {
  const row = (label: string, s: Summary): string =>
    `| ${label} | ${fmtMs(s.p50)} | ${fmtMs(s.p99)} | ${fmtRatio(s.p50 / f.off.p50)} | ${fmtRatio(s.p99 / f.off.p99)} |`;
  return [
    `Get of one of ${f.counts.volumes} btrfs volumes, ${f.counts.gets} on each ferry, alternating (aim: no measurable difference).`,
    '',
    '| Get | p50 | p99 | p50 ratio | p99 ratio |',
    '|---|---|---|---|---|',
    row('metrics off (web.listen off)', f.off),
    row('metrics on, /metrics scraped every second', f.on),
    '',
    `A scrape meanwhile (${f.scrape.n}, ${(f.scrapeBytes / 1024).toFixed(1)} KiB each): p50 ${fmtMs(f.scrape.p50)} · p99 ${fmtMs(f.scrape.p99)}. ` +
      `CPU of each ferry over the timed Gets: off ${f.cpuMs.off} ms, on ${f.cpuMs.on} ms (${fmtRatio(f.cpuMs.on / f.cpuMs.off)}; ` +
      `about ${fmtMs((f.cpuMs.on - f.cpuMs.off) / Math.max(1, f.scrape.n))} per scrape, counting included).`,
  ].join('\n');
}
