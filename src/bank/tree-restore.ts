/**
 * Writes a checkpoint's tree back (restoreTree): into an existing empty directory. First the tree in
 * walk order — directories, files made empty at their size, hard links after their first path,
 * symlinks, fifos and devices (mknod). Then the files' data chunk by chunk in the order the bank
 * reads them best (pack by pack, as restic restores): each chunk fetched once and written into every
 * extent that holds it, whatever file it belongs to. Then each file's owner, mode and mtime; every
 * xattr in one setfattr; the directories' owner, mode and mtime, deepest first (writing into a
 * directory moves its mtime).
 * A manifest is trusted only after its AEAD check, but no entry is ever written outside `into`.
 */
import { chmodSync, closeSync, ftruncateSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors';
import { ProcessRunner, type Runner } from '../exec/runner';
import { silentLogger, type Logger } from '../log';
import { turns } from './event-loop-turns';
import { mapLimit } from './map-limit';
import { applyXattrs } from './xattrs';
import type { ChunkStore, ProgressSink, TreeEntry } from './types';

/**
 * Chunks asked for at once (their opening runs on the seal threads while others are written), and
 * fifos and devices made at once (mknod runs as a process).
 */
const CHUNKS_AT_ONCE = 4;
const FILES_AT_ONCE = 8;
const PROGRESS_EVERY_MS = 200;
/** A fresh ext4/xfs volume's root may hold this and still count as empty. */
const FRESH_FS_DIR = 'lost+found';

export interface RestoreTreeOptions {
  chunks: ChunkStore;
  /** Only this file or subtree ('/'-separated, relative to the volume root), under `into` at the same path, its parents made. */
  path?: string;
  progress?: ProgressSink;
  /** Runs setfattr and mknod (default: a ProcessRunner on `log`). */
  runner?: Runner;
  log?: Logger;
}

/**
 * The segments of a tree path, or an error when it could leave the directory it is restored into:
 * absolute, empty, '.' or '..' segments, NUL. '' is the root itself (no segments).
 */
export function treePathSegments(path: string): string[] | Error {
  if (path === '') return [];
  if (path.includes('\0')) return new Error('it holds a NUL byte');
  if (path.startsWith('/')) return new Error('it is absolute');
  const segs = path.split('/');
  for (const s of segs) {
    if (s === '' || s === '.' || s === '..') return new Error(`it has a '${s}' segment`);
  }
  return segs;
}

/** The parent path of a tree path ('' for a top-level entry). */
function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/**
 * Seconds for lutimes from a nanosecond string. Node's utimes takes a double and libuv keeps only
 * whole microseconds (it truncates), so the time restored is the original cut to the microsecond:
 * aiming at the middle of that microsecond keeps the double's rounding error (about 0.24 µs
 * today) from landing in the microsecond before.
 */
export function nsToSeconds(ns: string): number {
  const n = BigInt(ns);
  let sec = n / 1_000_000_000n;
  let frac = n % 1_000_000_000n;
  if (frac < 0n) {
    sec -= 1n;
    frac += 1_000_000_000n;
  }
  const micros = frac / 1000n;
  return Number(sec) + (Number(micros) * 1000 + 500) / 1e9;
}

/** Linux dev_t → [major, minor] (glibc's encoding). */
export function splitRdev(rdev: number): [number, number] {
  const d = BigInt(rdev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

/** Makes directory `at` (tree path `path`); a fresh filesystem's own lost+found is reused. */
function makeDir(at: string, path: string, mode?: number): void {
  try {
    mkdirSync(at, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || path !== FRESH_FS_DIR) throw err;
  }
}

/** Refuses a target that is missing, not a directory, or not empty (a fresh filesystem's lost+found aside). */
async function checkTarget(into: string): Promise<void> {
  let names: string[];
  try {
    if (!(await lstat(into)).isDirectory()) throw new FerryError('INVALID_OPTION', `cannot restore into ${into}: it is not a directory; give an empty directory`);
    names = await readdir(into);
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError('INVALID_OPTION', `cannot restore into ${into}: ${(err as Error).message}; give an existing empty directory`, { cause: err });
  }
  const others = names.filter((n) => n !== FRESH_FS_DIR);
  if (others.length > 0) {
    const shown = others.slice(0, 3).join(', ') + (others.length > 3 ? `, … (${others.length} in all)` : '');
    throw new FerryError('INVALID_OPTION', `cannot restore into ${into}: it is not empty (it holds ${shown}); restore into an empty directory or a new volume`);
  }
}

/** Writes `entries` (a checkpoint's tree, walk order) under `into`: all of it, or the file or subtree `o.path`. */
export async function restoreTree(entries: TreeEntry[], into: string, o: RestoreTreeOptions): Promise<{ files: number; bytes: number }> {
  const log = o.log ?? silentLogger();
  const runner = o.runner ?? new ProcessRunner(log);

  for (const e of entries) {
    const bad = treePathSegments(e.path);
    if (bad instanceof Error) throw new FerryError('BANK_CORRUPT', `checkpoint entry ${JSON.stringify(e.path)} was refused: ${bad.message}, so it could be written outside ${into}; nothing was restored`);
  }
  let only: string | undefined;
  if (o.path !== undefined) {
    only = o.path.replace(/^\/+|\/+$/g, '');
    const bad = treePathSegments(only);
    if (bad instanceof Error) throw new FerryError('INVALID_OPTION', `--path ${JSON.stringify(o.path)} was refused: ${bad.message}; give a path inside the volume, like data/file.txt`);
    if (only === '') only = undefined;
  }
  const selected = only === undefined ? entries : entries.filter((e) => e.path === only || e.path.startsWith(`${only}/`));
  if (selected.length === 0) throw new FerryError('INVALID_OPTION', `the checkpoint has no path ${only}; list its paths or give another --path`);
  await checkTarget(into);

  const byPath = new Map(entries.map((e) => [e.path, e]));
  const abs = (path: string): string => (path === '' ? into : join(into, path));
  // Directories this restore made (or the target itself): the only places an entry may be written.
  const dirs = new Set<string>();
  if (only === undefined) dirs.add('');
  else {
    // The parents of the selected path, made plainly (their metadata is not part of what was asked).
    const segs = only.split('/');
    dirs.add('');
    for (let i = 1; i < segs.length; i++) {
      const p = segs.slice(0, i).join('/');
      makeDir(abs(p), p);
      dirs.add(p);
    }
  }

  const totalBytes = selected.reduce((n, e) => n + (e.type === 'file' ? (e.size ?? 0) : 0), 0);
  let doneBytes = 0;
  let files = 0;
  let lastReport = 0;
  const report = (force: boolean): void => {
    if (!o.progress) return;
    const now = Date.now();
    if (!force && now - lastReport < PROGRESS_EVERY_MS) return;
    lastReport = now;
    o.progress({ phase: 'restore', doneBytes, totalBytes, files });
  };
  report(true);

  /** A file made empty (its size, holes throughout) whose extents are still to be written. */
  interface Pending {
    e: TreeEntry;
    to: string;
    left: number;
  }
  /** Where each chunk's bytes go: every extent of every file made that holds some of it. */
  const uses = new Map<string, Array<{ file: Pending; at: number; offset: number; length: number }>>();
  // Progress counts each extent as it is written, and a file's holes once it is whole.
  const fileDone = (f: Pending): void => {
    doneBytes += (f.e.size ?? 0) - (f.e.extents ?? []).reduce((n, x) => n + x.length, 0);
    files++;
    report(false);
  };
  // A file's creation and metadata are synchronous calls: a few each per file, and a trip through
  // libuv's thread pool per call cost more than the calls. The event loop runs every 16 files.
  const turn = turns(16);
  /** Makes file `e` at `to`, empty at its size (holes stay holes); its data comes in pack order (writeData). */
  const makeFile = async (e: TreeEntry, to: string): Promise<void> => {
    // The file is cut to its size before its data is written: an extent past it would grow it.
    for (const x of e.extents ?? []) {
      if (x.at + x.length > (e.size ?? 0)) {
        throw new FerryError('BANK_CORRUPT', `checkpoint entry ${JSON.stringify(e.path)} has data at bytes ${x.at}..${x.at + x.length}, past its size ${e.size ?? 0}; the manifest is not one ferry wrote. Run ferry bank check`);
      }
    }
    await turn();
    const fd = openSync(to, 'wx', 0o600);
    try {
      ftruncateSync(fd, e.size ?? 0);
    } finally {
      closeSync(fd);
    }
    const f: Pending = { e, to, left: e.extents?.length ?? 0 };
    for (const x of e.extents ?? []) {
      const list = uses.get(x.id);
      if (list) list.push({ file: f, at: x.at, offset: x.offset, length: x.length });
      else uses.set(x.id, [{ file: f, at: x.at, offset: x.offset, length: x.length }]);
    }
    if (f.left === 0) fileDone(f);
  };
  /**
   * Writes chunk `id`'s bytes into every extent that holds some of it, each file opened once: the
   * uses are listed file by file (makeFile adds a file's extents together).
   */
  const writeChunk = (id: string, chunk: Buffer): void => {
    let fd: number | undefined;
    let open: Pending | undefined;
    try {
      for (const u of uses.get(id) ?? []) {
        if (u.offset + u.length > chunk.length) {
          throw new FerryError('BANK_CORRUPT', `chunk ${id} holds ${chunk.length} bytes, but ${u.file.e.path} needs bytes ${u.offset}..${u.offset + u.length} of it; run ferry bank check`);
        }
        if (fd === undefined || open !== u.file) {
          if (fd !== undefined) closeSync(fd);
          fd = undefined;
          fd = openSync(u.file.to, 'r+');
          open = u.file;
        }
        for (let off = 0; off < u.length; ) off += writeSync(fd, chunk, u.offset + off, u.length - off, u.at + off);
        doneBytes += u.length;
        if (--u.file.left === 0) fileDone(u.file);
        else report(false);
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    uses.delete(id);
  };
  /**
   * The data of every file made, chunk by chunk in the order the store reads them at the least cost
   * (a bank's: pack by pack), CHUNKS_AT_ONCE asked for at once: each chunk is fetched once, however
   * many files and extents hold it, and none waits in memory for a file to come along. The first
   * failure stops it (mapLimit: the chunks in flight settle and are let go first).
   */
  const writeData = async (): Promise<void> => {
    const ids = [...uses.keys()];
    const order = o.chunks.readOrder ? await o.chunks.readOrder(ids) : ids;
    await mapLimit(order, CHUNKS_AT_ONCE, async (id) => {
      const chunk = await o.chunks.get(id);
      try {
        writeChunk(id, chunk);
      } finally {
        o.chunks.release(chunk);
      }
    });
    // Every chunk a file needs was written (a store's readOrder that left one out would leave holes).
    if (uses.size > 0) throw new FerryError('INTERNAL', `the restore wrote no data for chunk ${uses.keys().next().value as string}: the chunk store's read order left it out`);
  };
  const setMeta = (e: TreeEntry, at: string): void => {
    lchownSync(at, e.uid, e.gid);
    // After chown, which clears setuid/setgid.
    if (e.type !== 'symlink') chmodSync(at, e.mode);
    const t = nsToSeconds(e.mtimeNs);
    lutimesSync(at, t, t);
  };

  // Tree path of an inode's first name (file, fifo, device) → where it is being made, for the hard links that follow.
  const madeNodes = new Map<string, Promise<string>>();
  /** Files made, for their owner, mode and mtime once their data is written. */
  const madeFiles: Array<{ e: TreeEntry; to: string }> = [];
  /** Makes a file (empty: data comes later), fifo or device at `to`; a fifo's or device's owner, mode and mtime. */
  const makeNode = async (e: TreeEntry, to: string): Promise<string> => {
    if (e.type === 'file') {
      await makeFile(e, to);
      madeFiles.push({ e, to });
      return to;
    }
    if (e.type === 'fifo') await runner.run(['mknod', to, 'p']);
    else {
      const [major, minor] = splitRdev(e.rdev ?? 0);
      await runner.run(['mknod', to, e.type === 'chardev' ? 'c' : 'b', String(major), String(minor)]);
    }
    setMeta(e, to);
    return to;
  };
  // Nodes are made FILES_AT_ONCE at a time; the first failure stops the walk and is thrown once the rest settle.
  const running = new Set<Promise<unknown>>();
  let failed: { err: unknown } | undefined;
  const startNode = async (e: TreeEntry, to: string): Promise<void> => {
    while (running.size >= FILES_AT_ONCE) await Promise.race(running);
    if (failed) throw failed.err;
    const made = makeNode(e, to);
    madeNodes.set(e.path, made);
    const tracked = made.then(
      () => undefined,
      (err: unknown) => {
        failed ??= { err };
      },
    );
    running.add(tracked);
    void tracked.then(() => running.delete(tracked));
  };
  const settle = async (): Promise<void> => {
    while (running.size > 0) await Promise.race(running);
    if (failed) throw failed.err;
  };
  const xattrItems: Array<{ abs: string; xattrs: Record<string, string> }> = [];
  const madeDirs: TreeEntry[] = [];
  try {
  for (const e of selected) {
    const to = abs(e.path);
    if (e.path !== '' && !dirs.has(parentOf(e.path))) {
      throw new FerryError('BANK_CORRUPT', `checkpoint entry ${JSON.stringify(e.path)} comes before a directory holding it; the manifest is not a tree ferry wrote. Run ferry bank check`);
    }
    switch (e.type) {
      case 'dir':
        if (e.path !== '' && !(e.path === only && dirs.has(e.path))) {
          makeDir(to, e.path, 0o700);
        }
        dirs.add(e.path);
        madeDirs.push(e);
        break;
      case 'file':
      case 'fifo':
      case 'chardev':
      case 'blockdev':
        await startNode(e, to);
        break;
      case 'hardlink': {
        const first = byPath.get(e.target ?? '');
        if (!first || !['file', 'fifo', 'chardev', 'blockdev'].includes(first.type)) {
          throw new FerryError('BANK_CORRUPT', `checkpoint entry ${JSON.stringify(e.path)} links to ${JSON.stringify(e.target)}, which is not a file, fifo or device of the checkpoint; run ferry bank check`);
        }
        const made = madeNodes.get(first.path);
        if (made) {
          linkSync(await made, to);
          break;
        }
        // Its first name is outside what --path selected: this one is made as the inode.
        await startNode(first, to);
        if (first.xattrs) xattrItems.push({ abs: to, xattrs: first.xattrs });
        continue;
      }
      case 'symlink':
        symlinkSync(e.target ?? '', to);
        setMeta(e, to);
        break;
    }
    if (e.xattrs && e.type !== 'hardlink') xattrItems.push({ abs: to, xattrs: e.xattrs });
  }
  } catch (err) {
    // Nothing keeps writing after restoreTree has thrown.
    await settle().catch(() => undefined);
    throw err;
  }
  await settle();
  await writeData();
  for (const f of madeFiles) {
    await turn();
    setMeta(f.e, f.to);
  }
  await applyXattrs(runner, xattrItems);
  // Walk order is depth-first pre-order: reversed, every directory comes after all it holds.
  for (const d of madeDirs.reverse()) setMeta(d, abs(d.path));
  report(true);
  log.info({ into, path: only, files, bytes: doneBytes }, 'tree restored');
  return { files, bytes: doneBytes };
}
