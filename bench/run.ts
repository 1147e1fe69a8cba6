/**
 * `npm run bench`: ferry's benchmarks. Prints markdown tables (figures beside their aims and beside
 * what a user would otherwise do) and one JSON line with every raw figure, on stdout; progress goes
 * to stderr. Never fails on a missed aim: it measures and prints.
 *
 *   node dist/bench/run.js            the full run (a few minutes on 2 cores)
 *   node dist/bench/run.js --quick    fewer samples, to check that it works
 *   ... --keep-log FILE               keep a copy of ferry's debug log (the data dir is removed)
 *
 * Each section is one class with a `run()` that returns its figures; the next milestone adds its
 * move benchmarks (ferry move vs btrfs send | receive vs rsync over ssh) as another section here.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { BenchEnv, progress } from './bench-env';
import { profilePhases, readLog } from './ferry-log';
import { memoryOf, type Memory } from './proc';
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

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const keepLogAt = process.argv.indexOf('--keep-log');
  const keepLog = keepLogAt > 0 ? process.argv[keepLogAt + 1] : undefined;
  const counts = quick ? QUICK_COUNTS : { single: FULL_COUNTS, versus: FULL_VERSUS_COUNTS };
  let env: BenchEnv | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: stopping and cleaning up`);
    if (env) {
      env.aborted = true;
      void env.cleanup().finally(() => process.exit(130));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A reader that goes away (`| head`) must not kill the run before it has cleaned up.
  process.stdout.on('error', () => undefined);

  const loadAtStart = loadavg()[0];
  env = await BenchEnv.start();
  try {
    if (interrupted) throw new Error('interrupted');
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
      'Server time is the plugin layer’s own measure of a request; commands are the processes it spawned for that volume.',
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
  } finally {
    await env.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
