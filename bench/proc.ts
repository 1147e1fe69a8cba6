import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { elapsedMs } from './stats';

/** Resident memory of a process from /proc/<pid>/status, in KiB. */
export interface Memory {
  /** VmRSS: resident now. */
  rssKiB: number;
  /** VmHWM: the highest resident size the process has had. */
  hwmKiB: number;
  /** RssAnon: heap and stacks, what the process itself allocated. */
  anonKiB: number;
  /** RssFile: mapped files (the node binary's code, shared libraries), shared with other processes that map them. */
  fileKiB: number;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM'), anonKiB: field('RssAnon'), fileKiB: field('RssFile') };
}

/** One command run with its wall time, from spawn to exit, as a user at a shell would see it. */
export interface TimedRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `argv` (no shell) and measures it; never throws for a non-zero exit, the caller decides. */
export function runTimed(argv: readonly string[], timeoutMs = 180_000): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: stdout.trim(), stderr: stderr.trim(), ms: elapsedMs(start) });
    });
  });
}

/** Like runTimed, but a non-zero exit throws with the command and its stderr. */
export async function runTimedOk(argv: readonly string[]): Promise<TimedRun> {
  const r = await runTimed(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r;
}

/** A bare HTTP server in its own process (echo-server.ts), for the latency floor of this machine. */
export async function startEchoServer(socket: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [join(__dirname, 'echo-server.js'), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    child.stdout.once('data', () => resolve());
  });
  child.removeAllListeners('exit');
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
