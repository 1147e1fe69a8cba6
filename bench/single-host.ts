import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BenchEnv } from './bench-env';
import { progress } from './bench-env';
import type { Phase } from './ferry-log';
import { memoryOf, startEchoServer, type Memory } from './proc';
import { elapsedMs, seededRandom, summarize, type Summary } from './stats';
import { PluginClient } from './unix-client';

/** The volume kinds measured, each with the Create options a user would pass. */
export const CASES = {
  btrfs: { label: 'btrfs 64M', opts: { size: '64M' }, prefix: 'bench-btrfs-' },
  'loop-ext4': { label: 'loop ext4 64M', opts: { backend: 'loop', fs: 'ext4', size: '64M' }, prefix: 'bench-ext4-' },
  'loop-xfs': { label: 'loop xfs 300M', opts: { backend: 'loop', fs: 'xfs', size: '300M' }, prefix: 'bench-xfs-' },
  directory: { label: 'directory', opts: { backend: 'directory' }, prefix: 'bench-dir-' },
} as const;
export type Case = keyof typeof CASES;
export const CASE_NAMES = Object.keys(CASES) as Case[];
/** btrfs volumes made after the List figures, to time Remove without shrinking the 1,000. */
const BTRFS_REMOVE_PREFIX = 'bench-btrfsrm-';

/** How many of each; `--quick` in run.ts shrinks them for a smoke run. */
export interface SingleHostCounts {
  btrfsVolumes: number;
  perOtherBackend: number;
  gets: number;
  freshGets: number;
  lists: number;
  mountRoundTrips: number;
}

export const FULL_COUNTS: SingleHostCounts = { btrfsVolumes: 1000, perOtherBackend: 50, gets: 2000, freshGets: 200, lists: 100, mountRoundTrips: 50 };

/** Every figure of this section, in milliseconds; printed as the JSON line as they are. */
export interface SingleHostFigures {
  counts: SingleHostCounts;
  create: Record<Case, Summary>;
  get: Summary;
  /** Capabilities, timed interleaved with Get: HTTP, express, the route wrapper and logging, no volume work. */
  capabilities: Summary;
  /** A bare Node HTTP server in its own process, interleaved with Get: this machine's floor at that moment. */
  bareNodeHttp: Summary;
  getFreshConnection: Summary;
  list: Summary;
  listedVolumes: number;
  mount: Record<Case, Summary>;
  unmount: Record<Case, Summary>;
  mountRoundTrip: Record<Case, Summary>;
  remove: Record<Case, Summary>;
  /** ferry's memory after each phase. */
  memoryTrace: { after: string; memory: Memory }[];
}

const pad = (i: number): string => String(i).padStart(4, '0');

/** Times the plugin endpoints over ferry's plugin socket, one request at a time. */
export class SingleHostBench {
  readonly phases: Phase[] = [];
  /** Client-side latency of each phase, by its label, for the profile table. */
  readonly clientByPhase = new Map<string, Summary>();
  private readonly memoryTrace: SingleHostFigures['memoryTrace'] = [];

  constructor(
    private readonly env: BenchEnv,
    private readonly counts: SingleHostCounts,
  ) {}

  private get plugin(): PluginClient {
    return this.env.plugin;
  }

  /** Runs `fn` and records its window, so that ferry's log can be profiled per phase afterwards. */
  private async phase(label: string, ops: string, namePrefix: string, fn: () => Promise<number[]>): Promise<number[]> {
    const fromIso = new Date().toISOString();
    const samples = await fn();
    // ferry logs a request just after answering it: let the last line's timestamp fall inside the window.
    await new Promise((r) => setTimeout(r, 50));
    const requestsPerSample = ops.split('|').length;
    this.phases.push({ label, ops, namePrefix, requestsPerSample, fromIso, toIso: new Date().toISOString() });
    this.clientByPhase.set(label, summarize(samples));
    this.memoryTrace.push({ after: label, memory: memoryOf(this.env.ferryPid) });
    return samples;
  }

  /**
   * Get, interleaved with Capabilities and with a bare Node HTTP server, so that whatever else the
   * machine does at that moment weighs on all three alike: the differences are ferry's.
   */
  private async getWithFloors(n: number, randomName: () => string): Promise<{ get: number[]; capabilities: number[]; bare: number[] }> {
    const echo = await startEchoServer(join(this.env.dir, 'echo.sock'));
    const bareClient = new PluginClient(join(this.env.dir, 'echo.sock'), true);
    const out = { get: [] as number[], capabilities: [] as number[], bare: [] as number[] };
    const calls: [number[], () => Promise<unknown>][] = [
      [out.get, () => this.plugin.call('/VolumeDriver.Get', { Name: randomName() })],
      [out.capabilities, () => this.plugin.call('/VolumeDriver.Capabilities')],
      [out.bare, () => bareClient.call('/VolumeDriver.Get', { Name: randomName() })],
    ];
    try {
      for (let i = 0; i < n; i++) {
        this.env.checkAborted();
        // Rotate the order, so that none of the three always follows the same one.
        for (const [samples, call] of [...calls.slice(i % 3), ...calls.slice(0, i % 3)]) {
          const start = process.hrtime.bigint();
          await call();
          samples.push(elapsedMs(start));
        }
      }
    } finally {
      bareClient.close();
      await echo.stop();
    }
    return out;
  }


  private createMany(prefix: string, opts: object, n: number): Promise<number[]> {
    return this.env.sample(n, async (i) => {
      await this.plugin.call('/VolumeDriver.Create', { Name: `${prefix}${pad(i)}`, Opts: opts });
      if (i > 0 && i % 250 === 0) progress(`  created ${i} of ${n}`);
    });
  }

  async run(): Promise<SingleHostFigures> {
    const c = this.counts;
    const btrfs = CASES.btrfs;
    progress(`Create: ${c.btrfsVolumes} btrfs volumes of 64M`);
    const createBtrfs = summarize(
      await this.phase(`Create ${btrfs.label}`, 'VolumeDriver.Create', btrfs.prefix, () => this.createMany(btrfs.prefix, btrfs.opts, c.btrfsVolumes)),
    );
    const reads = await this.reads();
    const create = { btrfs: createBtrfs, ...(await this.createOthers()) };
    return { counts: c, create, ...reads, ...(await this.mountRoundTrips()), remove: await this.removes(), memoryTrace: this.memoryTrace };
  }

  /** Get (with its floors), Get on fresh connections, and List, while exactly the btrfs volumes exist. */
  private async reads(): Promise<Pick<SingleHostFigures, 'get' | 'capabilities' | 'bareNodeHttp' | 'getFreshConnection' | 'list' | 'listedVolumes'>> {
    const c = this.counts;
    const rand = seededRandom(42);
    const randomName = (): string => `${CASES.btrfs.prefix}${pad(Math.floor(rand() * c.btrfsVolumes))}`;

    progress(`Get: ${c.gets} of random names, one keep-alive connection, with Capabilities and a bare HTTP server between them`);
    await this.env.sample(50, () => this.plugin.call('/VolumeDriver.Get', { Name: randomName() })); // warm-up
    let floors = { capabilities: [] as number[], bare: [] as number[] };
    const get = summarize(
      await this.phase('Get', 'VolumeDriver.Get', CASES.btrfs.prefix, async () => {
        const r = await this.getWithFloors(c.gets, randomName);
        floors = r;
        return r.get;
      }),
    );

    progress(`Get: ${c.freshGets} with a new connection each`);
    const fresh = new PluginClient(this.plugin.http.socketPath, false);
    const getFreshConnection = summarize(await this.env.sample(c.freshGets, () => fresh.call('/VolumeDriver.Get', { Name: randomName() })));
    fresh.close();

    progress(`List: ${c.lists} with ${c.btrfsVolumes} volumes`);
    const first = await this.plugin.call('/VolumeDriver.List');
    const listedVolumes = (first.Volumes as unknown[]).length;
    if (listedVolumes !== c.btrfsVolumes) throw new Error(`List returned ${listedVolumes} volumes, expected ${c.btrfsVolumes}`);
    await this.env.sample(3, () => this.plugin.call('/VolumeDriver.List'));
    const list = summarize(await this.phase('List', 'VolumeDriver.List', '', () => this.env.sample(c.lists, () => this.plugin.call('/VolumeDriver.List'))));

    return { get, capabilities: summarize(floors.capabilities), bareNodeHttp: summarize(floors.bare), getFreshConnection, list, listedVolumes };
  }

  /** Create timings of every backend but btrfs. */
  private async createOthers(): Promise<Omit<Record<Case, Summary>, 'btrfs'>> {
    const out = {} as Record<Case, Summary>;
    for (const k of CASE_NAMES.filter((k) => k !== 'btrfs')) {
      const kc = CASES[k];
      progress(`Create: ${this.counts.perOtherBackend} ${kc.label}`);
      out[k] = summarize(
        await this.phase(`Create ${kc.label}`, 'VolumeDriver.Create', kc.prefix, () => this.createMany(kc.prefix, kc.opts, this.counts.perOtherBackend)),
      );
    }
    return out;
  }

  /** Mount then Unmount with a fresh ID, as one container start and stop does, per backend. */
  private async mountRoundTrips(): Promise<Pick<SingleHostFigures, 'mount' | 'unmount' | 'mountRoundTrip'>> {
    const c = this.counts;
    const out = { mount: {}, unmount: {}, mountRoundTrip: {} } as Pick<SingleHostFigures, 'mount' | 'unmount' | 'mountRoundTrip'>;
    for (const k of CASE_NAMES) {
      const kc = CASES[k];
      progress(`Mount+Unmount: ${c.mountRoundTrips} ${kc.label}`);
      const m: number[] = [];
      const u: number[] = [];
      const volumes = k === 'btrfs' ? c.btrfsVolumes : c.perOtherBackend;
      const trips = await this.phase(`Mount+Unmount ${kc.label}`, 'VolumeDriver.Mount|VolumeDriver.Unmount', kc.prefix, () =>
        this.env.sample(c.mountRoundTrips, async (i) => {
          const name = `${kc.prefix}${pad(i % volumes)}`;
          const id = randomBytes(32).toString('hex');
          let start = process.hrtime.bigint();
          await this.plugin.call('/VolumeDriver.Mount', { Name: name, ID: id });
          m.push(elapsedMs(start));
          start = process.hrtime.bigint();
          await this.plugin.call('/VolumeDriver.Unmount', { Name: name, ID: id });
          u.push(elapsedMs(start));
        }),
      );
      out.mount[k] = summarize(m);
      out.unmount[k] = summarize(u);
      out.mountRoundTrip[k] = summarize(trips);
    }
    return out;
  }

  /** Remove of each backend; btrfs ones made for it, so that the 1,000 stay for the dockerd section. */
  private async removes(): Promise<Record<Case, Summary>> {
    const n = this.counts.perOtherBackend;
    progress(`Remove: ${n} of each backend`);
    await this.createMany(BTRFS_REMOVE_PREFIX, CASES.btrfs.opts, n);
    const out = {} as Record<Case, Summary>;
    for (const k of CASE_NAMES) {
      const prefix = k === 'btrfs' ? BTRFS_REMOVE_PREFIX : CASES[k].prefix;
      out[k] = summarize(
        await this.phase(`Remove ${CASES[k].label}`, 'VolumeDriver.Remove', prefix, () =>
          this.env.sample(n, (i) => this.plugin.call('/VolumeDriver.Remove', { Name: `${prefix}${pad(i)}` })),
        ),
      );
    }
    return out;
  }
}
