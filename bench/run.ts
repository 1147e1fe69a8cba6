/**
 * `npm run bench`: ferry's benchmarks. Prints markdown tables (figures beside their aims and beside
 * what a user would otherwise do) and one JSON line per section with every raw figure, on stdout;
 * progress goes to stderr. Never fails on a missed aim: it measures and prints.
 *
 *   node dist/bench/run.js            the full run: the single-host section, then the move section
 *   node dist/bench/run.js --quick    fewer samples and only the smallest move, to check that it works
 *   ... --only single-host            one section alone (or --only moves, --only replication, --only dashboard, --only metrics, --only managed-plugin, --only failover,
 *                                     --only backends:
 *                                     every backend's Create, Mount, snapshot and streams side by side,
 *                                     --only create-usage: what measuring used bytes at Create costs,
 *                                     --only snapshots: snapshot time with and without quiesce=pause, and the pause,
 *                                     --only transfer: the data path of moves alone, envelope versions side by side,
 *                                     --only bank-format: the bank's chunker, chunk ids and sealing in memory,
 *                                     --only bank: backups to a bank beside restic (file:// and Swift s3api))
 *   ... --move-sizes 256M,1G,4G       volume sizes of the move section (default 256M,1G; 4G adds about
 *                                     three minutes on 2 cores and 20 GB of disk while it runs)
 *   ... --drop-caches                 the move section drops the page cache before every timed run, so
 *                                     that rsync too reads the volume from disk, as ferry's snapshot does
 *   ... --keep-log FILE               keep a copy of ferry's debug log (the data dir is removed); the
 *                                     move section's logs go to FILE.moves-{control,h1,h2}.log
 *
 * Each section is one class with a `run()` that returns its figures and a `cleanup()` that removes
 * whatever it made, also on failure and on SIGINT/SIGTERM. The managed-plugin section (managed-plugin.ts)
 * builds ferry's managed plugin, installs it from a registry on loopback and times it beside a
 * legacy `ferry serve` of its own and Docker's `local` driver. The move section (move.ts) needs the one
 * test cluster this machine fits: while another live run owns it, it waits (up to 15 minutes).
 */
import { SnapshotsBench, renderSnapshots } from './snapshots';
import { BankBench, renderBank } from './bank';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { BankFormatBench, renderBankFormat } from './bank-format';
import { BackendsBench, FULL_BACKENDS_COUNTS, QUICK_BACKENDS_COUNTS, renderBackends } from './backends';
import { BenchEnv, progress } from './bench-env';
import { CreateUsageBench, renderCreateUsage } from './create-usage';
import { DashboardBench, renderDashboard } from './dashboard';
import { FailoverBench, renderFailover } from './failover';
import { profilePhases, readLog } from './ferry-log';
import { MoveBench } from './move';
import { ReplicationBench, renderReplication } from './replication';
import { ALL_MOVE_SIZES, DEFAULT_MOVE_SIZES, parseMoveSizes } from './move-figures';
import { renderMoves } from './move-report';
import { FULL_MANAGED_COUNTS, ManagedPluginBench, QUICK_MANAGED_COUNTS, renderManagedPlugin } from './managed-plugin';
import { FULL_METRICS_COUNTS, MetricsBench, QUICK_METRICS_COUNTS, renderMetrics } from './metrics';
import { memoryOf, type Memory } from './proc';
import { renderTransferPath, TransferPathBench } from './transfer-path';
import { renderGroups } from './report';
import { FULL_COUNTS, SingleHostBench, type SingleHostCounts } from './single-host';
import { memoryTraceLine, profileTable, singleHostGroups } from './single-host-report';
import { FULL_VERSUS_COUNTS, VersusLocalBench, type VersusLocalCounts } from './versus-local';

const QUICK_COUNTS: { single: SingleHostCounts; versus: VersusLocalCounts } = {
  single: { btrfsVolumes: 100, perOtherBackend: 5, gets: 200, freshGets: 20, lists: 10, mountRoundTrips: 5 },
  versus: { localVolumes: 100, apiLists: 5, apiGets: 20, cliCreates: 4, cliRuns: 3 },
};

function version(argv: string[]): string {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

interface Machine {
  kernel: string;
  cpus: number;
  cpu: string;
  node: string;
  dockerd: string;
  btrfsProgs: string;
}

function machine(): Machine {
  return {
    kernel: version(['uname', '-r']),
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    dockerd: version(['docker', 'version', '--format', '{{.Server.Version}}']),
    btrfsProgs: version(['btrfs', '--version']),
  };
}

function dockerdMemory(): Memory | undefined {
  try {
    const pidFile = '/var/run/docker.pid';
    return existsSync(pidFile) ? memoryOf(Number(readFileSync(pidFile, 'utf8').trim())) : undefined;
  } catch {
    return undefined;
  }
}

/** The value after `flag`, or undefined. */
function option(flag: string): string | undefined {
  const at = process.argv.indexOf(flag);
  return at > 0 ? process.argv[at + 1] : undefined;
}

/** Whatever a running section must remove when the run is interrupted. */
interface Section {
  aborted: boolean;
  cleanup(): Promise<void>;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const keepLog = option('--keep-log');
  const only = option('--only');
  const SECTIONS = ['single-host', 'managed-plugin', 'moves', 'dashboard', 'backends', 'create-usage', 'metrics', 'transfer', 'snapshots', 'replication', 'failover', 'bank-format', 'bank'];
  if (only !== undefined && !SECTIONS.includes(only)) throw new Error(`--only takes one of ${SECTIONS.join(', ')}, not ${only}`);
  const moveSizes = option('--move-sizes') ?? (quick ? '256M' : DEFAULT_MOVE_SIZES);
  let running: Section | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: stopping and cleaning up`);
    if (!running) process.exit(130);
    running.aborted = true;
    void running.cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A reader that goes away (`| head`) must not kill the run before it has cleaned up.
  process.stdout.on('error', () => undefined);

  // The bank format's own costs (issue 8): chunker, chunk ids, sealing inline beside worker threads.
  if (only === undefined || only === 'bank-format') {
    const bench = new BankFormatBench(quick ? 64 : 256, quick ? 1 : 3);
    running = bench;
    try {
      const figures = await bench.run();
      const date = new Date().toISOString();
      process.stdout.write(
        [`### the bank format in memory${quick ? ' (--quick)' : ''}`, '', `${date.slice(0, 10)} · ${cpus().length} × ${cpus()[0]?.model ?? 'unknown'} · load average (1 min) ${loadavg()[0].toFixed(2)}`, '', renderBankFormat(figures), ''].join('\n') + '\n',
      );
      process.stdout.write(JSON.stringify({ bench: 'ferry-bank-format', date, quick, bankFormat: figures }) + '\n');
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  // quiesce (issue 7 item 2): snapshot create time with and without quiesce=pause, and the pause.
  if (only === undefined || only === 'snapshots') {
    const bench = new SnapshotsBench(quick ? 10 : 100);
    running = bench;
    try {
      const figures = await bench.run();
      const date = new Date().toISOString();
      process.stdout.write(
        [`### consistent snapshots: what quiesce=pause costs${quick ? ' (--quick)' : ''}`, '', `${date.slice(0, 10)} · load average (1 min) ${loadavg()[0].toFixed(2)}`, '', renderSnapshots(figures), ''].join('\n') + '\n',
      );
      process.stdout.write(JSON.stringify({ bench: 'ferry-snapshots', date, quick, snapshots: figures }) + '\n');
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  // The bank (issue 8): ferry beside restic, file:// and Swift s3api banks.
  if (only === undefined || only === 'bank') {
    const bench = new BankBench(quick ? 256 * 2 ** 20 : 2 ** 30);
    running = bench;
    try {
      const figures = await bench.run();
      const date = new Date().toISOString();
      const m = machine();
      process.stdout.write(
        [
          `### The bank: ferry beside restic${quick ? ' (--quick)' : ''}`,
          '',
          `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Node ${m.node} · ${figures.resticVersion} · ` +
            `${(figures.treeBytes / 2 ** 30).toFixed(2)} GiB in ${figures.files} files (text-like, logs, incompressible), ` +
            `${(figures.changedBytes / 2 ** 20).toFixed(1)} MiB changed before the second backup · ferry through the library (bench/bank-worker.ts), ` +
            `each tool its own process under /usr/bin/time -v · load average (1 min) ${loadavg()[0].toFixed(2)}`,
          '',
          renderBank(figures),
        ].join('\n') + '\n',
      );
      process.stdout.write(JSON.stringify({ bench: 'ferry-bank', date, quick, machine: m, bank: figures }) + '\n');
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'create-usage') {
    const bench = new CreateUsageBench(quick ? 20 : 100);
    running = bench;
    try {
      const figures = await bench.run();
      const date = new Date().toISOString();
      process.stdout.write(
        [`### used bytes at Create: what it adds${quick ? ' (--quick)' : ''}`, '', `${date.slice(0, 10)} · load average (1 min) ${loadavg()[0].toFixed(2)}`, '', renderCreateUsage(figures), ''].join('\n') + '\n',
      );
      process.stdout.write(JSON.stringify({ bench: 'ferry-create-usage', date, quick, createUsage: figures }) + '\n');
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'transfer') {
    const bench = new TransferPathBench(quick ? 256 * 2 ** 20 : 2 ** 30, quick ? 1 : 3);
    running = bench;
    try {
      const loadAtStart = loadavg()[0];
      const figures = await bench.run();
      const date = new Date().toISOString();
      const m = { ...machine(), loadAverage1m: `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end` };
      process.stdout.write(
        [
          `### The data path of moves and replication${quick ? ' (--quick)' : ''}`,
          '',
          `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Node ${m.node} · ${(figures.bytes / 2 ** 30).toFixed(2)} GiB of zeros from \`dd\` into \`dd\`, ` +
            `sender and receiver two processes on loopback, each path in turn per round · load average (1 min) ${m.loadAverage1m}`,
          '',
          renderTransferPath(figures),
          '',
        ].join('\n') + '\n',
      );
      process.stdout.write(JSON.stringify({ bench: 'ferry-transfer-path', date, quick, machine: m, transferPath: figures }) + '\n');
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'dashboard') {
    const bench = new DashboardBench(quick ? { volumes: 1000, samples: 20 } : undefined);
    running = bench;
    try {
      await dashboard(bench);
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'single-host') {
    const env = await BenchEnv.start();
    running = env;
    try {
      if (interrupted) throw new Error('interrupted');
      await singleHost(env, quick, keepLog);
    } finally {
      await env.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'metrics') {
    if (interrupted) throw new Error('interrupted');
    const bench = new MetricsBench(quick ? QUICK_METRICS_COUNTS : FULL_METRICS_COUNTS);
    running = bench;
    try {
      await metrics(bench, quick);
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'managed-plugin') {
    if (interrupted) throw new Error('interrupted');
    // A legacy ferry of its own: the single-host section's leaves 1,000 volumes behind in its.
    const env = await BenchEnv.start();
    const bench = new ManagedPluginBench(env, quick ? QUICK_MANAGED_COUNTS : FULL_MANAGED_COUNTS);
    const both: Section = {
      // An interrupt stops the section between two commands.
      get aborted() {
        return bench.aborted;
      },
      set aborted(v: boolean) {
        bench.aborted = v;
        env.aborted = v;
      },
      cleanup: async () => {
        await bench.cleanup();
        await env.cleanup();
      },
    };
    running = both;
    try {
      await managedPlugin(bench, quick);
    } finally {
      await both.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'backends') {
    if (interrupted) throw new Error('interrupted');
    const bench = new BackendsBench(quick ? QUICK_BACKENDS_COUNTS : FULL_BACKENDS_COUNTS);
    running = bench;
    try {
      await backends(bench, quick);
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  // replicate: standby lag under writes beside a cron-driven btrfs send | ssh receive.
  if (only === undefined || only === 'replication') {
    if (interrupted) throw new Error('interrupted');
    const bench = new ReplicationBench(quick ? [5 * 2 ** 20] : [5 * 2 ** 20, 20 * 2 ** 20], quick ? 15 : 60);
    running = bench;
    try {
      await replication(bench, quick);
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  // fence: failover RTO and data lost beside Swarm's own reschedule (the test cluster, about 4 minutes).
  if (only === undefined || only === 'failover') {
    if (interrupted) throw new Error('interrupted');
    const bench = new FailoverBench();
    running = bench;
    try {
      const figures = await bench.run();
      const date = new Date().toISOString();
      process.stdout.write(['### ferry failover benchmark', '', `${date.slice(0, 10)} · load average (1 min) ${loadavg()[0].toFixed(2)}`, '', renderFailover(figures), ''].join('\n') + '\n');
      process.stdout.write(JSON.stringify({ bench: 'ferry-failover', date, failover: figures }) + '\n');
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
  if (only === undefined || only === 'moves') {
    if (interrupted) throw new Error('interrupted');
    const sizes = parseMoveSizes(moveSizes);
    const chosen = new Set(sizes.map((x) => x.bytes));
    const skipped = parseMoveSizes(ALL_MOVE_SIZES).filter((x) => !chosen.has(x.bytes)).map((x) => x.label);
    const bench = new MoveBench(sizes, skipped, { keepLog, dropCaches: process.argv.includes('--drop-caches') });
    running = bench;
    try {
      await moves(bench, quick);
    } finally {
      await bench.cleanup();
      running = undefined;
    }
  }
}

async function replication(bench: ReplicationBench, quick: boolean): Promise<void> {
  const loadAtStart = loadavg()[0];
  const figures = await bench.run();
  const date = new Date().toISOString();
  const m = { ...machine(), loadAverage1m: `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end` };
  const out = [
    `### ferry replication lag${quick ? ' (--quick: one rate, 15 s)' : ''}`,
    '',
    `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Linux ${m.kernel} · Node ${m.node} · two namespace hosts, btrfs pools on sparse loop files, ` +
      `ferry logging at debug · lag sampled every 250 ms · load average (1 min) ${m.loadAverage1m}`,
    '',
    renderReplication(figures),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  process.stdout.write(JSON.stringify({ bench: 'ferry-replication', date, quick, machine: m, replication: figures }) + '\n');
}

async function metrics(bench: MetricsBench, quick: boolean): Promise<void> {
  const loadAtStart = loadavg()[0];
  const figures = await bench.run();
  const date = new Date().toISOString();
  const m = { ...machine(), loadAverage1m: `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end` };
  const out = [
    `### Cost of metrics${quick ? ' (--quick: too few samples to quote)' : ''}`,
    '',
    `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Linux ${m.kernel} · Node ${m.node} · two ferry serve processes side by side, btrfs pools on sparse loop files · ` +
      `ferry logging at debug · load average (1 min) ${m.loadAverage1m}`,
    '',
    renderMetrics(figures),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  process.stdout.write(JSON.stringify({ bench: 'ferry-metrics', date, quick, machine: m, metrics: figures }) + '\n');
}

async function managedPlugin(bench: ManagedPluginBench, quick: boolean): Promise<void> {
  const loadAtStart = loadavg()[0];
  const figures = await bench.run();
  const date = new Date().toISOString();
  const m = { ...machine(), loadAverage1m: `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end` };
  const out = [
    `### ferry managed plugin benchmark${quick ? ' (--quick: too few samples to quote)' : ''}`,
    '',
    `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Linux ${m.kernel} · Node ${m.node} · dockerd ${m.dockerd} · ` +
      'the managed plugin installed from a registry on 127.0.0.1, the legacy plugin as `ferry serve` on the host, both logging at debug, ' +
      `each with an empty btrfs pool on a sparse loop file · load average (1 min) ${m.loadAverage1m}`,
    '',
    renderManagedPlugin(figures),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  process.stdout.write(JSON.stringify({ bench: 'ferry-managed-plugin', date, quick, machine: m, managedPlugin: figures }) + '\n');
}

async function dashboard(bench: DashboardBench): Promise<void> {
  progress('dashboard: reads of 1000 volumes beside Lists');
  const figures = await bench.run();
  const date = new Date().toISOString();
  const m = machine();
  const out = [
    '### ferry dashboard benchmark',
    '',
    `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Node ${m.node} · in process, control's SQLite on a file (ferry serve) · ${figures.samples} samples each`,
    '',
    renderDashboard(figures),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  process.stdout.write(JSON.stringify({ bench: 'ferry-dashboard', date, machine: m, dashboard: figures }) + '\n');
}

async function backends(bench: BackendsBench, quick: boolean): Promise<void> {
  const loadAtStart = loadavg()[0];
  const counts = quick ? QUICK_BACKENDS_COUNTS : FULL_BACKENDS_COUNTS;
  const { figures, skipped } = await bench.run();
  const date = new Date().toISOString();
  const m = { ...machine(), loadAverage1m: `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end` };
  const out = [
    `### ferry backends side by side${quick ? ' (--quick: small figures, to check that it works)' : ''}`,
    '',
    `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Linux ${m.kernel} · Node ${m.node} · each backend on two fresh pools on sparse files on the same disk · ` +
      `load average (1 min) ${m.loadAverage1m}${skipped.length ? ` · not run: ${skipped.join('; ')}` : ''}`,
    '',
    renderBackends(figures, counts),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  process.stdout.write(JSON.stringify({ bench: 'ferry-backends', date, quick, machine: m, counts, backends: figures, skipped }) + '\n');
}

async function moves(bench: MoveBench, quick: boolean): Promise<void> {
  const loadAtStart = loadavg()[0];
  const figures = await bench.run();
  const date = new Date().toISOString();
  const m = { ...machine(), loadAverage1m: `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end` };
  const out = [
    `### ferry move benchmark${quick ? ' (--quick: one size only)' : ''}`,
    '',
    `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Linux ${m.kernel} · Node ${m.node} · dockerd ${m.dockerd} · ${m.btrfsProgs} · ` +
      `load average (1 min) ${m.loadAverage1m} · two test hosts (network namespaces on one bridge, each with its own dockerd and ferry agent), ` +
      'btrfs pools on sparse loop files on the same disk · ferry logging at debug',
    '',
    renderMoves(figures),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  process.stdout.write(JSON.stringify({ bench: 'ferry-moves', date, quick, machine: m, moves: figures }) + '\n');
}

async function singleHost(env: BenchEnv, quick: boolean, keepLog: string | undefined): Promise<void> {
  const counts = quick ? QUICK_COUNTS : { single: FULL_COUNTS, versus: FULL_VERSUS_COUNTS };
  const loadAtStart = loadavg()[0];
  const ferryIdle = memoryOf(env.ferryPid);
  const single = new SingleHostBench(env, counts.single);
  const singleFigures = await single.run();
  const versusFigures = await new VersusLocalBench(env, counts.versus, counts.single.btrfsVolumes).run();
  const memory = { ferry: memoryOf(env.ferryPid), ferryIdle, dockerd: dockerdMemory() };

  // ferry logs asynchronously: give the last lines a moment to reach the file.
  await new Promise((r) => setTimeout(r, 1000));
  if (keepLog) copyFileSync(env.ferry.logFile, keepLog);
  const profiles = profilePhases(readLog(env.ferry.logFile), single.phases);

  const date = new Date().toISOString();
  // Other work on the machine shows in the tails: say how busy it was.
  const m = { ...machine(), loadAverage1m: `${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end` };
  const out = [
    `### ferry single-host benchmark${quick ? ' (--quick: too few samples to quote)' : ''}`,
    '',
    `${date.slice(0, 10)} · ${m.cpus} × ${m.cpu} · Linux ${m.kernel} · Node ${m.node} · dockerd ${m.dockerd} · ${m.btrfsProgs} · ` +
      'btrfs pool on a sparse loop file, loop images and directories on ext4 · ferry logging at debug · ' +
      `load average (1 min) ${m.loadAverage1m}`,
    '',
    renderGroups(singleHostGroups(singleFigures, versusFigures, memory)),
    '',
    '#### Where ferry’s time goes (from its own debug log)',
    '',
    'Server time is the plugin layer’s own measure of a request, from the request reaching its handler to the answer written (it leaves out the socket, HTTP parsing and any wait for ferry’s event loop); ' +
      'a client p99 far above the server p99 is time spent outside ferry’s handlers, which the bare Node HTTP server’s row above puts in scale. ' +
      'Commands are the processes ferry spawned for that volume; “other commands meanwhile” include spare subvolumes made after a btrfs Create and the periodic usage scan.',
    '',
    profileTable(profiles, single.clientByPhase),
    '',
    memoryTraceLine(singleFigures, memory),
    '',
  ].join('\n');
  process.stdout.write(out + '\n');
  process.stdout.write(
    JSON.stringify({ bench: 'ferry-single-host', date, quick, machine: m, singleHost: singleFigures, versusLocal: versusFigures, memory, profile: profiles }) + '\n',
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
