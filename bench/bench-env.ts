import { existsSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FerryProcess, REPO_ROOT } from '../test/e2e/ferry-process';
import { requireDockerd } from '../test/support/docker';
import { socketAnswers } from '../src/serve';
import { cleanupDir, makeTempDir, processAlive as alive, requireRootAndTools, TEST_PREFIX } from '../test/support/host';
import { elapsedMs } from './stats';
import { DockerApi, filtersQuery, PluginClient } from './unix-client';

/** The benchmark's own plugin name, so that it never touches a ferry that serves this host, nor the e2e tests'. */
export const DRIVER = 'ferry-bench';
export const PLUGIN_SOCKET = `/run/docker/plugins/${DRIVER}.sock`;
/** Label on every container and `local` volume the benchmark makes in dockerd. */
export const BENCH_LABEL = 'ferry-bench';
const DIR_TAG = 'bench';

const started = Date.now();

/** A progress line on stderr; stdout carries only the tables and the JSON line. */
export function progress(msg: string): void {
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

/**
 * One step of a cleanup: runs `fn`, and if it fails says so (prefixed with `label`) and goes on, so
 * that one failed step does not leave the rest behind.
 */
export async function cleanupStep(label: string, what: string, fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
  } catch (err) {
    progress(`${label}: ${what} failed: ${(err as Error).message}`);
  }
}

/** Runs `fn` over `items`, `width` at a time. */
export async function eachLimited<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/**
 * Everything one benchmark run owns: its temp dir, its `ferry serve` process, its clients, and the
 * dockerd objects it made. `cleanup()` removes all of it, once, whether the run ended, failed or was
 * interrupted.
 */
export class BenchEnv {
  /** dockerd volumes this run made; the ferry ones must go while ferry still answers. */
  readonly dockerVolumes = new Set<string>();
  aborted = false;
  private cleaning?: Promise<void>;

  private constructor(
    readonly dir: string,
    readonly ferry: FerryProcess,
    readonly plugin: PluginClient,
    readonly docker: DockerApi,
  ) {}

  /** Checks the host, clears what a killed earlier run left, starts ferry and waits until its backends are up. */
  static async start(): Promise<BenchEnv> {
    requireRootAndTools('docker', 'btrfs', 'mkfs.ext4', 'mkfs.xfs', 'losetup');
    requireDockerd(REPO_ROOT);
    const docker = new DockerApi();
    await removeLeftovers(docker);
    const dir = makeTempDir(DIR_TAG);
    const ferry = new FerryProcess(dir, PLUGIN_SOCKET);
    const env = new BenchEnv(dir, ferry, new PluginClient(PLUGIN_SOCKET, true), docker);
    try {
      progress(`starting ferry serve (data dir ${ferry.dataDir}, plugin socket ${PLUGIN_SOCKET})`);
      await ferry.start();
      // Every plugin route waits for the backends to be up (pool made, quotas on): Activate does too.
      await env.plugin.call('/Plugin.Activate');
      progress(`ferry is up, pid ${ferry.pid}`);
    } catch (err) {
      await env.cleanup();
      throw err;
    }
    return env;
  }

  get ferryPid(): number {
    if (this.ferry.pid === undefined) throw new Error('ferry is not running');
    return this.ferry.pid;
  }

  /** Throws once the run was interrupted, so that a long loop stops between two calls. */
  /** Calls `fn(i)` for i < n, one after another, and returns each call's latency in ms. */
  async sample(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      this.checkAborted();
      const start = process.hrtime.bigint();
      await fn(i);
      out.push(elapsedMs(start));
    }
    return out;
  }

  checkAborted(): void {
    if (this.aborted) throw new Error('interrupted');
  }

  /** Removes everything the run made. Idempotent: every caller gets the same promise. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    progress('cleaning up');
    const step = (what: string, fn: () => Promise<void> | void): Promise<void> => cleanupStep('cleanup', what, fn);
    await step('containers', () => removeContainers(this.docker));
    await step('dockerd volumes', () =>
      eachLimited([...this.dockerVolumes], 4, async (name) => {
        await this.docker.call('DELETE', `/volumes/${encodeURIComponent(name)}?force=true`).catch(ignoreNotFound);
        this.dockerVolumes.delete(name);
      }),
    );
    await step('labelled local volumes', () => removeLocalVolumes(this.docker));
    this.plugin.close();
    await step('ferry', async () => {
      const exited = this.ferry.kill('SIGTERM');
      const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 15_000))]);
      if (late) await this.ferry.kill('SIGKILL');
    });
    await step('data dir, mounts and pool', () => cleanupDir(this.dir));
    await step('plugin socket', async () => {
      if (existsSync(PLUGIN_SOCKET) && !(await socketAnswers(PLUGIN_SOCKET))) unlinkSync(PLUGIN_SOCKET);
    });
    this.docker.close();
    progress('clean');
  }
}

function ignoreNotFound(err: unknown): void {
  if ((err as { status?: number }).status !== 404) throw err;
}

async function removeContainers(docker: DockerApi): Promise<void> {
  const list = (await docker.call('GET', `/containers/json?all=true&${filtersQuery({ label: [BENCH_LABEL] })}`)) as { Id: string }[];
  for (const c of list) await docker.call('DELETE', `/containers/${c.Id}?force=true`).catch(ignoreNotFound);
}

async function removeLocalVolumes(docker: DockerApi): Promise<void> {
  // The driver filter keeps dockerd from asking every plugin it knows (a dead one costs it 15 s of retries).
  const q = filtersQuery({ driver: ['local'], label: [BENCH_LABEL] });
  const { Volumes } = (await docker.call('GET', `/volumes?${q}`)) as { Volumes: { Name: string }[] | null };
  await eachLimited(Volumes ?? [], 4, (v) => docker.call('DELETE', `/volumes/${encodeURIComponent(v.Name)}?force=true`).catch(ignoreNotFound));
}

/** The pid of the benchmark run that owns a temp dir, or undefined for a dir that is not a benchmark's. */
function ownerOf(dir: string): number | undefined {
  if (!dir.startsWith(TEST_PREFIX)) return undefined;
  const m = new RegExp(`^(\\d+)-${DIR_TAG}-`).exec(dir.slice(TEST_PREFIX.length));
  return m ? Number(m[1]) : undefined;
}

/**
 * Stops a `ferry serve` that an earlier benchmark run started and left behind when it was killed:
 * one on this benchmark's plugin socket whose data dir belongs to a run that is gone.
 */
async function stopOrphanFerries(): Promise<void> {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const dataDir = argv[argv.indexOf('--data-dir') + 1] ?? '';
    const owner = ownerOf(dataDir);
    if (!argv.includes(PLUGIN_SOCKET) || !argv.includes('serve') || owner === undefined || alive(owner)) continue;
    progress(`stopping ferry pid ${entry}, left running by an earlier run (${dataDir})`);
    process.kill(Number(entry), 'SIGKILL');
    for (let i = 0; i < 50 && existsSync(`/proc/${entry}`); i++) await new Promise((r) => setTimeout(r, 100));
  }
}

/** Clears what a killed earlier benchmark left: its ferry, containers, labelled local volumes, temp dirs with mounts and pools. */
async function removeLeftovers(docker: DockerApi): Promise<void> {
  await stopOrphanFerries();
  await removeContainers(docker);
  await removeLocalVolumes(docker);
  for (const name of readdirSync('/tmp')) {
    const dir = join('/tmp', name);
    const owner = ownerOf(dir);
    if (owner === undefined || owner === process.pid || alive(owner)) continue;
    progress(`removing ${dir}, left by an earlier run`);
    cleanupDir(dir);
  }
}
