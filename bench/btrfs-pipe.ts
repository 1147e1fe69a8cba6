import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupDir } from '../test/support/host';
import { cpuDelta, cpuOf, type CpuTimes } from './cpu';
import { runTimedOk } from './proc';
import { writeRandomFiles } from './random-files';
import { elapsedMs } from './stats';

/**
 * Two btrfs pools on sparse loop-mounted files on this machine's disk, and `btrfs send | btrfs receive`
 * piped from one to the other: the fastest a snapshot can travel here, with no network, cipher or
 * checksum in the way. The move benchmark's floor for ferry's transfer.
 */

export interface PipeRun {
  /** From start until btrfs receive exited: the data received, much of it still dirty in the page cache. */
  ms: number;
  /** Then `sync -f` of the target pool: until the data is on disk. */
  syncMs: number;
  /** btrfs send and btrfs receive together (children of this process). */
  cpu: CpuTimes;
}

export class LocalPools {
  private destroyed = false;

  private constructor(
    readonly dir: string,
    readonly source: string,
    readonly target: string,
  ) {}

  /** Makes two pools of `bytes` each (sparse) under `dir` and mounts them; `quotas` turns qgroups on as ferry's pools have them. */
  static async make(dir: string, bytes: number, quotas: boolean): Promise<LocalPools> {
    const pools = new LocalPools(dir, join(dir, 'pool-a'), join(dir, 'pool-b'));
    try {
      mkdirSync(dir, { recursive: true });
      for (const mnt of [pools.source, pools.target]) {
        const image = `${mnt}.img`;
        await runTimedOk(['truncate', '-s', String(bytes), image]);
        await runTimedOk(['mkfs.btrfs', '-q', '-L', 'ferry-bench', image]);
        mkdirSync(mnt, { recursive: true });
        await runTimedOk(['mount', '-o', 'loop', image, mnt]);
        if (quotas) await runTimedOk(['btrfs', 'quota', 'enable', mnt]);
      }
    } catch (err) {
      pools.destroy();
      throw err;
    }
    return pools;
  }

  /** A subvolume `name` in the source pool with `bytes` of random data, and its read-only snapshot. */
  async prepare(name: string, bytes: number): Promise<void> {
    const sub = join(this.source, name);
    await runTimedOk(['btrfs', 'subvolume', 'create', sub]);
    await writeRandomFiles(sub, bytes);
    await runTimedOk(['btrfs', 'subvolume', 'snapshot', '-r', sub, this.snapshot(name)]);
    await runTimedOk(['btrfs', 'filesystem', 'sync', this.source]);
  }

  private snapshot(name: string): string {
    return join(this.source, `${name}.snap`);
  }

  /**
   * Times `btrfs send SNAP | btrfs receive POOL-B` from start to receive's exit. The two processes
   * share a kernel pipe (send's stdout is receive's stdin), so no byte passes through Node.
   */
  async pipe(name: string): Promise<PipeRun> {
    const cpuBefore = cpuOf('self');
    const start = process.hrtime.bigint();
    const receive = spawn('btrfs', ['receive', '-q', this.target], { stdio: ['pipe', 'ignore', 'pipe'] });
    // receive's stdin becomes send's stdout; this process closes its own end at once (it never
    // writes), so that receive sees the end of the stream when send exits.
    const send = spawn('btrfs', ['send', '-q', this.snapshot(name)], { stdio: ['ignore', receive.stdin, 'pipe'] });
    receive.stdin!.destroy();
    const exit = (p: ReturnType<typeof spawn>, what: string): Promise<void> => {
      let stderr = '';
      p.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      return new Promise((resolve, reject) => {
        p.once('error', reject);
        p.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} exited ${code}: ${stderr.trim()}`))));
      });
    };
    await Promise.all([exit(send, 'btrfs send'), exit(receive, 'btrfs receive')]);
    const ms = elapsedMs(start);
    const cpu = cpuDelta(cpuBefore, cpuOf('self'));
    const syncMs = (await runTimedOk(['sync', '-f', this.target])).ms;
    return { ms, syncMs, cpu };
  }

  /** Deletes the subvolumes of `name` in both pools, and waits until their space is free. */
  async drop(name: string): Promise<void> {
    await runTimedOk(['btrfs', 'subvolume', 'delete', '-c', this.snapshot(name), join(this.source, name), join(this.target, `${name}.snap`)]);
  }

  /** Unmounts both pools (their loop devices go with them) and removes the dir. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    cleanupDir(this.dir);
  }
}
