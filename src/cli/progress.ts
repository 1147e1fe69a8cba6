import { SingleBar } from 'cli-progress';
import { formatSize } from '../volume/size';

/**
 * Progress of a long operation as the CLI shows it: a bar with rate and time left on a terminal
 * (cli-progress), plain lines when not a terminal (logs, CI, pipes). Any long operation (moves today;
 * snapshots, replication seeding, backups and restores later) feeds it samples; it works out the
 * rate and the time left itself.
 */

/** Where an operation is: bytes done, bytes in all when known, and its current step in words. */
export interface ProgressSample {
  done: number;
  total: number | null;
  step: string;
}

/** Rate and time left, worked out from the samples of the last RATE_WINDOW_MS. */
export interface ProgressFigures {
  /** Bytes per second; null until two samples are apart in time. */
  rate: number | null;
  /** Seconds left; null when the total or the rate is unknown. */
  etaSeconds: number | null;
}

const RATE_WINDOW_MS = 10_000;
/** Without a known total, a plain line at least this often while bytes move. */
const PLAIN_EVERY_MS = 10_000;

/** A percentage, whole, capped at 100; null without a total. */
export function percentOf(s: Pick<ProgressSample, 'done' | 'total'>): number | null {
  return s.total ? Math.min(100, Math.floor((100 * s.done) / s.total)) : null;
}

/** "1 h 02 min", "3 min 05 s", "12 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${s} s`;
}

/** The words after the bar: "1.2 GiB of 3.0 GiB, 40.0 MiB/s, 45 s left". */
export function describeFigures(s: ProgressSample, f: ProgressFigures): string {
  const parts = [s.total ? `${formatSize(s.done)} of ${formatSize(s.total)}` : `${formatSize(s.done)}`];
  if (f.rate !== null) parts.push(`${formatSize(Math.round(f.rate))}/s`);
  if (f.etaSeconds !== null) parts.push(`${formatDuration(f.etaSeconds)} left`);
  return parts.join(', ');
}

/** One plain line (not a terminal): "db: precopy 41%, 1.2 GiB of 3.0 GiB, 40.0 MiB/s, 45 s left". */
export function plainLine(title: string, s: ProgressSample, f: ProgressFigures): string {
  const pct = percentOf(s);
  return `${title}: ${s.step}${pct === null ? '' : ` ${pct}%`}, ${describeFigures(s, f)}`;
}

/**
 * Whether a plain line is worth printing: a new step, a new tenth of the way, or (without a total)
 * some time since the last line while bytes moved. Keeps logs short whatever the poll rate.
 */
export function worthPrinting(last: { sample: ProgressSample; at: number } | undefined, s: ProgressSample, now: number): boolean {
  if (!last) return true;
  if (last.sample.step !== s.step) return true;
  const [a, b] = [percentOf(last.sample), percentOf(s)];
  if (a !== null && b !== null) return Math.floor(b / 10) !== Math.floor(a / 10);
  return s.done !== last.sample.done && now - last.at >= PLAIN_EVERY_MS;
}

/** Rate over the samples of the last window (oldest kept to newest); time left from it. */
export function figuresOf(history: { at: number; done: number }[], s: ProgressSample): ProgressFigures {
  const first = history[0];
  const last = history[history.length - 1];
  if (!first || !last || last.at <= first.at) return { rate: null, etaSeconds: null };
  const rate = Math.max(0, (last.done - first.done) / ((last.at - first.at) / 1000));
  const etaSeconds = s.total && rate > 0 ? Math.max(0, (s.total - s.done) / rate) : null;
  return { rate, etaSeconds };
}

/** What the bar writes to: a stream, and whether it is a terminal. */
export interface ProgressOutput {
  stream: NodeJS.WritableStream;
  tty: boolean;
}

export class Progress {
  private readonly history: { at: number; done: number }[] = [];
  private bar?: SingleBar;
  private lastPrinted?: { sample: ProgressSample; at: number };
  private lastSample?: ProgressSample;

  constructor(
    private readonly title: string,
    private readonly out: ProgressOutput = { stream: process.stderr, tty: process.stderr.isTTY === true },
    private readonly now: () => number = Date.now,
  ) {}

  /** A new sample: redraws the bar, or prints a plain line when one is worth it. */
  update(s: ProgressSample): void {
    const at = this.now();
    this.lastSample = s;
    // A step that restarts its count (a new round) starts the rate afresh.
    const prev = this.history[this.history.length - 1];
    if (prev && s.done < prev.done) this.history.length = 0;
    this.history.push({ at, done: s.done });
    while (this.history.length > 2 && at - this.history[0].at > RATE_WINDOW_MS) this.history.shift();
    const f = figuresOf(this.history, s);
    if (this.out.tty) {
      this.drawBar(s, f);
      return;
    }
    if (worthPrinting(this.lastPrinted, s, at)) {
      this.out.stream.write(`${plainLine(this.title, s, f)}\n`);
      this.lastPrinted = { sample: s, at };
    }
  }

  /** Ends the bar (the terminal keeps its last state); then prints `message`, if any, on its own line. */
  stop(message?: string): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
    }
    if (message) this.out.stream.write(`${message}\n`);
  }

  private drawBar(s: ProgressSample, f: ProgressFigures): void {
    const payload = { title: this.title, step: s.step, figures: describeFigures(s, f) };
    // Without a total the bar shows bytes against themselves: it stays empty, the words carry it.
    const total = s.total ?? 0;
    if (!this.bar) {
      this.bar = new SingleBar({
        stream: this.out.stream as NodeJS.WriteStream,
        format: '{title} [{bar}] {percentage}% {step} | {figures}',
        barsize: 30,
        hideCursor: false,
        clearOnComplete: false,
        // The rate and time left are ours (over a window), not cli-progress's.
        etaBuffer: 1,
        fps: 5,
        // No total yet: an empty bar, not a full one.
        emptyOnZero: true,
      });
      this.bar.start(total, Math.min(s.done, total), payload);
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(Math.min(s.done, total), payload);
  }

  /** The last sample given (for callers that print a summary). */
  get last(): ProgressSample | undefined {
    return this.lastSample;
  }
}
