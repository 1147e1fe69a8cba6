import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { docker, dockerOk, E2E_LABEL, waitFor } from './docker';

/**
 * ferry as a managed (v2) plugin, the way a user gets it: built by scripts/build-plugin.sh,
 * pushed to a registry (Debian's docker-registry, started here on loopback, which dockerd lets
 * any client use without TLS) and installed from it with `docker plugin install`. Used by the
 * managed-plugin e2e test and the `managed-plugin` bench section.
 */

/** The registry's port: 5000 as the README shows, unless something else holds it. */
async function registryPort(): Promise<number> {
  const tryListen = (port: number): Promise<number | undefined> =>
    new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(undefined));
      s.listen(port, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
  return (await tryListen(5000)) ?? (await tryListen(0)) ?? 5000;
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** A distribution (v2) registry on 127.0.0.1 with its storage in `dir`, for as long as the test runs. */
export class LocalRegistry {
  private child?: ChildProcess;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** host:port, the prefix of a plugin reference in this registry. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get logFile(): string {
    return join(this.dir, 'registry.log');
  }

  static async start(dir: string): Promise<LocalRegistry> {
    const r = new LocalRegistry(dir, await registryPort());
    mkdirSync(join(dir, 'storage'), { recursive: true });
    const config = join(dir, 'config.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(dir, 'storage')}`,
        'http:',
        `  addr: 127.0.0.1:${r.port}`,
        '',
      ].join('\n'),
    );
    const log = openSync(r.logFile, 'a');
    r.child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
    const child = r.child;
    await waitFor(`docker-registry to answer on ${r.address}`, async () => {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${readFileSync(r.logFile, 'utf8').slice(-500)}`);
      return (await httpStatus(`http://${r.address}/v2/`)) === 200;
    }, 30_000);
    return r;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
}

/** What scripts/build-plugin.sh printed, and how long it took. */
export interface BuildRun {
  ms: number;
  output: string;
}

/**
 * Builds ferry's plugin from this checkout's dist/ and pushes it as `ref` (REGISTRY/NAME:TAG),
 * with `stamp` in the rootfs's /opt/ferry/BUILD so that builds can be told apart.
 */
export function buildAndPush(repoRoot: string, ref: string, stamp: string): BuildRun {
  const start = Date.now();
  const r = spawnSync('bash', [join(repoRoot, 'scripts/build-plugin.sh'), '--push', ref], {
    encoding: 'utf8',
    env: { ...process.env, FERRY_PLUGIN_NO_BUILD: '1', FERRY_PLUGIN_STAMP: stamp },
    timeout: 900_000,
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`scripts/build-plugin.sh --push ${ref} exited ${r.status}:\n${output.slice(-2000)}`);
  return { ms: Date.now() - start, output };
}

/** Builds the base image (debootstrap) when dockerd lacks it; cached across runs. */
export function buildBase(repoRoot: string): BuildRun & { cached: boolean } {
  const start = Date.now();
  const r = spawnSync('bash', [join(repoRoot, 'scripts/build-plugin-base.sh')], { encoding: 'utf8', timeout: 900_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`scripts/build-plugin-base.sh exited ${r.status}:\n${output.slice(-2000)}`);
  return { ms: Date.now() - start, output, cached: /is there \(cached\)/.test(output) };
}

/** `docker plugin inspect` of one plugin, the fields the tests read. */
export interface PluginInfo {
  Id: string;
  Name: string;
  Enabled: boolean;
  PluginReference: string;
  /** Args: the value of `args` as dockerd split it. */
  Settings: { Args: string[]; Mounts: unknown[] };
  Config: { PropagatedMount: string; Entrypoint: string[]; Linux: { Capabilities: string[]; AllowAllDevices: boolean } };
}

export function pluginInfo(name: string): PluginInfo {
  return JSON.parse(dockerOk(['plugin', 'inspect', name]))[0] as PluginInfo;
}

/** Where dockerd keeps a plugin: its rootfs and the propagated mount (ferry's /var/lib/ferry). */
export function pluginPaths(id: string): { root: string; rootfs: string; propagated: string } {
  const root = join('/var/lib/docker/plugins', id);
  return { root, rootfs: join(root, 'rootfs'), propagated: join(root, 'propagated-mount') };
}

/**
 * The pid of ferry inside the enabled plugin `name`: the process in the plugin's cgroup (dockerd
 * names it after the plugin's id) that runs bin/ferry. (/proc/PID/root shows only "/" for a
 * process in another mount namespace.)
 */
export function pluginPid(name: string): number | undefined {
  const id = pluginInfo(name).Id;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(`/${id}`)) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('/opt/ferry/bin/ferry')) return Number(entry);
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return undefined;
}

/** Installs `ref` from its registry under `alias`, enabled, with `settings` (`args=...`). */
export function installPlugin(ref: string, alias: string, settings: string[] = []): void {
  dockerOk(['plugin', 'install', '--alias', alias, '--grant-all-permissions', ref, ...settings], { timeoutMs: 600_000 });
}

/** The volumes of plugin `name` in dockerd. */
export function pluginVolumes(name: string): string[] {
  const driver = pluginInfo(name).Name;
  return docker(['volume', 'ls', '-q', '--filter', `driver=${driver}`]).stdout.split('\n').filter(Boolean);
}

/**
 * Removes plugin `name` and everything of it: containers of the e2e label, its volumes (while it
 * still answers), then the plugin itself with its propagated mount. Never throws; a plugin that
 * is not there is nothing to do.
 */
export function removePlugin(name: string, label = E2E_LABEL): void {
  if (docker(['plugin', 'inspect', name]).code !== 0) return;
  const ids = docker(['ps', '-aq', '--filter', `label=${label}`]).stdout.split('\n').filter(Boolean);
  if (ids.length) docker(['rm', '-f', ...ids]);
  if (!pluginInfo(name).Enabled) docker(['plugin', 'enable', name], { timeoutMs: 120_000 });
  const vols = pluginVolumes(name);
  if (vols.length) docker(['volume', 'rm', '-f', ...vols]);
  docker(['plugin', 'disable', '-f', name], { timeoutMs: 120_000 });
  docker(['plugin', 'rm', '-f', name], { timeoutMs: 120_000 });
}

/** Reads /opt/ferry/BUILD in the plugin's rootfs: which build dockerd runs. */
export function pluginBuild(name: string): string {
  const file = join(pluginPaths(pluginInfo(name).Id).rootfs, 'opt/ferry/BUILD');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
}
