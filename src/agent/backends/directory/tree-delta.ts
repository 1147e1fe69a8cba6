/**
 * The directory backend's stream format, a file-level delta between two snapshot trees:
 *
 *   u32 manifest length | manifest JSON | tar archive of the changed entries (absent when none)
 *
 * The manifest names the paths deleted since the base; the archive (GNU tar, pax format) holds
 * every entry that is new or whose metadata or content changed, directories as bare entries.
 * It travels inside the stream envelope, which checks the whole body.
 *
 * Change detection is rsync's quick check (type, mode, owner, size, mtime, link count, link target),
 * plus git's "racy" rule: a file whose base mtime is too close to when the base was copied could
 * have been rewritten in the same clock tick with the same size, so its content is compared.
 */
import { open, readdir, readlink } from 'node:fs/promises';
import { lstat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { FerryError } from '../../../errors';

/** The manifest format this code writes and reads. */
export const MANIFEST_FORMAT = 1;
/** A manifest above this is refused (it lists deleted paths; millions still fit). */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
/** Files modified this close before a base snapshot's copy began get their content compared. */
export const RACY_WINDOW_NS = 2_000_000_000n;

/** What an entry is; 'other' covers fifos and device nodes (tar carries them). */
export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

/** What the quick check compares, for one entry of a tree. */
export interface EntryMeta {
  type: EntryType;
  /** Permission bits and file type bits, as lstat gives them. */
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  nlink: number;
  /** Device number, for device nodes. */
  rdev: number;
  /** Symlink target. */
  target?: string;
}

/** Every entry of a tree by its relative path ("." is the root itself). */
export type Tree = Map<string, EntryMeta>;

/** What a delta says. Paths are relative, "/"-separated, sorted; "." is the root. */
export interface TreeDelta {
  /** New or changed entries, parents before children. */
  changed: string[];
  /** Entries to remove before the archive is applied; a removed directory's contents are not listed. */
  deleted: string[];
  /** Files that look unchanged but whose content must be compared (see RACY_WINDOW_NS). */
  suspects: string[];
}

/** The head of a delta body. */
export interface Manifest {
  format: number;
  snapshot: string;
  base?: string;
  deleted: string[];
  /** How many entries the archive holds; 0 means there is no archive. */
  entries: number;
}

function typeOf(mode: number): EntryType {
  const fmt = mode & 0o170000;
  if (fmt === 0o100000) return 'file';
  if (fmt === 0o040000) return 'dir';
  if (fmt === 0o120000) return 'symlink';
  return 'other';
}

/** Walks the tree at `root` with lstat (never following symlinks). Throws on read errors. */
export async function walkTree(root: string): Promise<Tree> {
  const tree: Tree = new Map();
  const statOne = async (rel: string): Promise<EntryMeta> => {
    const full = rel === '.' ? root : join(root, rel);
    const st = await lstat(full, { bigint: true });
    const mode = Number(st.mode);
    const meta: EntryMeta = {
      type: typeOf(mode),
      mode,
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: st.size,
      mtimeNs: st.mtimeNs,
      nlink: Number(st.nlink),
      rdev: Number(st.rdev),
    };
    if (meta.type === 'symlink') meta.target = await readlink(full);
    return meta;
  };
  tree.set('.', await statOne('.'));
  const dirs = ['.'];
  while (dirs.length) {
    const dir = dirs.pop()!;
    const names = await readdir(dir === '.' ? root : join(root, dir));
    const rels = names.map((n) => (dir === '.' ? n : `${dir}/${n}`));
    const metas = await Promise.all(rels.map(statOne));
    rels.forEach((rel, i) => {
      tree.set(rel, metas[i]);
      if (metas[i].type === 'dir') dirs.push(rel);
    });
  }
  return tree;
}

/** True when the quick check finds no difference. Pure. */
export function sameMeta(a: EntryMeta, b: EntryMeta): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.nlink === b.nlink &&
    a.rdev === b.rdev &&
    a.target === b.target
  );
}

function hasDeletedAncestor(path: string, deleted: ReadonlySet<string>): boolean {
  for (let p = posix.dirname(path); p !== '.' && p !== '/'; p = posix.dirname(p)) if (deleted.has(p)) return true;
  return false;
}

/** Sorts paths so that every parent comes before its children ("." first). Pure. */
export function parentsFirst(paths: string[]): string[] {
  // Compare component by component: "a/b" < "a b" is wrong for plain string order ("/" > " ").
  return paths.sort((x, y) => {
    if (x === '.') return y === '.' ? 0 : -1;
    if (y === '.') return 1;
    const xs = x.split('/');
    const ys = y.split('/');
    for (let i = 0; i < Math.min(xs.length, ys.length); i++) if (xs[i] !== ys[i]) return xs[i] < ys[i] ? -1 : 1;
    return xs.length - ys.length;
  });
}

/**
 * What turns tree `base` (absent: nothing) into tree `next`. Regular files that pass the quick
 * check but whose base mtime is at or after `racyAfterNs` are returned as suspects. Pure.
 */
export function diffTrees(next: Tree, base: Tree | undefined, racyAfterNs?: bigint): TreeDelta {
  const changed: string[] = [];
  const suspects: string[] = [];
  const deletedAll = new Set<string>();
  for (const [path, meta] of next) {
    const old = base?.get(path);
    if (!old) {
      changed.push(path);
      continue;
    }
    // A type change (file to dir, dir to symlink...) removes the old entry first.
    if (old.type !== meta.type && path !== '.') deletedAll.add(path);
    if (!sameMeta(old, meta)) changed.push(path);
    else if (meta.type === 'file' && racyAfterNs !== undefined && old.mtimeNs >= racyAfterNs) suspects.push(path);
  }
  if (base) for (const path of base.keys()) if (!next.has(path)) deletedAll.add(path);
  const deleted = [...deletedAll].filter((p) => !hasDeletedAncestor(p, deletedAll));
  return { changed: parentsFirst(changed), deleted: parentsFirst(deleted), suspects: parentsFirst(suspects) };
}

/** True when two files hold the same bytes (read in chunks; memory stays bounded). */
export async function sameContent(a: string, b: string, chunkBytes = 1024 * 1024): Promise<boolean> {
  const fa = await open(a, 'r');
  try {
    const fb = await open(b, 'r');
    try {
      const ba = Buffer.alloc(chunkBytes);
      const bb = Buffer.alloc(chunkBytes);
      for (let pos = 0; ; pos += chunkBytes) {
        const [ra, rb] = await Promise.all([fa.read(ba, 0, chunkBytes, pos), fb.read(bb, 0, chunkBytes, pos)]);
        if (ra.bytesRead !== rb.bytesRead) return false;
        if (ra.bytesRead === 0) return true;
        if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      }
    } finally {
      await fb.close();
    }
  } finally {
    await fa.close();
  }
}

/** The names tar reads from stdin for `paths`: "./"-prefixed, NUL-separated. Pure. */
export function tarFileList(paths: readonly string[]): Buffer {
  return Buffer.from(paths.map((p) => (p === '.' ? './' : `./${p}`)).join('\0') + (paths.length ? '\0' : ''));
}

/** The body's opening: u32 length, then the manifest as JSON. */
export function encodeManifest(m: Manifest): Buffer {
  const json = Buffer.from(JSON.stringify(m));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([len, json]);
}

function corrupt(why: string): FerryError {
  return new FerryError('STREAM_CORRUPT', `directory stream is damaged: ${why}; the transfer must be retried`);
}

/** True for a relative path that stays inside its root: no "..", no empty or absolute parts. Pure. */
export function isSafeRelativePath(p: string): boolean {
  if (!p || p === '.' || p.startsWith('/') || p.includes('\0')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Checks a parsed manifest; throws STREAM_CORRUPT when it is not one. Pure. */
export function checkManifest(value: unknown): Manifest {
  const m = value as Partial<Manifest> | null;
  if (!m || typeof m !== 'object' || m.format !== MANIFEST_FORMAT) throw corrupt('unknown manifest format');
  if (typeof m.snapshot !== 'string' || (m.base !== undefined && typeof m.base !== 'string')) throw corrupt('bad manifest');
  if (!Array.isArray(m.deleted) || !m.deleted.every((p) => typeof p === 'string' && isSafeRelativePath(p))) {
    throw corrupt('manifest lists an unsafe path');
  }
  if (typeof m.entries !== 'number' || !Number.isSafeInteger(m.entries) || m.entries < 0) throw corrupt('bad manifest');
  return m as Manifest;
}

/**
 * Splits a delta body into its manifest and the rest (the archive), reading only as far as the
 * manifest. `rest` yields the remaining bytes and ends where `source` ends.
 */
export async function readManifest(source: AsyncIterable<Buffer>): Promise<{ manifest: Manifest; rest: AsyncGenerator<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let have = 0;
  const fill = async (n: number): Promise<void> => {
    while (have < n) {
      const r = await it.next();
      if (r.done) throw corrupt('it ended inside its manifest');
      parts.push(r.value);
      have += r.value.length;
    }
  };
  await fill(4);
  let buf = Buffer.concat(parts);
  const len = buf.readUInt32BE(0);
  if (len > MAX_MANIFEST_BYTES) throw corrupt('manifest too large');
  await fill(4 + len);
  buf = Buffer.concat(parts);
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.subarray(4, 4 + len).toString('utf8'));
  } catch {
    throw corrupt('unreadable manifest');
  }
  const manifest = checkManifest(parsed);
  const leftover = buf.subarray(4 + len);
  async function* rest(): AsyncGenerator<Buffer> {
    if (leftover.length) yield leftover;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { manifest, rest: rest() };
}
