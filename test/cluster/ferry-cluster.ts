import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Cluster, TestHost } from './harness';
import { requestJson, unixRequest, type JsonAnswer } from '../support/unix-http';
import { waitFor } from '../support/docker';
import { scrape, type Scrape } from '../support/prom-text';

export const REPO_ROOT = resolve(__dirname, '../../..');
/** Run directly (never `node bin/ferry`), as the systemd unit does: its shebang carries ferry's V8 flags. */
export const FERRY = join(REPO_ROOT, 'bin/ferry');
export const CONTROL_PORT = 7400;
/** Where each agent's web listener (/metrics) listens, on its host's address (so beyond loopback: with the cluster token). */
export const WEB_PORT = 7402;

/** ferry control and one ferry agent per test host, each its own process (so tests can kill them). */
export class FerryCluster {
  readonly tokenFile: string;
  readonly controlUrl: string;
  private controlProc?: ChildProcess;
  private readonly agents = new Map<string, ChildProcess>();
  /** Control's own config (for example {control: {keepReplica: false}}), kept for its restarts. */
  controlSettings: Record<string, unknown> = {};

  constructor(
    readonly cluster: Cluster,
    readonly settings: Record<string, unknown> = {},
  ) {
    this.tokenFile = join(cluster.dir, 'token');
    writeFileSync(this.tokenFile, 'test-token-' + 'x'.repeat(32), { mode: 0o600 });
    this.controlUrl = `http://${cluster.bridgeIp}:${CONTROL_PORT}`;
  }

  apiSocket(h: TestHost): string {
    return join(h.dir, 'ferry-api.sock');
  }
  agentLog(h: TestHost): string {
    return join(h.dir, 'ferry-agent.log');
  }
  get controlLog(): string {
    return join(this.cluster.dir, 'ferry-control.log');
  }

  /** Starts (or restarts) control with `controlSettings` as its config file; waits until this run listens. */
  async startControl(): Promise<void> {
    const config = join(this.cluster.dir, 'control.json');
    writeFileSync(config, JSON.stringify(this.controlSettings));
    // A restart appends to the log: only what this run writes counts.
    const from = existsSync(this.controlLog) ? statSync(this.controlLog).size : 0;
    const log = openSync(this.controlLog, 'a');
    this.controlProc = spawn(
      FERRY,
      ['control', '-c', config, '--data-dir', join(this.cluster.dir, 'control'), '--listen', `${this.cluster.bridgeIp}:${CONTROL_PORT}`, '--token-file', this.tokenFile, '--log-level', 'debug'],
      { stdio: ['ignore', log, log] },
    );
    await waitFor('control to listen', () => {
      if (this.controlProc?.exitCode !== null) throw new Error(`control exited; see ${this.controlLog}`);
      return this.listening(from);
    });
  }

  private listening(from: number): boolean {
    return readFileSync(this.controlLog).subarray(from).toString('utf8').includes('control listening');
  }

  async killControl(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await killProc(this.controlProc, signal);
  }

  async startAgent(h: TestHost): Promise<void> {
    await this.startAgentWith(h, {});
  }

  async killAgent(h: TestHost, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await killProc(this.agents.get(h.name), signal);
  }

  async start(): Promise<void> {
    await this.startControl();
    for (const h of this.cluster.hosts) await this.startAgent(h);
  }

  async stop(): Promise<void> {
    for (const h of this.cluster.hosts) await this.killAgent(h, 'SIGTERM');
    await this.killControl('SIGTERM');
  }

  /** The ferry CLI on host `h`. */
  cli(h: TestHost, args: string[], timeoutMs = 300_000): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(FERRY, ['--api-socket', this.apiSocket(h), ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Tails of every log, for a failed test. */
  logs(lines = 25): string {
    const tail = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n') : '(none)');
    return [`--- control ---\n${tail(this.controlLog)}`, ...this.cluster.hosts.map((h) => `--- agent ${h.name} ---\n${tail(this.agentLog(h))}`)].join('\n');
  }

  /**
   * Starts the agent of `h` with `overrides` deep-merged over the cluster's settings: one host with
   * its own config (a small btrfs pool, another step delay). Waits as startAgent does.
   */
  async startAgentWith(h: TestHost, overrides: Record<string, unknown>): Promise<void> {
    const config = join(h.dir, 'ferry.json');
    const base = {
      dockerSocket: h.dockerSocket,
      control: { heartbeatSeconds: 0.5, downAfterSeconds: 5 },
      moves: { mountWaitSeconds: 60 },
      web: { listen: `${h.ip}:${WEB_PORT}` },
    };
    writeFileSync(config, JSON.stringify(deepMerge(deepMerge(base, this.settings), overrides)));
    mkdirSync(h.dataDir, { recursive: true });
    const log = openSync(this.agentLog(h), 'a');
    const child = h.spawnInNetns(
      [
        FERRY, '--api-socket', this.apiSocket(h), 'agent', '-c', config,
        '--control', this.controlUrl, '--token-file', this.tokenFile, '--data-dir', h.dataDir,
        '--plugin-socket', join(h.pluginDir, 'ferry.sock'), '--node-name', h.name,
        '--transfer-listen', `${h.ip}:7401`, '--log-level', 'debug',
      ],
      { stdio: ['ignore', log, log] },
    );
    this.agents.set(h.name, child);
    let last = 'no API socket yet';
    await waitFor(`agent of ${h.name} to answer`, async () => {
      if (child.exitCode !== null) throw new Error(`agent of ${h.name} exited; see ${this.agentLog(h)}`);
      if (!existsSync(this.apiSocket(h))) return false;
      try {
        const r = await unixRequest(this.apiSocket(h), '/v1/nodes', undefined, 'GET');
        last = `GET /v1/nodes answered ${r.status}: ${JSON.stringify(r.json).slice(0, 300)}`;
        return r.status === 200 && (r.json.nodes as { name: string }[]).some((n) => n.name === h.name);
      } catch (err) {
        last = `GET /v1/nodes failed: ${(err as Error).message}`;
        return false;
      }
    }).catch((err: Error) => {
      // What the agent said is what tells why it did not come up: put it in the failure.
      const tail = readFileSync(this.agentLog(h), 'utf8').split('\n').slice(-40).join('\n');
      throw new Error(`${err.message} (last: ${last})\n--- agent ${h.name} log, last lines ---\n${tail}`);
    });
  }

  /** Whether the agent of `h` that this cluster started still runs. */
  agentRunning(h: TestHost): boolean {
    const c = this.agents.get(h.name);
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** Whether the control process that this cluster started still runs. */
  controlRunning(): boolean {
    const c = this.controlProc;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /**
   * Calls control's REST API straight from the test process (with the cluster token): quick enough to
   * poll a move's step every few ms, and the agent calls (POST /v1/agent/<call>, {args}) that a Mount makes.
   */
  controlRequest(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 5_000): Promise<JsonAnswer> {
    const token = readFileSync(this.tokenFile, 'utf8').trim();
    const url = new URL(path, this.controlUrl);
    return requestJson(
      { hostname: url.hostname, port: url.port, path: url.pathname + url.search, method, timeout: timeoutMs, headers: { Authorization: `Bearer ${token}` } },
      body === undefined ? '' : JSON.stringify(body),
    );
  }

  /** The /metrics of the agent of `h`, scraped from the test process with the cluster token. */
  scrapeAgent(h: TestHost): Promise<Scrape> {
    return scrape(`http://${h.ip}:${WEB_PORT}/metrics`, readFileSync(this.tokenFile, 'utf8').trim());
  }

  /** Control's /metrics (the cluster's series), with the cluster token. */
  scrapeControl(): Promise<Scrape> {
    return scrape(`${this.controlUrl}/metrics`, readFileSync(this.tokenFile, 'utf8').trim());
  }

  /** Where the agent of `h` keeps its btrfs pool (ferry's default: a loop-mounted pool file under its data dir). */
  btrfsPool(h: TestHost): string {
    return join(h.dataDir, 'btrfs', 'pool');
  }

  /**
   * Every btrfs subvolume of volume `name` in the pool of `h`, as paths in the pool: the live
   * dataset (volumes/NAME), its temporaries (volumes/.NAME.new) and its snapshots (snapshots/NAME/S),
   * read-only or not (a receive cut off midway leaves a writable one). Empty when the pool has none.
   */
  subvolumesOf(h: TestHost, name: string): string[] {
    const pool = this.btrfsPool(h);
    const r = spawnSync('btrfs', ['subvolume', 'list', pool], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`btrfs subvolume list ${pool} exited ${r.status}: ${r.stderr}`);
    return r.stdout
      .split('\n')
      .map((l) => / path (.+)$/.exec(l)?.[1] ?? '')
      .map((p) => p.replace(/^<FS_TREE>\//, ''))
      .filter((p) => p === `volumes/${name}` || p.startsWith(`volumes/.${name}.`) || p.startsWith(`snapshots/${name}/`))
      .sort();
  }

  /** Command lines of the `btrfs send` and `btrfs receive` processes that work on volume `name` in the pool of `h`. */
  transfersOf(h: TestHost, name: string): string[] {
    const dir = join(this.btrfsPool(h), 'snapshots', name);
    const found: string[] = [];
    for (const pid of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue; // gone meanwhile
      }
      if (argv[0] === 'btrfs' && (argv[1] === 'send' || argv[1] === 'receive') && argv.some((a) => a === dir || a.startsWith(`${dir}/`))) {
        found.push(`${pid}: ${argv.join(' ').trim()}`);
      }
    }
    return found;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` merged into `base`, objects key by key. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

async function killProc(c: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  await exited;
}
