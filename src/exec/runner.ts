import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { coalesceWrites } from '../stream/coalesce';

/** What one command run produced. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunOptions {
  /** Exit codes that are not failures, each named where it is used (0 is always fine). */
  okExitCodes?: readonly number[];
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  /** Kill the command after this many milliseconds (default: 10 minutes). */
  timeoutMs?: number;
}

/** A command whose stdin/stdout are streams (btrfs send/receive, tar). */
export interface StreamingCommand {
  stdin: Writable;
  stdout: Readable;
  /** Resolves when the command exits with an ok code; rejects with CommandFailedError otherwise. */
  done: Promise<CommandResult>;
  kill(): void;
}

/** Runs commands from argument arrays, never shell strings. */
export interface Runner {
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  stream(argv: readonly string[], opts?: Omit<RunOptions, 'input'>): StreamingCommand;
}

const STDERR_TAIL = 2000;
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

export class CommandFailedError extends FerryError {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stderrTail: string;

  constructor(argv: readonly string[], exitCode: number, stderr: string, cause?: unknown) {
    const tail = stderr.trim().slice(-STDERR_TAIL);
    super('COMMAND_FAILED', `${argv.join(' ')} exited with ${exitCode}${tail ? `: ${tail}` : ''}`, {
      cause,
      details: { argv, exitCode, stderr: tail },
    });
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderrTail = tail;
  }
}

function ok(code: number, opts: RunOptions | undefined): boolean {
  return code === 0 || (opts?.okExitCodes?.includes(code) ?? false);
}

/** The real runner: child_process.spawn, with each run logged at debug. */
export class ProcessRunner implements Runner {
  constructor(private readonly log: Logger) {}

  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    const cmd = this.stream(argv, opts);
    const out: Buffer[] = [];
    cmd.stdout.on('data', (b: Buffer) => out.push(b));
    if (opts?.input !== undefined) cmd.stdin.end(opts.input);
    else cmd.stdin.end();
    return cmd.done.then((r) => ({ ...r, stdout: Buffer.concat(out).toString('utf8') }));
  }

  stream(argv: readonly string[], opts?: Omit<RunOptions, 'input'>): StreamingCommand {
    const started = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      stderr = (stderr + s).slice(-64 * 1024);
    });
    // A consumer that stops reading must not turn into an unhandled EPIPE.
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts?.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const done = new Promise<CommandResult>((resolve, reject) => {
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new CommandFailedError(argv, -1, `cannot start ${argv[0]}: ${err.message}`, err));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
        const exitCode = code ?? 128 + (signal ? 9 : 0);
        this.log.debug({ argv, exitCode, durationMs }, 'command');
        if (ok(exitCode, opts)) resolve({ exitCode, stdout: '', stderr, durationMs });
        else reject(new CommandFailedError(argv, exitCode, stderr || (signal ? `killed by ${signal}` : '')));
      });
    });
    // Callers that only use `stdout` must not see an unhandled rejection before they await `done`.
    done.catch(() => undefined);
    // Streams into a command (btrfs receive, tar) arrive in many small chunks: one writev per tick.
    return { stdin: coalesceWrites(child.stdin), stdout: child.stdout, done, kill: () => child.kill('SIGKILL') };
  }
}
