import { spawn, spawnSync } from 'node:child_process';
import type { Run } from '../support/docker';

export type { Run };

export interface ExecOptions {
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Killed (SIGKILL) after this many milliseconds; default 3 minutes. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 180_000;

/** Runs argv synchronously; never throws, the caller asserts on the result (code -1: could not run). */
export function execSync(argv: readonly string[], opts: ExecOptions = {}): Run {
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    input: opts.input,
    env: opts.env,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  const stderr = (r.stderr ?? '').trim() || (r.error ? `cannot run ${argv[0]}: ${r.error.message}` : '');
  return { code: r.status ?? -1, stdout: (r.stdout ?? '').trim(), stderr };
}

/**
 * Runs argv without blocking the event loop, so that a server in this process (a test plugin)
 * can answer the command's daemon meanwhile. Never rejects.
 */
export function execAsync(argv: readonly string[], opts: ExecOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    let spawnError = '';
    child.on('error', (e) => {
      spawnError = `cannot run ${argv[0]}: ${e.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8').trim() || spawnError || (signal ? `killed by ${signal}` : '');
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8').trim(), stderr });
    });
  });
}

/** Like execSync but throws, with argv and stderr, when the command fails. */
export function execOk(argv: readonly string[], opts: ExecOptions = {}): string {
  const r = execSync(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
