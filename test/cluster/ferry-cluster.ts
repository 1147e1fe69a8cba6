import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Cluster, TestHost } from './harness';
import { unixRequest } from '../support/unix-http';
import { waitFor } from '../support/docker';

export const REPO_ROOT = resolve(__dirname, '../../..');
const FERRY = join(REPO_ROOT, 'bin/ferry');
export const CONTROL_PORT = 7400;

/** ferry control and one ferry agent per test host, each its own process (so tests can kill them). */
export class FerryCluster {
  readonly tokenFile: string;
  readonly controlUrl: string;
  private controlProc?: ChildProcess;
  private readonly agents = new Map<string, ChildProcess>();

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

  async startControl(): Promise<void> {
    const log = openSync(this.controlLog, 'a');
    this.controlProc = spawn(
      process.execPath,
      [FERRY, 'control', '--data-dir', join(this.cluster.dir, 'control'), '--listen', `${this.cluster.bridgeIp}:${CONTROL_PORT}`, '--token-file', this.tokenFile, '--log-level', 'debug'],
      { stdio: ['ignore', log, log] },
    );
    await waitFor('control to listen', () => {
      if (this.controlProc?.exitCode !== null) throw new Error(`control exited; see ${this.controlLog}`);
      return this.listening();
    });
  }

  private listening(): boolean {
    return readFileSync(this.controlLog, 'utf8').includes('control listening');
  }

  async killControl(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await killProc(this.controlProc, signal);
  }

  async startAgent(h: TestHost): Promise<void> {
    const config = join(h.dir, 'ferry.json');
    writeFileSync(config, JSON.stringify({ control: { heartbeatSeconds: 0.5, downAfterSeconds: 5 }, moves: { mountWaitSeconds: 60 }, ...this.settings }));
    mkdirSync(h.dataDir, { recursive: true });
    const log = openSync(this.agentLog(h), 'a');
    const child = h.spawnInNetns(
      [
        process.execPath, FERRY, '--api-socket', this.apiSocket(h), 'agent', '-c', config,
        '--control', this.controlUrl, '--token-file', this.tokenFile, '--data-dir', h.dataDir,
        '--plugin-socket', join(h.pluginDir, 'ferry.sock'), '--node-name', h.name,
        '--transfer-listen', `${h.ip}:7401`, '--log-level', 'debug',
      ],
      { stdio: ['ignore', log, log] },
    );
    this.agents.set(h.name, child);
    await waitFor(`agent of ${h.name} to answer`, async () => {
      if (child.exitCode !== null) throw new Error(`agent of ${h.name} exited; see ${this.agentLog(h)}`);
      if (!existsSync(this.apiSocket(h))) return false;
      try {
        const r = await unixRequest(this.apiSocket(h), '/v1/nodes', undefined, 'GET');
        return r.status === 200 && (r.json.nodes as { name: string }[]).some((n) => n.name === h.name);
      } catch {
        return false;
      }
    });
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
    const r = spawnSync(process.execPath, [FERRY, '--api-socket', this.apiSocket(h), ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Tails of every log, for a failed test. */
  logs(lines = 25): string {
    const tail = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n') : '(none)');
    return [`--- control ---\n${tail(this.controlLog)}`, ...this.cluster.hosts.map((h) => `--- agent ${h.name} ---\n${tail(this.agentLog(h))}`)].join('\n');
  }
}

async function killProc(c: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  await exited;
}
