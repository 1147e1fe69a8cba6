/**
 * File helpers of the file-based backends (loop, directory): temp names that never look like a
 * dataset or snapshot, crash-safe publishing (sync, then link or rename, then sync the directory),
 * and snapshot ordering that does not depend on names or on the clock never stepping back.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError } from '../../errors';

/**
 * Prefix of everything in progress (temp images, temp trees, trees being deleted). Dataset and
 * snapshot names start with a letter or digit, so nothing with this prefix is ever listed.
 */
export const TEMP_PREFIX = '.ferry-tmp-';

/** A fresh temp path inside `dir`, named after what it is for (for people reading the directory). */
export function tempPath(dir: string, purpose: string, name: string, suffix = ''): string {
  return join(dir, `${TEMP_PREFIX}${purpose}-${name}-${randomBytes(4).toString('hex')}${suffix}`);
}

/** True for a directory entry that is a dataset or snapshot name (not a temp or hidden entry). */
export function isPublicEntry(entry: string): boolean {
  return !entry.startsWith('.');
}

/** Throws INVALID_NAME for a name that could leave its directory; names are validated above, this is a guard. */
export function assertPlainName(what: string, name: string): void {
  if (!name || name.includes('/') || name.startsWith('.') || name.includes('\0')) {
    throw new FerryError('INVALID_NAME', `invalid ${what} name ${JSON.stringify(name)}: use letters, digits, "_", "." or "-"`);
  }
}

/** fsync(2) of `path`: a file's data, or a directory's entries. */
async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Flushes a file's data to disk (an image written by a tool that may not have). */
export const syncFile: (file: string) => Promise<void> = fsyncPath;

/** Flushes a directory's entries, so that a rename or link in it survives a crash. */
export const syncDir: (dir: string) => Promise<void> = fsyncPath;

/**
 * Publishes the file `tmp` as `final` only when `final` does not exist (link fails with EEXIST,
 * rename would replace). Returns false when `final` already existed; `tmp` is removed either way.
 */
export async function publishFileNoReplace(tmp: string, final: string): Promise<boolean> {
  try {
    await link(tmp, final);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Publishes the directory `tmp` as `final` when `final` does not exist. Returns false when it did
 * (rename of a directory onto a non-empty one fails; onto an empty one it would replace, so check first).
 */
export async function publishDirNoReplace(tmp: string, final: string): Promise<boolean> {
  if (await pathExists(final)) return false;
  try {
    await rename(tmp, final);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw err;
  }
}

/** True when something (anything) is at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Removes the tree at `path` so that it disappears at once: renamed to a temp name first, then
 * deleted. A crash half-way leaves a temp entry (cleaned at init), never a half tree under the real
 * name (a half snapshot must never be used as an incremental base). Idempotent.
 */
export async function removeTree(path: string, parent: string, name: string): Promise<void> {
  const doomed = tempPath(parent, 'delete', name);
  try {
    await rename(path, doomed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await syncDir(parent);
  await rm(doomed, { recursive: true, force: true });
}

/** Removes temp entries left by a crash in `dir` (not recursive). Returns how many went. */
export async function removeStaleTemps(dir: string): Promise<number> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const stale = entries.filter((e) => e.startsWith(TEMP_PREFIX));
  for (const e of stale) await rm(join(dir, e), { recursive: true, force: true });
  return stale.length;
}

/** A snapshot and its ordering stamp (the mtime ferry set when it was published), in nanoseconds. */
export interface StampedEntry {
  name: string;
  stampNs: bigint;
}

/** Names oldest first: by stamp, then by name for equal stamps (which ferry never makes). Pure. */
export function oldestFirst(entries: readonly StampedEntry[]): string[] {
  return [...entries]
    .sort((a, b) => (a.stampNs < b.stampNs ? -1 : a.stampNs > b.stampNs ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => e.name);
}

/**
 * The stamp for a new snapshot, in whole milliseconds: now, but always at least 1 ms after every
 * existing stamp, so the order holds even when the clock steps back. Pure.
 */
export function nextStampMs(nowMs: number, existingNs: readonly bigint[]): number {
  let latest = -Infinity;
  // Round, not floor: a stamp written as a double may read back a few hundred ns low.
  for (const ns of existingNs) latest = Math.max(latest, Math.round(Number(ns) / 1e6));
  return Math.max(Math.floor(nowMs), latest + 1);
}

/**
 * Reads the snapshots in `dir`: each entry that `toName` maps to a name, with its stamp.
 * A missing `dir` means no snapshots.
 */
export async function readStamped(dir: string, toName: (entry: string) => string | undefined): Promise<StampedEntry[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: StampedEntry[] = [];
  await Promise.all(
    entries.map(async (entry) => {
      const name = isPublicEntry(entry) ? toName(entry) : undefined;
      if (name === undefined) return;
      try {
        const st = await stat(join(dir, entry), { bigint: true });
        out.push({ name, stampNs: st.mtimeNs });
      } catch (err) {
        // Deleted between readdir and stat: it is simply gone.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }),
  );
  return out;
}

/**
 * Sets the ordering stamp (mtime) of `tmp`, about to be published in `dir`: `nowMs` (default: now),
 * moved after every existing stamp if needed.
 */
export async function stampNewest(tmp: string, dir: string, toName: (entry: string) => string | undefined, nowMs = Date.now()): Promise<void> {
  const existing = await readStamped(dir, toName);
  const ms = nextStampMs(nowMs, existing.map((e) => e.stampNs));
  await utimes(tmp, ms / 1000, ms / 1000);
}

/** Removes `path` if it exists; for cleanup paths that must not throw over the original error. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    /* best effort: init removes temp leftovers */
  }
}

/** Unlinks a file; a missing file is fine. */
export async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Returns `outer`, made to destroy `inner` when it closes: a consumer that drops a send stream
 * half-way must not leave its reader (open files, a tar process) waiting on a full pipe forever.
 * (wrapStream passes errors from inner to outer, not the other way.)
 */
export function closingInner(outer: Readable, inner: Readable): Readable {
  outer.once('close', () => inner.destroy());
  return outer;
}
