import { commandKey, readLog } from './ferry-log';

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

/** The records of `logFile` whose message is `msg` ([] while there is no log). */
function records<T extends object>(logFile: string, msg: string): T[] {
  let all: (T & { msg?: string })[];
  try {
    all = readLog<T & { msg?: string }>(logFile);
  } catch {
    return [];
  }
  return all.filter((r) => r.msg === msg);
}

/** Commands in `logFile` (pino JSON lines) that ended within [fromMs, toMs], labelled with `host`. */
export function commandsIn(logFile: string, host: string, fromMs: number, toMs: number): CommandSpan[] {
  const out: CommandSpan[] = [];
  for (const rec of records<{ time?: string; argv?: string[]; durationMs?: number }>(logFile, 'command')) {
    if (!rec.time || !rec.argv || typeof rec.durationMs !== 'number') continue;
    const end = Date.parse(rec.time);
    const startMs = end - rec.durationMs;
    if (end < fromMs || startMs > toMs) continue;
    out.push({ host, command: commandKey(rec.argv), startMs, durationMs: rec.durationMs });
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
  return records<{ move?: number; bytes?: number; time?: string }>(logFile, 'pre-copy round done')
    .filter((r) => r.move === moveId && typeof r.bytes === 'number' && r.time)
    .map((r) => ({ bytes: r.bytes!, endMs: Date.parse(r.time!) }));
}

/** The target agent's own account of move `moveId` ("move done"): every byte it received, final increment included. */
export function moveDone(logFile: string, moveId: number): { bytes: number; durationMs: number; downtimeMs: number } | undefined {
  const rec = records<{ move?: number; bytes?: number; durationMs?: number; downtimeMs?: number }>(logFile, 'move done').find(
    (r) => r.move === moveId && typeof r.bytes === 'number',
  );
  return rec && { bytes: rec.bytes!, durationMs: rec.durationMs ?? NaN, downtimeMs: rec.downtimeMs ?? NaN };
}
