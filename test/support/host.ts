import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Prefix of every temp dir tests make, so that a killed run's leftovers can be found. */
export const TEST_PREFIX = '/tmp/ferry-test-';

/** Fails (never skips) when the tests cannot run here, saying what is missing. */
export function requireRootAndTools(...tools: string[]): void {
  if (process.getuid && process.getuid() !== 0) throw new Error('these tests need root: run them as root (sudo npm test)');
  for (const t of tools) {
    const r = spawnSync('sh', ['-c', `command -v ${t}`]);
    if (r.status !== 0) throw new Error(`these tests need ${t}: install it (scripts/install-deps.sh does)`);
  }
}

/** A temp dir named after this process, so that cleanup can tell a live run's dirs from a dead one's. */
export function makeTempDir(tag: string): string {
  return mkdtempSync(`${TEST_PREFIX}${ownerStamp()}-${tag}-`);
}

/** When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), or undefined if it is gone. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: field 3 is [0].
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Names a process so that a later reader can tell it from another that got the same PID after
 * it ended: "PID.START". A killed run's dirs outlive it, and PIDs are reused (a fresh machine
 * counts from 1 again), so a bare PID could make a dead run's leftovers look alive.
 */
export function ownerStamp(pid: number = process.pid): string {
  return `${pid}.${processStart(pid) ?? 0}`;
}

/** True while the process named by an ownerStamp (or a bare PID, from older runs) still runs. */
export function ownerAlive(stamp: string): boolean {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(stamp.trim());
  if (!m) return false;
  const pid = Number(m[1]);
  if (!pid || !processAlive(pid)) return false;
  return m[2] === undefined || processStart(pid) === m[2];
}

/** True when the stamp names this process. */
export function ownStamp(stamp: string): boolean {
  return stamp.trim() === ownerStamp() || stamp.trim() === String(process.pid);
}

/** True while process `pid` exists (EPERM means it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function mountPointsUnder(dir: string): string[] {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const points = lines
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(dir + '/'));
  // Deepest first, so nested mounts go before their parents.
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Destroys the ZFS pools whose files are under `dir` (an agent's own pool, made at its first zfs
 * Create): a pool outlives its file's directory in the zfs daemon otherwise. Nothing without zfs.
 */
function destroyZfsPoolsUnder(dir: string): void {
  if (!existsSync('/dev/zfs') && !existsSync('/var/run/zfs/zfs_socket')) return;
  const status = spawnSync('zpool', ['status'], { encoding: 'utf8', timeout: 20_000 });
  if (status.status !== 0) return;
  let pool = '';
  for (const line of status.stdout.split('\n')) {
    const named = /^\s*pool: (\S+)/.exec(line);
    if (named) pool = named[1];
    const file = /^\s+(\/\S+)\s+[A-Z]+\b/.exec(line)?.[1];
    if (pool && file && (file === dir || file.startsWith(`${dir}/`))) {
      spawnSync('zpool', ['destroy', '-f', pool], { timeout: 60_000 });
      pool = '';
    }
  }
}

/** Unmounts everything under `dir` (destroying ZFS pools on files there first), detaches loop devices backed by files under it, removes it. */
export function cleanupDir(dir: string): void {
  destroyZfsPoolsUnder(dir);
  for (const p of mountPointsUnder(dir)) spawnSync('umount', ['-l', p]);
  const loops = spawnSync('losetup', ['-l', '-n', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of loops.split('\n')) {
    const [dev, file] = line.trim().split(/\s+/, 2);
    if (dev && file && file.startsWith(dir)) spawnSync('losetup', ['-d', dev]);
  }
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

/**
 * Removes what a killed earlier run left: temp dirs with their mounts and loop devices. Dirs of a
 * run that is still alive (another test process) are left alone.
 */
export function cleanupLeftovers(): void {
  for (const name of readdirSync('/tmp')) {
    const full = join('/tmp', name);
    if (!full.startsWith(TEST_PREFIX)) continue;
    // The owner is named in the dir (makeTempDir) or in an owner.pid file (the cluster harness).
    const ownerFile = join(full, 'owner.pid');
    const stamp = /^(\d+(?:\.\d+)?)-/.exec(full.slice(TEST_PREFIX.length))?.[1] ?? (existsSync(ownerFile) ? readFileSync(ownerFile, 'utf8') : '');
    if (stamp && !ownStamp(stamp) && ownerAlive(stamp)) continue;
    // A cluster dir holds namespaces and daemons too: the harness's own cleanup removes it.
    if (full.startsWith(`${TEST_PREFIX}cluster-`)) continue;
    cleanupDir(full);
  }
}

/** Runs a command synchronously and returns stdout; throws with stderr on failure. */
export function sh(argv: string[], input?: string): string {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Makes a small filesystem of `fsType` in a sparse image and loop-mounts it at `mountPoint`. */
export function makeLoopFs(image: string, mountPoint: string, sizeBytes: number, fsType: 'ext4' | 'xfs'): void {
  sh(['truncate', '-s', String(sizeBytes), image]);
  sh(fsType === 'xfs' ? ['mkfs.xfs', '-q', '-f', image] : ['mkfs.ext4', '-q', '-F', image]);
  sh(['mkdir', '-p', mountPoint]);
  // mount -o loop picks a free loop device, which a loop device the test before was still releasing
  // (autoclear after its unmount) can make fail once: try again a few times before giving up.
  for (let attempt = 1; ; attempt++) {
    try {
      sh(['mount', '-o', 'loop', image, mountPoint]);
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300 * attempt);
    }
  }
}

/** Writes zeros to `path` until its filesystem is full (ENOSPC is the expected end). */
export function fillFilesystem(path: string): void {
  spawnSync('dd', ['if=/dev/zero', `of=${path}`, 'bs=1M', 'status=none']);
  spawnSync('sync');
}
