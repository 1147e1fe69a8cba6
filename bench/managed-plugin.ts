import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_LABEL, BenchEnv, cleanupStep, DRIVER, progress } from './bench-env';
import { memoryOf, runTimedOk, type Memory } from './proc';
import { fmtMiB, fmtMs, fmtP50Mean, fmtRatio, summarize, type Summary } from './stats';
import { markdownTable } from './report';
import { REPO_ROOT } from '../test/e2e/ferry-process';
import { TEST_IMAGE } from '../test/support/docker';
import { cleanupDir, makeTempDir } from '../test/support/host';
import { buildAndPush, buildBase, installPlugin, LocalRegistry, pluginInfo, pluginPid, removePlugin } from '../test/support/managed-plugin';

/**
 * The managed (v2) plugin beside the legacy one (`ferry serve` on the host, BenchEnv's) and
 * Docker's `local` driver, through the docker CLI as a user types it: `docker volume create`,
 * `docker run --rm -v`, and each ferry's resident memory. The managed plugin is built here,
 * pushed to a registry on loopback and installed from it, as the e2e test does; those steps'
 * times are figures too.
 */

export interface ManagedPluginCounts {
  creates: number;
  runs: number;
}

export const FULL_MANAGED_COUNTS: ManagedPluginCounts = { creates: 20, runs: 10 };
export const QUICK_MANAGED_COUNTS: ManagedPluginCounts = { creates: 4, runs: 3 };

/** Its own alias, so that the bench never touches a ferry plugin that serves this host. */
const ALIAS = 'ferry-bench-managed';
const SIDES = ['local', 'legacy', 'managed'] as const;
type Side = (typeof SIDES)[number];
type Trio = Record<Side, Summary>;

export interface ManagedPluginFigures {
  counts: ManagedPluginCounts;
  /** Wall times of getting the plugin, in ms: the base image (0 when cached), build+push, install. */
  setup: { baseMs: number; baseCached: boolean; buildPushMs: number; installMs: number };
  cliCreate: Trio;
  cliRun: Trio;
  /** Resident memory of ferry's process: idle (after Activate) and after the run. */
  memory: { managedIdle: Memory; managed: Memory; legacyIdle: Memory; legacy: Memory };
}

export class ManagedPluginBench {
  aborted = false;
  private dir?: string;
  private registry?: LocalRegistry;
  private readonly tag = `mp${process.pid}`;

  constructor(
    private readonly env: BenchEnv,
    private readonly counts: ManagedPluginCounts,
  ) {}

  private driver(side: Side): string[] {
    if (side === 'local') return ['-d', 'local'];
    return ['-d', side === 'legacy' ? DRIVER : ALIAS, '-o', 'size=64M'];
  }

  private name(side: Side, i: number): string {
    return `${this.tag}-${side}-${String(i).padStart(2, '0')}`;
  }

  /** Times `fn` for the three sides, rotating which goes first, so that drift hits all alike. */
  private async trio(n: number, fn: (side: Side, i: number) => Promise<number>): Promise<Trio> {
    const t: Record<Side, number[]> = { local: [], legacy: [], managed: [] };
    for (let i = 0; i < n; i++) {
      if (this.aborted) throw new Error('interrupted');
      for (let k = 0; k < SIDES.length; k++) {
        const side = SIDES[(i + k) % SIDES.length];
        t[side].push(await fn(side, i));
      }
    }
    return { local: summarize(t.local), legacy: summarize(t.legacy), managed: summarize(t.managed) };
  }

  async run(): Promise<ManagedPluginFigures> {
    const c = this.counts;
    removePlugin(ALIAS, BENCH_LABEL);
    this.dir = makeTempDir('bench-managed');
    this.registry = await LocalRegistry.start(this.dir);
    progress('managed plugin: base image (debootstrap unless cached)');
    const base = buildBase(REPO_ROOT);
    const ref = `${this.registry.address}/ferry:${JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version}-bench`;
    progress(`managed plugin: build and push ${ref}`);
    const built = buildAndPush(REPO_ROOT, ref, `bench ${process.pid}`);
    progress(`managed plugin: docker plugin install ${ref} --alias ${ALIAS}`);
    const installStart = Date.now();
    // At debug, as BenchEnv's legacy ferry logs: both pay the same for their logging.
    installPlugin(ref, ALIAS, ['args=--log-level debug']);
    const installMs = Date.now() - installStart;
    if (!pluginInfo(ALIAS).Enabled) throw new Error(`${ALIAS} is installed but not enabled`);
    const pid = pluginPid(ALIAS);
    if (pid === undefined) throw new Error(`no ferry process runs in plugin ${ALIAS}`);
    // Activate waits for the backends (pool made, quotas on): the first create's answer says it is up.
    await runTimedOk(['docker', 'volume', 'create', '--label', BENCH_LABEL, ...this.driver('managed'), `${this.tag}-warm`]);
    const managedIdle = memoryOf(pid);
    const legacyIdle = memoryOf(this.env.ferryPid);

    progress(`docker volume create: ${c.creates} each, local, legacy and managed`);
    const cliCreate = await this.trio(c.creates, async (side, i) => {
      const name = this.name(side, i);
      if (side !== 'managed') this.env.dockerVolumes.add(name);
      return (await runTimedOk(['docker', 'volume', 'create', '--label', BENCH_LABEL, ...this.driver(side), name])).ms;
    });

    progress(`docker run --rm -v: ${c.runs} each, local, legacy and managed`);
    const runArgv = (side: Side): string[] => ['docker', 'run', '--rm', '--label', BENCH_LABEL, '-v', `${this.name(side, 0)}:/data`, TEST_IMAGE, 'true'];
    for (const side of SIDES) await runTimedOk(runArgv(side)); // warm-up
    const cliRun = await this.trio(c.runs, async (side) => (await runTimedOk(runArgv(side))).ms);

    const memory = { managedIdle, managed: memoryOf(pid), legacyIdle, legacy: memoryOf(this.env.ferryPid) };
    return {
      counts: c,
      setup: { baseMs: base.ms, baseCached: base.cached, buildPushMs: built.ms, installMs },
      cliCreate,
      cliRun,
      memory,
    };
  }

  /** Removes the managed plugin with its volumes, the registry and its storage. Idempotent. */
  async cleanup(): Promise<void> {
    await cleanupStep('managed plugin', 'plugin and its volumes', () => removePlugin(ALIAS, BENCH_LABEL));
    await cleanupStep('managed plugin', 'registry', async () => this.registry?.stop());
    await cleanupStep('managed plugin', 'temp dir', () => {
      if (this.dir) cleanupDir(this.dir);
    });
  }
}

/** The section's markdown: one row per figure, the three sides, and the managed plugin's ratios. */
export function renderManagedPlugin(f: ManagedPluginFigures): string {
  const row = (figure: string, t: Trio): string[] => [
    figure,
    fmtP50Mean(t.managed),
    fmtP50Mean(t.legacy),
    fmtP50Mean(t.local),
    fmtRatio(t.managed.p50 / t.local.p50),
    fmtRatio(t.managed.p50 / t.legacy.p50),
  ];
  const m = f.memory;
  const rss = (x: Memory): string => `${fmtMiB(x.rssKiB)} (anon ${fmtMiB(x.anonKiB)})`;
  const table = markdownTable(
    ['Figure', 'managed plugin', 'legacy (ferry serve on the host)', '`local`', 'managed / local (p50)', 'managed / legacy (p50)'],
    [
      row(`\`docker volume create\` (ferry: -o size=64M, btrfs; N=${f.counts.creates})`, f.cliCreate),
      row(`\`docker run --rm -v VOL:/data busybox true\` (N=${f.counts.runs})`, f.cliRun),
      ['ferry memory, idle: VmRSS', rss(m.managedIdle), rss(m.legacyIdle), 'inside dockerd', '—', fmtRatio(m.managedIdle.rssKiB / m.legacyIdle.rssKiB)],
      ['ferry memory, after the run: VmRSS · VmHWM', `${rss(m.managed)} · ${fmtMiB(m.managed.hwmKiB)}`, `${rss(m.legacy)} · ${fmtMiB(m.legacy.hwmKiB)}`, 'inside dockerd', '—', fmtRatio(m.managed.rssKiB / m.legacy.rssKiB)],
    ],
  );
  const s = f.setup;
  const setup =
    `Getting the managed plugin: base image ${s.baseCached ? `cached (${fmtMs(s.baseMs)})` : `debootstrap + import ${fmtMs(s.baseMs)}`}, ` +
    `build + push ${fmtMs(s.buildPushMs)}, \`docker plugin install\` from the registry ${fmtMs(s.installMs)}.`;
  return [table, '', setup].join('\n');
}
