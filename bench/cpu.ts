import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of processes from /proc/<pid>/stat, to say where a transfer's time goes: a process's own
 * time (for a ferry agent: JavaScript, ssh2's cipher, SHA-256 of the envelope) apart from the time of
 * its children that have exited (for an agent: btrfs send or receive, which it reaps when they end).
 */

/** CPU milliseconds, user + system. */
export interface CpuTimes {
  /** utime + stime: the process itself. */
  selfMs: number;
  /** cutime + cstime: its children (and theirs) that have exited and been waited for. */
  childrenMs: number;
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU times of `pid` (or this process with 'self'); zeros when it is gone. */
export function cpuOf(pid: number | 'self'): CpuTimes {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { selfMs: 0, childrenMs: 0 };
  }
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis):
  // [0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const ms = (ticks: number): number => (ticks * 1000) / clockTicks();
  return { selfMs: ms(f[11] + f[12]), childrenMs: ms(f[13] + f[14]) };
}

/** What `after` adds to `before`. */
export function cpuDelta(before: CpuTimes, after: CpuTimes): CpuTimes {
  return { selfMs: after.selfMs - before.selfMs, childrenMs: after.childrenMs - before.childrenMs };
}

/** Pids of processes whose argv contains every one of `words` (in any order), other than this one. */
export function pidsWithArgs(...words: string[]): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (words.every((w) => argv.includes(w))) out.push(Number(entry));
  }
  // A child the process has forked to spawn a command shows the parent's argv until it execs
  // (Node forks the agent for every btrfs call): a match whose parent matched too is such a child.
  const found = new Set(out);
  return out.filter((pid) => !found.has(parentOf(pid)));
}

/** The parent pid of `pid`; 0 when it is gone. */
function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Samples the CPU times of named processes, so that a phase can be charged to each of them. */
export class CpuMeter {
  constructor(private readonly pids: Record<string, number | 'self'>) {}

  read(): Record<string, CpuTimes> {
    return Object.fromEntries(Object.entries(this.pids).map(([k, pid]) => [k, cpuOf(pid)]));
  }

  /** Runs `fn` and returns its result with the CPU each named process spent meanwhile. */
  async measure<T>(fn: () => Promise<T>, settleMs = 0): Promise<{ value: T; cpu: Record<string, CpuTimes> }> {
    const before = this.read();
    const value = await fn();
    // A child's time reaches its parent only once the parent has reaped it.
    if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
    const after = this.read();
    return { value, cpu: Object.fromEntries(Object.keys(after).map((k) => [k, cpuDelta(before[k], after[k])])) };
  }
}
