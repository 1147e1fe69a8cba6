import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FERRY, FerryCluster } from '../test/cluster/ferry-cluster';
import { startCluster, type Cluster, type TestHost } from '../test/cluster/harness';
import { cleanupDir, makeTempDir, processAlive as alive, requireRootAndTools, TEST_PREFIX } from '../test/support/host';
import { cleanupStep, progress } from './bench-env';
import { LocalPools } from './btrfs-pipe';
import { CpuMeter, pidsWithArgs } from './cpu';
import {
  CHANGE_BYTES,
  cryptoRates,
  moveEvents,
  type InspectAnswer,
  type MountDrivenRun,
  type MoveFigures,
  type MoveRun,
  type MoveSize,
  type SizeFigures,
} from './move-figures';
import { commandsIn, moveDone, precopyRounds, totalsOf } from './move-log';
import { runTimed, type TimedRun } from './proc';
import { dataFile, MiB, overwriteRandom, writeRandomFiles } from './random-files';
import { SshdInNetns, type RsyncRun } from './sshd';
import { elapsedMs } from './stats';
import { PluginClient, UnixHttp } from './unix-client';

/**
 * The move benchmark: a volume of random data moved between two test hosts (network namespaces on
 * this machine, each with its own dockerd and ferry agent), beside what moves the same bytes without
 * ferry: `btrfs send | btrfs receive` piped locally between two pools (the disk's limit) and
 * `rsync -a` over OpenSSH between the same two namespaces. Then the cut-over: how long a volume is
 * unavailable when 10 MiB changed, and how many bytes that change costs on the wire.
 */

const SSH_PORT = 2222;
const DIR_TAG = 'bench-moves';
/** If another run owns the one test cluster this machine fits: ask again this often, for this long. */
const CLUSTER_RETRY_MS = 20_000;
const CLUSTER_WAIT_MS = 15 * 60_000;

function newMountId(): string {
  return randomBytes(32).toString('hex');
}

/** What a container's first write is: 4 KiB, fsynced. */
function writeSynced(path: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, randomBytes(4096));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the move section. `cleanup()` removes everything it made (cluster, sshd, pools, temp dir),
 * once, whether the run ended, failed or was interrupted.
 */
export class MoveBench {
  aborted = false;
  private readonly dir: string;
  private cluster?: Cluster;
  private ferry?: FerryCluster;
  private sshd?: SshdInNetns;
  private pools?: LocalPools;
  private plugins = new Map<string, PluginClient>();
  private apis = new Map<string, UnixHttp>();
  private meter?: CpuMeter;
  private cleaning?: Promise<void>;

  private readonly pipeQuotas: boolean;

  /** `keepLog`: copy ferry's logs to KEEPLOG.moves-{control,h1,h2}.log before the cluster goes. */
  constructor(
    private readonly sizes: MoveSize[],
    private readonly skipped: string[],
    private readonly opts: { pipeQuotas?: boolean; keepLog?: string; dropCaches?: boolean } = {},
  ) {
    this.pipeQuotas = opts.pipeQuotas ?? true;
    requireRootAndTools('btrfs', 'mkfs.btrfs', 'rsync', 'ssh', 'ssh-keygen', '/usr/sbin/sshd', 'nsenter', 'ip', 'dockerd');
    removeMoveLeftovers();
    this.dir = makeTempDir(DIR_TAG);
  }

  private check(): void {
    if (this.aborted) throw new Error('interrupted');
  }

  async run(): Promise<MoveFigures> {
    const started = process.hrtime.bigint();
    const crypto = cryptoRates();
    const [h1, h2] = await this.setUp();
    const out: SizeFigures[] = [];
    for (const size of this.sizes) {
      this.check();
      out.push(await this.measure(size, h1, h2));
    }
    return { sizes: out, skipped: this.skipped, changeBytes: CHANGE_BYTES, pipeQuotas: this.pipeQuotas, dropCaches: this.opts.dropCaches ?? false, crypto, totalMs: elapsedMs(started) };
  }

  private async setUp(): Promise<[TestHost, TestHost]> {
    this.cluster = await this.startClusterPatiently();
    const [h1, h2] = this.cluster.hosts;
    this.ferry = new FerryCluster(this.cluster);
    progress('starting ferry control and an agent on h1 and h2');
    await this.ferry.start();
    for (const h of [h1, h2]) {
      this.plugins.set(h.name, new PluginClient(join(h.pluginDir, 'ferry.sock'), true));
      this.apis.set(h.name, new UnixHttp(this.ferry.apiSocket(h), true));
    }
    const one = (what: string, pids: number[]): number => {
      if (pids.length !== 1) throw new Error(`expected one ${what} process, found ${pids.length}`);
      return pids[0];
    };
    this.meter = new CpuMeter({
      [`${h1.name} agent`]: one('h1 agent', pidsWithArgs('agent', h1.name, h1.dataDir)),
      [`${h2.name} agent`]: one('h2 agent', pidsWithArgs('agent', h2.name, h2.dataDir)),
      control: one('control', pidsWithArgs('control', join(this.cluster.dir, 'control'))),
    });
    this.sshd = await SshdInNetns.start(join(this.dir, 'ssh'), h2.netnsPath, h2.ip, SSH_PORT);
    const largest = this.sizes[this.sizes.length - 1]?.bytes ?? 0;
    progress(`making two local btrfs pools for the send | receive pipe${this.pipeQuotas ? ' (quotas on, as in ferry’s pools)' : ''}`);
    this.pools = await LocalPools.make(join(this.dir, 'pools'), Math.max(4 * 2 ** 30, 2 * largest + 2 ** 30), this.pipeQuotas);
    return [h1, h2];
  }

  /** One test cluster fits on the machine: while another live run owns it, wait and ask again. */
  private async startClusterPatiently(): Promise<Cluster> {
    const end = Date.now() + CLUSTER_WAIT_MS;
    for (;;) {
      this.check();
      try {
        progress('starting two test hosts (network namespaces, each with its own dockerd)');
        return await startCluster({ hosts: 2, image: false });
      } catch (err) {
        const msg = (err as Error).message;
        if (!/belongs to running process/.test(msg) || Date.now() + CLUSTER_RETRY_MS > end) throw err;
        progress(`the test cluster is taken (${msg.slice(0, 160)}...); asking again in ${CLUSTER_RETRY_MS / 1000} s`);
        for (let waited = 0; waited < CLUSTER_RETRY_MS && !this.aborted; waited += 500) await sleep(500);
      }
    }
  }

  private plugin(h: TestHost): PluginClient {
    return this.plugins.get(h.name)!;
  }

  /** The ferry CLI on host `h`, without blocking this process (so that a signal is handled at once). */
  private async cli(h: TestHost, args: string[], timeoutMs = 30 * 60_000): Promise<TimedRun> {
    const r = await runTimed([FERRY, '--api-socket', this.ferry!.apiSocket(h), ...args], timeoutMs);
    if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} on ${h.name} exited ${r.code}: ${r.stderr}\n${this.ferry!.logs(15)}`);
    return r;
  }

  /** `ferry volume inspect`, asked again when control is too busy to answer in time (see moveUntilDone). */
  private async inspect(h: TestHost, name: string): Promise<InspectAnswer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return JSON.parse((await this.cli(h, ['volume', 'inspect', name])).stdout) as InspectAnswer;
      } catch (err) {
        if (attempt >= 5) throw err;
        progress(`ferry volume inspect ${name} failed, asking again: ${(err as Error).message.split('\n')[0]}`);
        await sleep(2000);
      }
    }
  }

  /** The id and state of the move under way for `name`, else of its last one, through `h`'s API; undefined when control does not answer. */
  private async currentMove(h: TestHost, name: string): Promise<{ id: number; state: string } | null | undefined> {
    try {
      const r = await this.apis.get(h.name)!.call('GET', `/v1/volumes/${name}/move`, undefined, 10_000);
      return r.status === 200 ? ((r.json as { move: { id: number; state: string } | null }).move ?? null) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * `ferry volume move NAME --to TO` until the move is done. When the CLI gives up while the move
   * goes on (it did: control, flooded with progress updates, stopped answering its polls in time),
   * the move is followed through the API instead, and the CLI's error is kept with the figures.
   */
  private async moveUntilDone(via: TestHost, name: string, to: TestHost): Promise<{ ms: number; cliError?: string }> {
    const before = (await this.currentMove(via, name))?.id ?? 0;
    const start = process.hrtime.bigint();
    const r = await runTimed([FERRY, '--api-socket', this.ferry!.apiSocket(via), 'volume', 'move', name, '--to', to.name], 30 * 60_000);
    if (r.code === 0) return { ms: r.ms };
    const cliError = r.stderr.split('\n').filter((l) => l.startsWith('ferry:')).join(' ') || r.stderr.slice(-300);
    progress(`ferry volume move ${name} exited ${r.code} (${cliError}); following the move through the API`);
    for (const end = Date.now() + 30 * 60_000; Date.now() < end; await sleep(250)) {
      this.check();
      const m = await this.currentMove(via, name);
      if (!m || m.id <= before) continue;
      if (m.state === 'done') return { ms: elapsedMs(start), cliError };
      if (m.state === 'failed') throw new Error(`move ${m.id} of ${name} to ${to.name} failed; the CLI said: ${cliError}\n${this.ferry!.logs(15)}`);
    }
    throw new Error(`move of ${name} to ${to.name} did not end within 30 minutes; the CLI said: ${cliError}`);
  }

  /** The pool path of volume `name` on `h` (ferry's default pool: a loop-mounted file under its data dir). */
  private datasetPath(h: TestHost, name: string): string {
    return join(h.dataDir, 'btrfs', 'pool', 'volumes', name);
  }

  /** Mounts `name` on `h` through its plugin socket, as dockerd does for a container; runs `fn` on the mountpoint; unmounts. */
  private async withMount<T>(h: TestHost, name: string, fn: (mountpoint: string) => Promise<T>): Promise<T> {
    const id = newMountId();
    const r = await this.plugin(h).call('/VolumeDriver.Mount', { Name: name, ID: id });
    try {
      return await fn(String(r.Mountpoint));
    } finally {
      await this.plugin(h).call('/VolumeDriver.Unmount', { Name: name, ID: id });
    }
  }

  /**
   * Flushes dirty pages, so that writeback of one step does not slow the next; with `dropCaches`, also
   * drops the page cache, so that the next run reads its data from disk as ferry's snapshot does.
   */
  private async settle(): Promise<void> {
    await runTimed(['sync']);
    if (this.opts.dropCaches) writeFileSync('/proc/sys/vm/drop_caches', '3');
  }

  /** The move that just ended, from control's events and the target agent's log. */
  private async finishedMove(h: TestHost, name: string, wallMs?: number): Promise<MoveRun> {
    const a = await this.inspect(h, name);
    if (!a.move || a.move.state !== 'done') throw new Error(`the last move of ${name} is ${a.move?.state ?? 'absent'}: ${a.move?.error ?? ''}`);
    const events = moveEvents(a.events, a.move.id);
    const target = this.cluster!.host(a.move.target);
    await sleep(100); // pino writes asynchronously
    return {
      id: a.move.id,
      from: a.move.source,
      to: a.move.target,
      wallMs,
      moveMs: events.done - events.requested,
      finalToDoneMs: events.done - events.final,
      bytesDone: a.move.bytesDone,
      bytesReceived: moveDone(this.ferry!.agentLog(target), a.move.id)?.bytes ?? NaN,
      precopyRounds: precopyRounds(this.ferry!.agentLog(target), a.move.id),
      events,
    };
  }

  /** `ferry volume move NAME --to TO`, timed, with the CPU every ferry process spent on it. */
  private async cliMove(via: TestHost, name: string, to: TestHost): Promise<MoveRun> {
    await this.settle();
    const { value: r, cpu } = await this.meter!.measure(() => this.moveUntilDone(via, name, to), 300);
    return { ...(await this.finishedMove(via, name, r.ms)), cpu, ...(r.cliError ? { cliError: r.cliError } : {}) };
  }

  private async rsync(h1: TestHost, src: string, dest: string): Promise<RsyncRun> {
    await this.settle();
    return this.sshd!.rsync(h1.netnsPath, src, dest);
  }

  private async measure(size: MoveSize, h1: TestHost, h2: TestHost): Promise<SizeFigures> {
    const name = `mv-${size.label.replace(/\s+/g, '').toLowerCase()}`;
    const twin = `${name}-b`;
    const what = `${size.label} (${name})`;
    progress(`${what}: creating ${name} and ${twin} on h1 and writing ${size.label} of random data into each through a plugin Mount`);
    const limit = Math.ceil((size.bytes * 1.25 + 256 * MiB) / MiB);
    const fill = async (vol: string): Promise<{ files: number; fillMs: number }> => {
      await this.cli(h1, ['volume', 'create', vol, '-o', `size=${limit}M`]);
      const start = process.hrtime.bigint();
      const files = await this.withMount(h1, vol, (mp) => writeRandomFiles(mp, size.bytes));
      return { files, fillMs: elapsedMs(start) };
    };
    const { files, fillMs } = await fill(name);
    await fill(twin);
    this.check();

    // This disk writes the first GiB or two after a quiet spell several times faster than the next
    // ones, and stays slow for minutes: whichever of ferry and rsync ran first looked faster (0.5x
    // or 1.6x from the order alone). Both volumes are written first, then the order is rsync, ferry,
    // ferry, rsync, and the report compares the means.
    const rsyncRoot = join(h2.dataDir, 'btrfs', 'pool', 'bench-rsync');
    await mkdir(rsyncRoot, { recursive: true });
    const rsyncDest = join(rsyncRoot, name);
    progress(`${what}: (c) rsync -a over OpenSSH, h1 -> h2`);
    const rsync = await this.rsync(h1, this.datasetPath(h1, name), rsyncDest);
    this.check();

    const fullMove = async (vol: string): Promise<MoveRun> => {
      progress(`${size.label} (${vol}): (a) ferry volume move --to h2`);
      const run = await this.cliMove(h1, vol, h2);
      run.syncMs = (await runTimed(['sync', '-f', this.datasetPath(h2, vol)])).ms;
      this.checkArrived(h2, vol, size.bytes);
      this.check();
      return run;
    };
    const full = await fullMove(name);
    const full2 = await fullMove(twin);

    progress(`${size.label} (${twin}): (c) rsync -a over OpenSSH, h1 -> h2`);
    const rsync2 = await this.rsync(h1, this.datasetPath(h1, twin), join(rsyncRoot, twin));
    this.check();
    await this.cli(h2, ['volume', 'rm', twin]);
    await rm(join(rsyncRoot, twin), { recursive: true, force: true });

    progress(`${what}: moving back to h1 (nothing changed)`);
    const back = await this.cliMove(h2, name, h1);
    this.check();

    progress(`${what}: (d, e) 10 MiB changed on h1, then rsync and ferry volume move --to h2`);
    await this.withMount(h1, name, (mp) => overwriteRandom(dataFile(mp, 0), MiB, CHANGE_BYTES));
    const rsyncChange = await this.rsync(h1, this.datasetPath(h1, name), rsyncDest);
    const change = await this.cliMove(h1, name, h2);
    this.check();

    progress(`${what}: (d) Mount-driven move h2 -> h1 with 10 MiB written after the pre-copy`);
    const mount = await this.mountDrivenMove(name, h2, h1, size.bytes > 64 * MiB ? 1 : 0);
    this.check();

    progress(`${what}: removing the volume and the rsync copy`);
    await this.cli(h1, ['volume', 'rm', name]);
    await rm(rsyncDest, { recursive: true, force: true });

    progress(`${what}: (b) btrfs send | btrfs receive between two local pools`);
    await this.pools!.prepare(name, size.bytes);
    await this.settle();
    const pipe = await this.pools!.pipe(name);
    await this.pools!.drop(name);
    return { label: size.label, bytes: size.bytes, files, fillMs, full, full2, pipe, rsync, rsync2, back, change, rsyncChange, mount };
  }

  /** The moved volume on `h` holds the files that were written (a cheap check that the bytes really travelled). */
  private checkArrived(h: TestHost, name: string, bytes: number): void {
    const dir = join(this.datasetPath(h, name), 'data');
    let total = 0;
    for (const f of readdirSync(dir)) total += statSync(join(dir, f)).size;
    if (total !== bytes) throw new Error(`${name} on ${h.name} holds ${total} bytes of data, not ${bytes}`);
  }

  /**
   * A container holds `name` on `from` (a plugin Mount there); a container on `to` asks for it (a
   * plugin Mount there, which starts the move and waits for it). Once the move waits for the release,
   * 10 MiB are written on `from`, then `from` unmounts: the final increment carries those 10 MiB.
   * Timed from that Unmount until `to`'s Mount answers and a first write there is on disk.
   */
  private async mountDrivenMove(name: string, from: TestHost, to: TestHost, fileIndex: number): Promise<MountDrivenRun> {
    const holdId = newMountId();
    const pullId = newMountId();
    const held = String((await this.plugin(from).call('/VolumeDriver.Mount', { Name: name, ID: holdId })).Mountpoint);
    await this.settle();
    const before = (await this.currentMove(to, name))?.id ?? 0;
    const pull = this.plugin(to).call('/VolumeDriver.Mount', { Name: name, ID: pullId });
    let pullFailed: unknown;
    pull.catch((err: unknown) => (pullFailed = err));
    // The pre-copy runs while the volume is held; wait until the move waits for the release.
    const deadline = Date.now() + 120_000;
    for (;;) {
      this.check();
      if (pullFailed) throw pullFailed;
      const m = await this.currentMove(to, name);
      if (m && m.id > before && m.state === 'releasing') break;
      if (m && m.id > before && (m.state === 'failed' || m.state === 'done')) throw new Error(`move ${m.id} of ${name} ended (${m.state}) before the release`);
      if (Date.now() > deadline) throw new Error(`the move of ${name} to ${to.name} did not reach releasing within 120 s`);
      await sleep(10);
    }
    await overwriteRandom(dataFile(held, fileIndex), 2 * MiB, CHANGE_BYTES);
    const t0 = Date.now();
    const u0 = process.hrtime.bigint();
    await this.plugin(from).call('/VolumeDriver.Unmount', { Name: name, ID: holdId });
    const unmountMs = elapsedMs(u0);
    const mountpoint = String((await pull).Mountpoint);
    const releaseToMountMs = elapsedMs(u0);
    writeSynced(join(mountpoint, 'first-write'));
    const releaseToFirstWriteMs = elapsedMs(u0);
    const tMounted = t0 + releaseToMountMs;
    await this.plugin(to).call('/VolumeDriver.Unmount', { Name: name, ID: pullId });

    const run = await this.finishedMove(to, name);
    const spans = [from, to].flatMap((h) => commandsIn(this.ferry!.agentLog(h), h.name, t0, tMounted));

    // The same on a host where the volume already is: Mount, then a first write.
    const localId = newMountId();
    const l0 = process.hrtime.bigint();
    const local = String((await this.plugin(to).call('/VolumeDriver.Mount', { Name: name, ID: localId })).Mountpoint);
    const localMountMs = elapsedMs(l0);
    writeSynced(join(local, 'first-write-local'));
    const localFirstWriteMs = elapsedMs(l0);
    await this.plugin(to).call('/VolumeDriver.Unmount', { Name: name, ID: localId });

    return {
      ...run,
      releaseToFinalMs: run.events.final - t0,
      doneToMountMs: tMounted - run.events.done,
      releaseToMountMs,
      releaseToFirstWriteMs,
      unmountMs,
      localMountMs,
      localFirstWriteMs,
      cutoverCommands: totalsOf(spans),
    };
  }

  /** Removes everything the section made. Idempotent: every caller gets the same promise. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private keepLogs(): void {
    const to = this.opts.keepLog;
    if (!to || !this.ferry || !this.cluster) return;
    copyFileSync(this.ferry.controlLog, `${to}.moves-control.log`);
    for (const h of this.cluster.hosts) if (existsSync(this.ferry.agentLog(h))) copyFileSync(this.ferry.agentLog(h), `${to}.moves-${h.name}.log`);
  }

  private async doCleanup(): Promise<void> {
    progress('moves: cleaning up');
    const step = (what: string, fn: () => Promise<void> | void): Promise<void> => cleanupStep('moves cleanup', what, fn);
    for (const c of this.plugins.values()) c.close();
    for (const c of this.apis.values()) c.close();
    await step('keeping logs', () => this.keepLogs());
    await step('sshd', () => this.sshd?.stop());
    await step('local pools', () => this.pools?.destroy());
    await step('ferry', () => this.ferry?.stop());
    await step('test cluster', () => this.cluster?.teardown());
    await step('temp dir', () => cleanupDir(this.dir));
    progress('moves: clean');
  }
}

/** The pid in a move benchmark's temp dir name, or undefined for another dir. */
function ownerOf(dir: string): number | undefined {
  const m = new RegExp(`^${TEST_PREFIX}(\\d+)-${DIR_TAG}-`).exec(dir);
  return m ? Number(m[1]) : undefined;
}

/** Clears what a killed earlier move benchmark left: its sshd and its pools and keys. (The harness clears its cluster.) */
function removeMoveLeftovers(): void {
  for (const name of readdirSync('/tmp')) {
    const dir = join('/tmp', name);
    const owner = ownerOf(dir);
    if (owner === undefined || owner === process.pid || alive(owner)) continue;
    for (const pid of pidsWithArgs('/usr/sbin/sshd', '-f', join(dir, 'ssh', 'sshd_config'))) {
      progress(`stopping sshd pid ${pid}, left by an earlier run`);
      process.kill(pid, 'SIGKILL');
    }
    progress(`removing ${dir}, left by an earlier run`);
    if (existsSync(dir)) cleanupDir(dir);
  }
}
