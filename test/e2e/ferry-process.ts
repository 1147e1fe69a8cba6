import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { unixRequest } from '../support/unix-http';
import { waitFor } from '../support/docker';

export const REPO_ROOT = resolve(__dirname, '../../..');
/** Run directly (never `node bin/ferry`): its shebang carries ferry's V8 flags. */
export const FERRY = join(REPO_ROOT, 'bin/ferry');

/** `ferry serve` as its own process, as a user runs it, so that tests can SIGKILL it. */
export class FerryProcess {
  private child?: ChildProcess;
  readonly apiSocket: string;
  readonly dataDir: string;
  readonly logFile: string;

  constructor(
    readonly dir: string,
    readonly pluginSocket: string,
    /** More flags of `ferry serve` (a config file, a node name of its own). */
    readonly extraArgs: string[] = [],
    /** Its web listener (/metrics): a free loopback port, or "off". */
    readonly webListen = '127.0.0.1:0',
  ) {
    this.apiSocket = join(dir, 'api.sock');
    this.dataDir = join(dir, 'data');
    this.logFile = join(dir, 'ferry.log');
  }

  async start(): Promise<void> {
    const log = openSync(this.logFile, 'a');
    // bin/ferry itself, as the systemd unit runs it, so that its shebang's V8 flags apply.
    this.child = spawn(
      FERRY,
      ['--api-socket', this.apiSocket, 'serve', '--data-dir', this.dataDir, '--plugin-socket', this.pluginSocket, '--node-name', 'e2e', '--log-level', 'debug', '--web-listen', this.webListen, ...this.extraArgs],
      { stdio: ['ignore', log, log] },
    );
    await waitFor('ferry to answer', async () => {
      if (this.child?.exitCode !== null) throw new Error(`ferry exited with ${this.child?.exitCode}; see ${this.logFile}`);
      if (!existsSync(this.apiSocket)) return false;
      try {
        return (await unixRequest(this.apiSocket, '/v1/status', undefined, 'GET')).status === 200;
      } catch {
        return false;
      }
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Kills ferry with `signal` and waits for it to exit. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  }

  /** The CLI, as a user types it. */
  cli(args: string[]): { code: number; stdout: string; stderr: string } {
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const r = spawnSync(FERRY, ['--api-socket', this.apiSocket, ...args], { encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
}
