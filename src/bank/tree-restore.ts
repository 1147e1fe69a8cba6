/**
 * Writes a checkpoint's tree back (restoreTree): into an existing empty directory, in walk order —
 * directories made first, file data by extents through a small chunk cache (one chunk serves many
 * small files; the next chunks are fetched ahead), hard links after their first path, symlinks,
 * fifos and devices (mknod); each entry's owner, mode and mtime; then every xattr in one setfattr;
 * then the directories' owner, mode and mtime, deepest first (writing into a directory moves its mtime).
 * A manifest is trusted only after its AEAD check, but no entry is ever written outside `into`.
 */
import { chmodSync, closeSync, ftruncateSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors';
import { ProcessRunner, type Runner } from '../exec/runner';
import { silentLogger, type Logger } from '../log';
import { turns } from './event-loop-turns';
import { applyXattrs } from './xattrs';
import type { ChunkStore, ProgressSink, TreeEntry } from './types';

/**
 * Chunks kept after use (a chunk often holds many small files), distinct chunks fetched ahead of the
 * file being started (opening runs on the seal threads meanwhile), and files written at once (a file
 * waits for its chunks while others are written).
 */
const CACHE_CHUNKS = 12;
const HELD_MAX = 32;
const FETCH_AHEAD = 8;
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

/**
 * Chunks by id, each kept from its fetch until its last extent is written (files are written
 * several at once, so "the last few used" would drop chunks a slower file still needs). Fetching
 * ahead stops while CACHE_CHUNKS are held; a chunk held far too long (its data repeats much later
 * in the tree) is dropped past HELD_MAX and fetched again when needed.
 */
class ChunkCache {
  private readonly held = new Map<string, Promise<Buffer>>();
  constructor(private readonly chunks: ChunkStore, private readonly uses: Map<string, number>) {}

  /** Fetches `id` ahead of use unless enough are held; false when it did not (try again later). */
  prefetch(id: string): boolean {
    if (this.held.has(id) || !this.uses.has(id)) return true;
    if (this.held.size >= CACHE_CHUNKS) return false;
    this.fetch(id);
    return true;
  }

  get(id: string): Promise<Buffer> {
    return this.held.get(id) ?? this.fetch(id);
  }

  /** One extent of `id` was written. */
  done(id: string): void {
    const left = (this.uses.get(id) ?? 1) - 1;
    if (left > 0) this.uses.set(id, left);
    else {
      // Its last extent is written: no file reads it again, so its memory goes back to the store.
      const p = this.held.get(id);
      this.uses.delete(id);
      this.held.delete(id);
      p?.then((b) => this.chunks.release(b), () => undefined);
    }
  }

  private fetch(id: string): Promise<Buffer> {
    const p = this.chunks.get(id);
    p.catch(() => undefined); // a prefetch nobody awaits must not be an unhandled rejection
    this.held.set(id, p);
    while (this.held.size > HELD_MAX) this.held.delete(this.held.keys().next().value as string);
    return p;
  }
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

  // The chunks in the order files are written (a chunk once per run of extents in it), for fetching
  // ahead, and where each file's data starts in that order.
  const dataOf = (e: TreeEntry): TreeEntry => (e.type === 'hardlink' ? (byPath.get(e.target ?? '') ?? e) : e);
  const order: string[] = [];
  const startOf = new Map<string, number>();
  const uses = new Map<string, number>();
  {
    const written = new Set<string>();
    for (const e of selected) {
      const d = dataOf(e);
      // A hard link whose first path was selected too is a link, not data (its first path came before it).
      if (d.type !== 'file' || written.has(d.path)) continue;
      written.add(d.path);
      startOf.set(d.path, order.length);
      for (const x of d.extents ?? []) {
        if (order.at(-1) !== x.id) order.push(x.id);
        uses.set(x.id, (uses.get(x.id) ?? 0) + 1);
      }
    }
  }
  const cache = new ChunkCache(o.chunks, uses);
  let fetched = 0;
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

  // A file's creation, writes and metadata are synchronous calls: a few each per file, and a trip
  // through libuv's thread pool per call cost more than the calls. The event loop runs every 16 files.
  const turn = turns(16);
  const writeFileData = async (e: TreeEntry, to: string): Promise<void> => {
    // Each chunk is asked for once, in order, FETCH_AHEAD ahead of the one a file is about to use.
    let idx = (startOf.get(e.path) ?? 0) - 1;
    let prev: string | undefined;
    await turn();
    const fd = openSync(to, 'wx', 0o600);
    try {
      for (const x of e.extents ?? []) {
        if (x.id !== prev) idx++;
        prev = x.id;
        for (const ahead = Math.min(order.length, idx + 1 + FETCH_AHEAD); fetched < ahead && cache.prefetch(order[fetched]); ) fetched++;
        const chunk = await cache.get(x.id);
        if (x.offset + x.length > chunk.length) {
          throw new FerryError('BANK_CORRUPT', `chunk ${x.id} holds ${chunk.length} bytes, but ${e.path} needs bytes ${x.offset}..${x.offset + x.length} of it; run ferry bank check`);
        }
        for (let off = 0; off < x.length; ) off += writeSync(fd, chunk, x.offset + off, x.length - off, x.at + off);
        cache.done(x.id);
      }
      // Holes between and after the extents stay holes.
      ftruncateSync(fd, e.size ?? 0);
    } finally {
      closeSync(fd);
    }
    doneBytes += e.size ?? 0;
    files++;
    report(false);
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
  /** Makes a file (its data), fifo or device at `to` with its owner, mode and mtime. */
  const makeNode = async (e: TreeEntry, to: string): Promise<string> => {
    if (e.type === 'file') await writeFileData(e, to);
    else if (e.type === 'fifo') await runner.run(['mknod', to, 'p']);
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
  await applyXattrs(runner, xattrItems);
  // Walk order is depth-first pre-order: reversed, every directory comes after all it holds.
  for (const d of madeDirs.reverse()) setMeta(d, abs(d.path));
  report(true);
  log.info({ into, path: only, files, bytes: doneBytes }, 'tree restored');
  return { files, bytes: doneBytes };
}
