import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { FERRY, FerryCluster } from '../test/cluster/ferry-cluster';
import { startCluster, type Cluster, type TestHost } from '../test/cluster/harness';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../test/support/host';
import type { StandbyView } from '../src/wire/records';
import { cleanupStep, progress } from './bench-env';
import { runTimed } from './proc';
import { MiB } from './random-files';
import { SshdInNetns } from './sshd';
import { fmtMs, summarize, type Summary } from './stats';
import { PluginClient } from './unix-client';

/**
 * The replication benchmark (issue 7 item 4): the lag of a standby on h2 of a volume on h1 under a
 * steady write load, with `--rpo 10s`, sampled every quarter second; beside what a user scripts by
 * hand between the same two namespace hosts, btrbk-style: every 10 s `btrfs subvolume snapshot -r`,
 * then `btrfs send -p PREVIOUS | ssh h2 btrfs receive`, the lag being the age of the newest snapshot
 * h2 has received whole.
 */

const RPO_SECONDS = 10;
const CRON_SECONDS = 10;
const SSH_PORT = 2223;
/** The writer overwrites this much, file after file, so that the data set stays the same size. */
const WORKING_SET = 64 * MiB;
const FILE_BYTES = 8 * MiB;
const WRITE_EVERY_MS = 100;
const SAMPLE_EVERY_MS = 250;

export interface LagFigures {
  rateMiBps: number;
  seconds: number;
  ferry: Summary;
  cron: Summary;
  /** Bytes a ferry round received, on average. */
  ferryRounds: number;
  cronRounds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes `rate` bytes per second of random data into `dir`, in WRITE_EVERY_MS slices, each fdatasynced, until stopped. */
function startWriter(dir: string, rate: number): { stop(): Promise<void> } {
  let stopped = false;
  const slice = Math.floor((rate * WRITE_EVERY_MS) / 1000);
  const done = (async () => {
    let offset = 0;
    const files = WORKING_SET / FILE_BYTES;
    while (!stopped) {
      const started = Date.now();
      const file = Math.floor(offset / FILE_BYTES) % files;
      // Read-write without O_APPEND (which would ignore the offset and grow the file past the working set).
      const fh = await open(join(dir, `w${file}`), constants.O_RDWR | constants.O_CREAT);
      try {
        await fh.write(randomBytes(slice), 0, slice, offset % FILE_BYTES);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      offset = (offset + slice) % WORKING_SET;
      await sleep(Math.max(0, WRITE_EVERY_MS - (Date.now() - started)));
    }
  })();
  // A failed write (a full pool) ends the writer; stop() reports it, and nothing is left unhandled meanwhile.
  done.catch(() => (stopped = true));
  return {
    async stop() {
      stopped = true;
      await done;
    },
  };
}

export class ReplicationBench {
  aborted = false;
  private readonly dir: string;
  private cluster?: Cluster;
  private ferry?: FerryCluster;
  private sshd?: SshdInNetns;
  private plugin?: PluginClient;
  private cleaning?: Promise<void>;

  constructor(
    private readonly rates: number[],
    private readonly seconds: number,
  ) {
    requireRootAndTools('btrfs', 'mkfs.btrfs', 'ssh', 'ssh-keygen', '/usr/sbin/sshd', 'nsenter', 'ip', 'dockerd');
    this.dir = makeTempDir('bench-replication');
  }

  private check(): void {
    if (this.aborted) throw new Error('interrupted');
  }

  async run(): Promise<LagFigures[]> {
    progress('replication: starting two test hosts, ferry control and agents');
    this.cluster = await startCluster({ hosts: 2, image: false });
    const [h1, h2] = this.cluster.hosts;
    this.ferry = new FerryCluster(this.cluster);
    await this.ferry.start();
    this.plugin = new PluginClient(join(h1.pluginDir, 'ferry.sock'), true);
    this.sshd = await SshdInNetns.start(join(this.dir, 'ssh'), h2.netnsPath, h2.ip, SSH_PORT);
    await this.cli(h1, ['policy', 'create', 'bench-rpo', '--replicate-to', 'h2', '--rpo', `${RPO_SECONDS}s`]);
    const out: LagFigures[] = [];
    for (const rate of this.rates) {
      this.check();
      const ferry = await this.ferryLag(h1, rate);
      this.check();
      const cron = await this.cronLag(h1, h2, rate);
      out.push({ rateMiBps: rate / MiB, seconds: this.seconds, ferry: ferry.lag, cron: cron.lag, ferryRounds: ferry.rounds, cronRounds: cron.rounds });
    }
    return out;
  }

  /** ferry: a volume with the policy, mounted on h1 through the plugin socket, written at `rate`; lag from control. */
  private async ferryLag(h1: TestHost, rate: number): Promise<{ lag: Summary; rounds: number }> {
    const name = `rep-${rate / MiB}`;
    progress(`replication: ferry, ${rate / MiB} MiB/s for ${this.seconds} s`);
    await this.cli(h1, ['volume', 'create', name, '-o', 'size=1G', '-o', 'policy=bench-rpo']);
    const mountpoint = String((await this.plugin!.call('/VolumeDriver.Mount', { Name: name, ID: `bench-${name}` })).Mountpoint);
    const lagOf = async (): Promise<StandbyView | undefined> => {
      const r = await this.ferry!.controlRequest('GET', `/v1/volumes/${name}`);
      return (r.json.volume as { standbys?: StandbyView[] }).standbys?.find((s) => s.node === 'h2');
    };
    // Measured from the first round on: the first is a full send of an empty volume.
    for (const end = Date.now() + 60_000; !(await lagOf())?.snapshot; await sleep(250)) if (Date.now() > end) throw new Error(`no first round of ${name} within 60 s\n${this.ferry!.logs(20)}`);
    const writer = startWriter(mountpoint, rate);
    const samples: number[] = [];
    const snapshots = new Set<string>();
    try {
      for (const end = Date.now() + this.seconds * 1000; Date.now() < end; await sleep(SAMPLE_EVERY_MS)) {
        this.check();
        const s = await lagOf();
        if (s) {
          samples.push(s.lagSeconds * 1000);
          if (s.snapshot) snapshots.add(s.snapshot);
        }
      }
    } finally {
      await writer.stop();
      await this.plugin!.call('/VolumeDriver.Unmount', { Name: name, ID: `bench-${name}` });
    }
    return { lag: summarize(samples), rounds: snapshots.size };
  }

  /**
   * What a user scripts by hand: a subvolume in h1's pool written at `rate`; every CRON_SECONDS a
   * read-only snapshot, sent as an increment from the previous one over OpenSSH (ssh run in h1's
   * namespace, sshd in h2's) into a directory of h2's pool. The lag is now minus the time of the
   * newest snapshot received whole.
   */
  private async cronLag(h1: TestHost, h2: TestHost, rate: number): Promise<{ lag: Summary; rounds: number }> {
    progress(`replication: cron-style btrfs send -p | ssh btrfs receive, ${rate / MiB} MiB/s for ${this.seconds} s`);
    const src = join(this.ferry!.btrfsPool(h1), `bench-cron-src-${rate}`);
    const snaps = join(this.ferry!.btrfsPool(h1), `bench-cron-snaps-${rate}`);
    const dest = join(this.ferry!.btrfsPool(h2), `bench-cron-dest-${rate}`);
    await this.exec(['btrfs', 'subvolume', 'create', src]);
    await mkdir(snaps, { recursive: true });
    await mkdir(dest, { recursive: true });
    let received = Date.now();
    let rounds = 0;
    let stopped = false;
    let previous: string | undefined;
    const ssh = ['nsenter', `--net=${h1.netnsPath}`, '--', 'ssh', ...this.sshd!.sshOptions(), `root@${h2.ip}`];
    const round = async (): Promise<void> => {
      const at = Date.now();
      const snap = join(snaps, `s${at}`);
      await this.exec(['btrfs', 'subvolume', 'snapshot', '-r', src, snap]);
      // The pipe as a user writes it, run by the shell: send on h1, receive on h2 over ssh.
      const send = ['btrfs', 'send', '-q', ...(previous ? ['-p', previous] : []), snap].join(' ');
      await this.exec(['sh', '-c', `${send} | ${ssh.join(' ')} btrfs receive -q ${dest}`]);
      previous = snap;
      received = at;
      rounds++;
    };
    await round(); // the first, full send happens before the measured time, as ferry's does
    const writer = startWriter(src, rate);
    // cron: rounds at fixed times CRON_SECONDS apart; a time that comes while a round still runs is
    // skipped, as `flock -n` in a crontab line does.
    const every = CRON_SECONDS * 1000;
    const loop = (async () => {
      let next = Date.now() + every;
      while (!stopped) {
        while (!stopped && Date.now() < next) await sleep(50);
        if (stopped) break;
        await round();
        next += every * Math.max(1, Math.ceil((Date.now() - next) / every));
      }
    })();
    const samples: number[] = [];
    try {
      for (const end = Date.now() + this.seconds * 1000; Date.now() < end; await sleep(SAMPLE_EVERY_MS)) {
        this.check();
        samples.push(Date.now() - received);
      }
    } finally {
      stopped = true;
      await writer.stop();
      await loop;
    }
    return { lag: summarize(samples), rounds: rounds - 1 };
  }

  private async cli(h: TestHost, args: string[]): Promise<void> {
    const r = await runTimed([FERRY, '--api-socket', this.ferry!.apiSocket(h), ...args], 120_000);
    if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} on ${h.name} exited ${r.code}: ${r.stderr}`);
  }

  private async exec(argv: string[]): Promise<void> {
    const r = await runTimed(argv, 120_000);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
  }

  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      progress('replication: cleaning up');
      const step = (what: string, fn: () => Promise<void> | void): Promise<void> => cleanupStep('replication cleanup', what, fn);
      this.plugin?.close();
      await step('sshd', () => this.sshd?.stop());
      await step('ferry', () => this.ferry?.stop());
      await step('test cluster', () => this.cluster?.teardown());
      await step('temp dir', () => cleanupDir(this.dir));
    })();
    return this.cleaning;
  }
}

/** The section's table: lag p50/p99 of ferry beside the cron loop, and their ratio, per write rate. */
export function renderReplication(figures: LagFigures[]): string {
  const rows = figures.map((f) => {
    const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : '—');
    return `| ${f.rateMiBps} MiB/s, ${f.seconds} s | p50 ${fmtMs(f.ferry.p50)} · p99 ${fmtMs(f.ferry.p99)} ${f.ferry.p99 <= RPO_SECONDS * 1000 ? '✔' : '✘'} (${f.ferryRounds} rounds) | p50 ${fmtMs(f.cron.p50)} · p99 ${fmtMs(f.cron.p99)} (${f.cronRounds} rounds) | ${ratio(f.ferry.p50, f.cron.p50)} · ${ratio(f.ferry.p99, f.cron.p99)} |`;
  });
  return [
    `| writes | ferry, \`--rpo ${RPO_SECONDS}s\` (aim: p99 within the RPO) | cron: \`btrfs send -p \\| ssh btrfs receive\` every ${CRON_SECONDS} s | ferry / cron (p50 · p99) |`,
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}
