import { readFileSync } from 'node:fs';

/**
 * A move's timeline from the agents' debug logs: every command an agent ran during the move (btrfs
 * snapshot, send, receive, show, the promote's snapshot and qgroup limit ...), with when it started
 * and how long it took, beside control's events. It tells where the seconds of a cut-over go.
 */

/** One command an agent ran. */
export interface CommandSpan {
  host: string;
  /** The argv up to its first path or option value, e.g. `btrfs subvolume snapshot -r`. */
  command: string;
  startMs: number;
  durationMs: number;
}

/** `btrfs subvolume snapshot -r /path ...` -> `btrfs subvolume snapshot -r`. */
export function commandLabel(argv: readonly string[]): string {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('/') || /^\d/.test(a) || words.length >= 4) break;
    words.push(a);
  }
  return words.join(' ');
}

/** Commands in `logFile` (pino JSON lines) that ended within [fromMs, toMs], labelled with `host`. */
export function commandsIn(logFile: string, host: string, fromMs: number, toMs: number): CommandSpan[] {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  const out: CommandSpan[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"command"')) continue;
    let rec: { time?: string; argv?: string[]; durationMs?: number };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      continue;
    }
    if (!rec.time || !rec.argv || typeof rec.durationMs !== 'number') continue;
    const end = Date.parse(rec.time);
    const startMs = end - rec.durationMs;
    if (end < fromMs || startMs > toMs) continue;
    out.push({ host, command: commandLabel(rec.argv), startMs, durationMs: rec.durationMs });
  }
  return out;
}

/** Busy time per command within a window, longest first: "h2 btrfs receive: 1 × 812 ms". */
export interface CommandTotal {
  host: string;
  command: string;
  count: number;
  totalMs: number;
}

export function totalsOf(spans: readonly CommandSpan[]): CommandTotal[] {
  const by = new Map<string, CommandTotal>();
  for (const s of spans) {
    const k = `${s.host} ${s.command}`;
    const t = by.get(k) ?? { host: s.host, command: s.command, count: 0, totalMs: 0 };
    t.count++;
    t.totalMs += s.durationMs;
    by.set(k, t);
  }
  return [...by.values()].sort((a, b) => b.totalMs - a.totalMs);
}

/** One pre-copy round of a move: bytes received and when it ended (epoch ms). */
export interface Round {
  bytes: number;
  endMs: number;
}

/** The pre-copy rounds of move `moveId`, from the target agent's log ("pre-copy round done"). */
export function precopyRounds(logFile: string, moveId: number): Round[] {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  const out: Round[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"pre-copy round done"')) continue;
    try {
      const rec = JSON.parse(line) as { move?: number; bytes?: number; time?: string };
      if (rec.move === moveId && typeof rec.bytes === 'number' && rec.time) out.push({ bytes: rec.bytes, endMs: Date.parse(rec.time) });
    } catch {
      // a line cut by a crash: skip it
    }
  }
  return out;
}

/** The target agent's own account of move `moveId` ("move done"): every byte it received, final increment included. */
export function moveDone(logFile: string, moveId: number): { bytes: number; durationMs: number; downtimeMs: number } | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"move done"')) continue;
    try {
      const rec = JSON.parse(line) as { move?: number; bytes?: number; durationMs?: number; downtimeMs?: number };
      if (rec.move === moveId && typeof rec.bytes === 'number') return { bytes: rec.bytes, durationMs: rec.durationMs ?? NaN, downtimeMs: rec.downtimeMs ?? NaN };
    } catch {
      // a line cut by a crash: skip it
    }
  }
  return undefined;
}
