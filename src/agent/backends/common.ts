import { mkdir, statfs } from 'node:fs/promises';
import { constants } from 'node:os';
import { FerryError, isFerryError } from '../../errors';
import { CommandFailedError, type Runner } from '../../exec/runner';
import { isMountPoint, readMountTable } from '../mount-table';
import type { PoolCapacity } from './backend';
import { removeQuietly, tempPath } from './files';

/** Below this much free space a pool takes no new dataset: metadata needs room too. */
export const MIN_FREE_BYTES = 16 * 1024 * 1024;

// umount exit code 32 is "mount failure", which util-linux also uses for "target busy".
const UMOUNT_FAILURE = 32;

/** Size and free space of the filesystem holding `path`, in bytes. */
export async function filesystemCapacity(path: string): Promise<PoolCapacity> {
  const st = await statfs(path);
  return { totalBytes: st.blocks * st.bsize, freeBytes: st.bavail * st.bsize };
}

/** How ensurePoolHasRoom may look closer at a pool that looks full. */
export interface RoomCheck {
  /** With a runner, a pool that statfs calls full is asked for MIN_FREE_BYTES for real (fallocate) before it is refused. */
  runner?: Runner;
  /** Free space of the pool (default: statfs); tests give figures. */
  measure?: (path: string) => Promise<PoolCapacity>;
}

/**
 * Throws POOL_FULL when the pool at `path` has less than MIN_FREE_BYTES free. statfs figures can lag
 * a delete: XFS (Linux 6.0 and later) frees an unlinked file's blocks in background inode
 * inactivation, and its statfs only nudges that work, never waits for it. So a pool that looks full
 * is, given a runner, asked for the room for real: the allocator waits for pending frees before it
 * answers ENOSPC. Only that answer refuses the Create.
 */
export async function ensurePoolHasRoom(kind: string, path: string, check: RoomCheck = {}): Promise<void> {
  const cap = await (check.measure ?? filesystemCapacity)(path);
  if (cap.freeBytes >= MIN_FREE_BYTES) return;
  if (!check.runner) throw poolFull(kind, path, cap.freeBytes);
  const probe = tempPath(path, 'room', 'probe');
  try {
    await check.runner.run(fallocateArgv(probe, MIN_FREE_BYTES));
  } catch (err) {
    // ENOSPC is the answer; any other failure (a filesystem without fallocate) leaves statfs's word standing.
    throw poolFull(kind, path, cap.freeBytes, err);
  } finally {
    await removeQuietly(probe);
  }
}

/** fallocate(1): reserves `bytes` of real blocks for a new file `path` (no writes; ENOSPC when they are not there). */
export function fallocateArgv(path: string, bytes: number): string[] {
  return ['fallocate', '--length', String(bytes), path];
}

export function poolFull(kind: string, path: string, freeBytes?: number, cause?: unknown): FerryError {
  const free = freeBytes === undefined ? '' : ` (${Math.floor(freeBytes / 1024 / 1024)} MiB free)`;
  return new FerryError('POOL_FULL', `the ${kind} pool at ${path} is full${free}: remove volumes or snapshots, or grow the pool`, {
    cause,
  });
}

/** True when a failure was the filesystem running out of space. */
export function isNoSpace(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  // Node 20 reports EDQUOT (a btrfs quota group) as errno -122 with code UNKNOWN.
  if (e?.code === 'ENOSPC' || e?.errno === -constants.errno.EDQUOT) return true;
  return err instanceof CommandFailedError && /no space left|ENOSPC|disk quota/i.test(err.stderrTail);
}

/** A no-space failure as POOL_FULL naming the pool at `path` and its free space; other errors as they are. */
export async function asPoolFull(kind: string, path: string, err: unknown): Promise<unknown> {
  if (isFerryError(err, 'POOL_FULL') || !isNoSpace(err)) return err;
  const free = await filesystemCapacity(path).then((c) => c.freeBytes, () => undefined);
  return poolFull(kind, path, free, err);
}

/** Bind-mounts `source` at `target` (read-only when asked). Idempotent when `target` is a mount. */
export async function bindMount(runner: Runner, source: string, target: string, readOnly = false): Promise<void> {
  await mkdir(target, { recursive: true });
  if (isMountPoint(target)) return;
  await runner.run(['mount', '--bind', source, target]);
  if (!readOnly) return;
  // A read-only bind needs a second step; if it fails, a writable replica must not stay mounted.
  try {
    await runner.run(['mount', '-o', 'remount,bind,ro', target]);
  } catch (err) {
    await runner.run(['umount', target]).catch(() => undefined);
    throw err;
  }
}

/** Mounts a filesystem image through a loop device (util-linux picks one and frees it at unmount). */
export async function loopMount(runner: Runner, image: string, target: string, fsType: string, readOnly = false): Promise<void> {
  await mkdir(target, { recursive: true });
  if (isMountPoint(target)) return;
  await runner.run(['mount', '-t', fsType, '-o', readOnly ? 'loop,ro' : 'loop', image, target]);
}

/** Unmounts `target`; not mounted is fine; busy becomes VOLUME_BUSY. */
export async function unmountPath(runner: Runner, target: string): Promise<void> {
  if (!isMountPoint(target, readMountTable())) return;
  try {
    await runner.run(['umount', target]);
  } catch (err) {
    if (err instanceof CommandFailedError && err.exitCode === UMOUNT_FAILURE && /busy/i.test(err.stderrTail)) {
      throw new FerryError('VOLUME_BUSY', `${target} is busy: a process still uses it; stop it and try again`, { cause: err });
    }
    throw err;
  }
}

/** Throws VOLUME_BUSY when anything is mounted from the dataset whose data lives at `dataPath`. */
export function ensureNotMounted(name: string, mountedAt: string | undefined): void {
  if (mountedAt) {
    throw new FerryError('VOLUME_BUSY', `dataset ${name} is mounted at ${mountedAt}: unmount it first`);
  }
}
