import { PassThrough } from 'node:stream';
import { CommandFailedError, type CommandResult, type RunOptions, type Runner, type StreamingCommand } from '../../src/exec/runner';

/** One word of an expected argv: exactly this string, or any string the pattern matches (temp names). */
export type ArgMatcher = string | RegExp;

/** What a scripted command answers. A non-zero exitCode that the caller does not tolerate throws CommandFailedError, as the real runner does. */
export interface FakeResult {
  exitCode?: number;
  stdout?: string;
  stderr?: string;
}

interface Expectation {
  argv: readonly ArgMatcher[];
  result: FakeResult;
  /** How many more runs it answers; Infinity for `persist`. */
  left: number;
  used: number;
}

function show(argv: readonly ArgMatcher[]): string {
  return argv.map((a) => (typeof a === 'string' ? a : String(a))).join(' ');
}

function matches(expected: readonly ArgMatcher[], argv: readonly string[]): boolean {
  return expected.length === argv.length && expected.every((m, i) => (typeof m === 'string' ? m === argv[i] : m.test(argv[i])));
}

/**
 * A scripted command runner for unit tests (undici's MockAgent): it plugs in where the real Runner
 * does, answers only the argv it was told to expect, fails a run of any other argv, and `verify()`
 * fails on expectations never used and on unexpected runs (call it in afterEach).
 */
export class FakeRunner implements Runner {
  private readonly expectations: Expectation[] = [];
  private readonly unexpected: string[] = [];
  /** Every argv run, in order. */
  readonly calls: string[][] = [];

  /** Expects `argv` to be run (once, or `times` times, or any number with `persist`), answering `result`. */
  expect(argv: readonly ArgMatcher[], result: FakeResult = {}, opts: { times?: number; persist?: boolean } = {}): this {
    this.expectations.push({ argv, result, left: opts.persist ? Infinity : (opts.times ?? 1), used: 0 });
    return this;
  }

  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    try {
      return Promise.resolve(this.answer(argv, opts));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  stream(argv: readonly string[], opts?: Omit<RunOptions, 'input'>): StreamingCommand {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    stdin.resume();
    let done: Promise<CommandResult>;
    try {
      const r = this.answer(argv, opts);
      stdout.end(r.stdout);
      done = Promise.resolve(r);
    } catch (err) {
      stdout.end();
      done = Promise.reject(err);
      done.catch(() => undefined);
    }
    return { stdin, stdout, done, kill: () => stdout.destroy() };
  }

  /** Throws when an expectation was never used or a run was not expected. */
  verify(): void {
    const unused = this.expectations.filter((e) => e.used === 0).map((e) => `  ${show(e.argv)}`);
    const problems: string[] = [];
    if (unused.length) problems.push(`expected but never run:\n${unused.join('\n')}`);
    if (this.unexpected.length) problems.push(`run but not expected:\n${this.unexpected.map((a) => `  ${a}`).join('\n')}`);
    if (problems.length) throw new Error(`FakeRunner: ${problems.join('\n')}`);
  }

  private answer(argv: readonly string[], opts: RunOptions | Omit<RunOptions, 'input'> | undefined): CommandResult {
    this.calls.push([...argv]);
    const e = this.expectations.find((x) => x.left > 0 && matches(x.argv, argv));
    if (!e) {
      this.unexpected.push(argv.join(' '));
      const left = this.expectations.filter((x) => x.left > 0).map((x) => `  ${show(x.argv)}`);
      throw new Error(`FakeRunner: unexpected command ${argv.join(' ')}${left.length ? `; still expected:\n${left.join('\n')}` : '; nothing more was expected'}`);
    }
    e.left -= 1;
    e.used += 1;
    const exitCode = e.result.exitCode ?? 0;
    const stderr = e.result.stderr ?? '';
    if (exitCode !== 0 && !(opts?.okExitCodes ?? []).includes(exitCode)) throw new CommandFailedError(argv, exitCode, stderr);
    return { exitCode, stdout: e.result.stdout ?? '', stderr, durationMs: 0 };
  }
}
