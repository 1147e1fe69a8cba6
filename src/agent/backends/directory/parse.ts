/** Pure readers for the directory backend: which mounts show a directory, du output. */
import { posix } from 'node:path';
import type { MountEntry } from '../../mount-table';

function isUnder(path: string, dir: string): boolean {
  return dir === '/' ? path.startsWith('/') : path === dir || path.startsWith(dir + '/');
}

/**
 * Mounts that show the directory at `realPath` (a path without symlinks) or something inside it:
 * bind mounts of it (their `root` is the directory's path inside its filesystem, and their source
 * and type are those of the filesystem holding it) and anything mounted on it or below it.
 * Candidates only: two filesystems can share a source name (tmpfs), so callers confirm by device.
 */
export function mountsShowing(table: readonly MountEntry[], realPath: string): MountEntry[] {
  // The filesystem holding the directory: the last (topmost) mount at the longest parent path.
  let host: MountEntry | undefined;
  for (const e of table) {
    if (e.mountPoint === realPath || !isUnder(realPath, e.mountPoint)) continue;
    if (!host || e.mountPoint.length >= host.mountPoint.length) host = e;
  }
  const out: MountEntry[] = [];
  const inFs = host ? posix.join(host.root, posix.relative(host.mountPoint, realPath)) : undefined;
  for (const e of table) {
    if (e === host) continue;
    const onIt = isUnder(e.mountPoint, realPath);
    const bindOfIt = host !== undefined && inFs !== undefined && e.source === host.source && e.fsType === host.fsType && isUnder(e.root, inFs);
    if (onIt || bindOfIt) out.push(e);
  }
  return out;
}

/** Parses `du --summarize --bytes --null` output into bytes by path. */
export function parseDiskUsage(stdout: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of stdout.split('\0')) {
    const tab = line.indexOf('\t');
    if (tab <= 0) continue;
    const bytes = Number(line.slice(0, tab));
    if (Number.isSafeInteger(bytes) && bytes >= 0) out.set(line.slice(tab + 1), bytes);
  }
  return out;
}
