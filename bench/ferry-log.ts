import { readFileSync } from 'node:fs';
import { summarize, type Summary } from './stats';

/**
 * Where ferry's time goes, read from its own debug log: each plugin request logs its server-side
 * `durationMs`, and each command the runner spawns logs `argv` and `durationMs`. Comparing the
 * client's latency with these tells HTTP, ferry's own work (SQLite, JS) and spawned commands apart.
 */

/** A stretch of the benchmark: its wall-clock window and the volume-name prefix its requests use. */
export interface Phase {
  label: string;
  /** The plugin endpoint timed in this phase, e.g. `VolumeDriver.Create`; several with `|`. */
  ops: string;
  namePrefix: string;
  /** Plugin requests per timed sample (2 for a Mount + Unmount round trip). */
  requestsPerSample: number;
  fromIso: string;
  toIso: string;
}

export interface CommandFigure {
  /** The argv up to its first path or value, e.g. `btrfs qgroup limit`. */
  command: string;
  count: number;
  meanMs: number;
  totalMs: number;
}

export interface PhaseProfile {
  label: string;
  /** Timed samples found in the log (requests / requestsPerSample). */
  samples: number;
  /** Server-side time of each request, from the plugin layer's log line. */
  serverMs: Summary;
  /** Server-side time per sample. */
  serverMsPerSample: number;
  /** Commands spawned for this phase's volumes, per sample. */
  commandsPerSample: number;
  commandMsPerSample: number;
  commands: CommandFigure[];
  /** Commands in the same window for other work (the agent's periodic usage scan). */
  background: CommandFigure[];
}

interface LogLine {
  time?: string;
  msg?: string;
  op?: string;
  volume?: string;
  durationMs?: number;
  argv?: string[];
}

/** Tokens of argv up to the first that looks like a path or number: a stable name for the command. */
export function commandKey(argv: readonly string[]): string {
  const out: string[] = [];
  for (const t of argv) {
    if (t.startsWith('/') || /^\d/.test(t) || out.length >= 4) break;
    out.push(t);
  }
  return out.join(' ');
}

function figures(lines: LogLine[]): CommandFigure[] {
  const by = new Map<string, { count: number; totalMs: number }>();
  for (const l of lines) {
    const k = commandKey(l.argv ?? []);
    const e = by.get(k) ?? { count: 0, totalMs: 0 };
    e.count += 1;
    e.totalMs += l.durationMs ?? 0;
    by.set(k, e);
  }
  return [...by]
    .map(([command, e]) => ({ command, count: e.count, totalMs: e.totalMs, meanMs: e.totalMs / e.count }))
    .sort((a, b) => b.totalMs - a.totalMs);
}

/** Every record of a pino log file, in order; lines cut short by a kill are skipped. */
export function readLog<T extends object = LogLine>(file: string): T[] {
  const out: T[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A line cut short by a kill: skip it.
    }
  }
  return out;
}

/** Profiles each phase from ferry's log lines. */
export function profilePhases(lines: readonly LogLine[], phases: readonly Phase[]): PhaseProfile[] {
  return phases.map((p) => {
    const inWindow = lines.filter((l) => l.time !== undefined && l.time >= p.fromIso && l.time <= p.toIso);
    const ops = p.ops.split('|');
    const requests = inWindow.filter(
      (l) => l.msg === 'plugin request' && ops.includes(l.op ?? '') && (l.volume ?? '').startsWith(p.namePrefix),
    );
    const commands = inWindow.filter((l) => l.msg === 'command' && Array.isArray(l.argv));
    // A phase without a name prefix (List) spawns nothing of its own: all its commands are background.
    const ours = p.namePrefix ? commands.filter((l) => l.argv!.some((a) => a.includes(p.namePrefix))) : [];
    const others = commands.filter((l) => !ours.includes(l));
    const mine = figures(ours);
    const samples = requests.length / p.requestsPerSample;
    const n = Math.max(1, samples);
    const server = requests.map((l) => l.durationMs ?? NaN);
    return {
      label: p.label,
      samples,
      serverMs: summarize(server),
      serverMsPerSample: server.reduce((a, b) => a + b, 0) / n,
      commandsPerSample: ours.length / n,
      commandMsPerSample: mine.reduce((a, c) => a + c.totalMs, 0) / n,
      commands: mine,
      background: figures(others),
    };
  });
}
