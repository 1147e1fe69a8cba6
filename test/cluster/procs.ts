import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './exec';

/*
 * Finding and ending what test hosts run: their dockerds, containerds and shims (their command
 * lines name the cluster dir), processes started in their network namespaces (ferry agents),
 * and container processes (in the hosts' own cgroup parents).
 */

/** dockerd of host n puts its containers under this cgroup (cgroupfs driver). */
export const CGROUP_PREFIX = 'ferry-test-cluster-h';
const CGROUP_ROOT = '/sys/fs/cgroup';

export function cgroupParent(n: number): string {
  return `${CGROUP_PREFIX}${n}`;
}

export interface ProcInfo {
  pid: number;
  cmdline: string;
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((f) => /^\d+$/.test(f))
    .map(Number)
    .filter((p) => p !== process.pid);
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

function netnsInodeOf(pid: number): number | undefined {
  try {
    // "net:[4026532179]"
    const m = /\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Processes whose command line contains `dirPrefix` or that live in one of `netnsInodes`. */
export function findHostProcesses(dirPrefix: string, netnsInodes: Set<number>): ProcInfo[] {
  const found: ProcInfo[] = [];
  for (const pid of allPids()) {
    const cmdline = cmdlineOf(pid);
    if (cmdline === undefined || cmdline === '') continue; // gone, or a kernel thread
    const ino = netnsInodeOf(pid);
    if (cmdline.includes(dirPrefix) || (ino !== undefined && netnsInodes.has(ino))) found.push({ pid, cmdline });
  }
  return found;
}

/** Every cgroup directory (all v1 hierarchies and the v2 tree) made for test hosts, deepest first. */
export function findHostCgroups(): string[] {
  if (!existsSync(CGROUP_ROOT)) return [];
  const tops: string[] = [];
  const consider = (dir: string): void => {
    for (const e of safeReaddir(dir)) if (e.startsWith(CGROUP_PREFIX)) tops.push(join(dir, e));
  };
  consider(CGROUP_ROOT);
  for (const hierarchy of safeReaddir(CGROUP_ROOT)) consider(join(CGROUP_ROOT, hierarchy));
  const all: string[] = [];
  const walk = (dir: string): void => {
    all.push(dir);
    for (const e of safeReaddir(dir)) if (isDir(join(dir, e))) walk(join(dir, e));
  };
  tops.forEach(walk);
  return all.sort((a, b) => b.length - a.length);
}

/** Pids in the test hosts' cgroups: container processes, whatever their namespaces. */
export function pidsInHostCgroups(): number[] {
  const pids = new Set<number>();
  for (const cg of findHostCgroups()) {
    try {
      for (const p of readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
    } catch {
      // Removed meanwhile.
    }
  }
  return [...pids];
}

export function isAlive(pid: number): boolean {
  try {
    // A zombie still has /proc/pid; it counts as gone.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Waits until none of `pids` is alive; returns those still alive after `timeoutMs`. */
export async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() > end) return alive;
    await sleep(100);
  }
}

/** SIGKILLs `pids` and waits for them; throws naming any that survive. */
export async function killAll(pids: number[]): Promise<void> {
  for (const p of pids) signal(p, 'SIGKILL');
  const alive = await waitGone(pids, 10_000);
  if (alive.length) throw new Error(`processes ${alive.join(', ')} survived SIGKILL for 10 s`);
}

/** Removes the test hosts' cgroups (they must be empty); throws naming any that stay. */
export async function removeHostCgroups(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    for (const cg of findHostCgroups()) {
      try {
        rmdirSync(cg);
      } catch {
        // Busy for a moment after its last process exits; retried below.
      }
    }
    const left = findHostCgroups();
    if (left.length === 0) return;
    if (attempt >= 50) throw new Error(`cannot remove cgroups ${left.join(', ')}`);
    await sleep(100);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}
