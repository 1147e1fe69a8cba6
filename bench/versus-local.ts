import type { BenchEnv } from './bench-env';
import { BENCH_LABEL, DRIVER, progress } from './bench-env';
import { runTimedOk } from './proc';
import { elapsedMs, summarize, type Summary } from './stats';
import { filtersQuery } from './unix-client';
import { TEST_IMAGE } from '../test/support/docker';

/**
 * ferry next to Docker's own `local` driver, through the real dockerd: the Engine API (what
 * `docker volume ls/inspect` cost without the CLI's start-up) and the docker CLI (what a user types,
 * wall time per command). Runs after SingleHostBench, while ferry holds its 1,000 btrfs volumes.
 */

export interface VersusLocalCounts {
  /** `local` volumes made through the Engine API, to list as many as ferry holds. */
  localVolumes: number;
  apiLists: number;
  apiGets: number;
  cliCreates: number;
  cliRuns: number;
}

export const FULL_VERSUS_COUNTS: VersusLocalCounts = { localVolumes: 1000, apiLists: 20, apiGets: 200, cliCreates: 30, cliRuns: 20 };

export interface Pair {
  ferry: Summary;
  local: Summary;
}

export interface VersusLocalFigures {
  counts: VersusLocalCounts;
  /** POST /volumes/create with the local driver. */
  apiCreateLocal: Summary;
  /** GET /volumes filtered by driver, each driver holding `listed` volumes. */
  apiList: Pair & { listed: { ferry: number; local: number } };
  /** GET /volumes/NAME (docker volume inspect). */
  apiGet: Pair;
  /** `docker volume create` (ferry with -o size=64M). */
  cliCreate: Pair;
  /** `docker run --rm -v NAME:/data busybox true` on an existing volume. */
  cliRun: Pair;
}

type Side = 'ferry' | 'local';

export class VersusLocalBench {
  /** Names unique to this run, so that a volume a killed run left in dockerd's store never collides. */
  private readonly tag = `fb${process.pid}`;

  constructor(
    private readonly env: BenchEnv,
    private readonly counts: VersusLocalCounts,
    private readonly ferryVolumes: number,
  ) {}


  /** Times `fn` for both sides, alternating which goes first, so that drift in the host hits both alike. */
  private async pair(n: number, fn: (side: Side, i: number) => Promise<number>): Promise<Pair> {
    const t: Record<Side, number[]> = { ferry: [], local: [] };
    for (let i = 0; i < n; i++) {
      this.env.checkAborted();
      const order: Side[] = i % 2 === 0 ? ['local', 'ferry'] : ['ferry', 'local'];
      for (const side of order) t[side].push(await fn(side, i));
    }
    return { ferry: summarize(t.ferry), local: summarize(t.local) };
  }

  private cliName(side: Side, i: number): string {
    return `${this.tag}-cli-${side}-${String(i).padStart(2, '0')}`;
  }

  async run(): Promise<VersusLocalFigures> {
    const c = this.counts;
    const docker = this.env.docker;

    progress(`Engine API: create ${c.localVolumes} local volumes`);
    const apiCreateLocal = summarize(
      await this.env.sample(c.localVolumes, async (i) => {
        const name = `${this.tag}-local-${String(i).padStart(4, '0')}`;
        this.env.dockerVolumes.add(name);
        await docker.call('POST', '/volumes/create', { Name: name, Driver: 'local', Labels: { [BENCH_LABEL]: '' } });
      }),
    );

    progress(`Engine API: ${c.apiLists} volume lists per driver`);
    // Filtered by driver: unfiltered, dockerd also asks every plugin it has seen, dead ones for 15 s.
    const listPath: Record<Side, string> = {
      ferry: `/volumes?${filtersQuery({ driver: [DRIVER] })}`,
      local: `/volumes?${filtersQuery({ driver: ['local'], label: [BENCH_LABEL] })}`,
    };
    const listed = { ferry: 0, local: 0 };
    for (const side of ['ferry', 'local'] as Side[]) {
      const r = (await docker.call('GET', listPath[side])) as { Volumes: unknown[] | null };
      listed[side] = r.Volumes?.length ?? 0;
    }
    if (listed.ferry !== this.ferryVolumes) throw new Error(`dockerd listed ${listed.ferry} ferry volumes, expected ${this.ferryVolumes}`);
    const apiList = await this.pair(c.apiLists, async (side) => {
      const start = process.hrtime.bigint();
      await docker.call('GET', listPath[side]);
      return elapsedMs(start);
    });

    progress(`docker volume create: ${c.cliCreates} each, local and ferry`);
    const cliCreate = await this.pair(c.cliCreates, async (side, i) => {
      const name = this.cliName(side, i);
      this.env.dockerVolumes.add(name);
      const driverArgs = side === 'ferry' ? ['-d', DRIVER, '-o', 'size=64M'] : ['-d', 'local'];
      return (await runTimedOk(['docker', 'volume', 'create', '--label', BENCH_LABEL, ...driverArgs, name])).ms;
    });

    progress(`Engine API: ${c.apiGets} volume inspects each`);
    const apiGet = await this.pair(c.apiGets, async (side, i) => {
      const start = process.hrtime.bigint();
      await docker.call('GET', `/volumes/${this.cliName(side, i % c.cliCreates)}`);
      return elapsedMs(start);
    });

    progress(`docker run --rm -v: ${c.cliRuns} each, local and ferry`);
    const runArgv = (side: Side): string[] => ['docker', 'run', '--rm', '--label', BENCH_LABEL, '-v', `${this.cliName(side, 0)}:/data`, TEST_IMAGE, 'true'];
    for (const side of ['local', 'ferry'] as Side[]) await runTimedOk(runArgv(side)); // warm-up
    const cliRun = await this.pair(c.cliRuns, async (side) => (await runTimedOk(runArgv(side))).ms);

    return { counts: c, apiCreateLocal, apiList: { ...apiList, listed }, apiGet, cliCreate, cliRun };
  }
}
