import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FerryError } from '../errors';
import type { BankStore, ObjectWriter, StoredObject } from './types';
import { checkKey, checkRange, shortRange } from './store-key';

/** A put writes `<key>.tmp-<16 hex>` first; the listing never shows these (a crash may leave one). */
const TMP_SUFFIX = /\.tmp-[0-9a-f]{16}$/;

/** Stats in flight while listing (a packs/ or index/ tree holds thousands of files). */
const LIST_STAT_PARALLEL = 32;

/**
 * A bank in a local directory (a disk, or an NFS share mounted here): `file:///path`.
 * Each key is a file under the root; a put writes a temporary file, fsyncs it, renames it over the
 * key and fsyncs the directory, so a reader sees the old object, none, or all of the new one, and a
 * crash loses at most the object being written. The root must exist: a missing one is taken for an
 * unmounted share, never created.
 */
export class FileStore implements BankStore {
  readonly url: string;

  constructor(
    /** Absolute path of the bank's root directory. */
    readonly root: string,
    url?: string,
  ) {
    this.url = url ?? `file://${root}`;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const w = this.create(key);
    await w.write(body, 0).catch(async (err: unknown) => {
      await w.abort();
      throw err;
    });
    await w.commit(body.length);
  }

  /**
   * Writes the object's pieces into `<key>.tmp-<hex>` where they belong as they come (a pack
   * costs no memory here); commit fsyncs it, renames it over the key and fsyncs the directory.
   */
  create(key: string): ObjectWriter {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const tmp = `${path}.tmp-${randomBytes(8).toString('hex')}`;
    let opened: Promise<FileHandle> | undefined;
    const open = (): Promise<FileHandle> =>
      (opened ??= (async () => {
        await this.mkdirs(dir);
        return fs.open(tmp, 'wx', 0o600);
      })());
    /** After commit or abort, a write is a caller's mistake: it fails instead of reopening the file. */
    const finish = (): void => {
      opened = Promise.reject(new FerryError('INTERNAL', `object ${key} was written after it was committed or aborted`));
      opened.catch(() => undefined);
    };
    const drop = async (): Promise<void> => {
      const fh = await opened?.catch(() => undefined);
      await fh?.close().catch(() => undefined);
      finish();
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    };
    return {
      write: async (bytes, at) => {
        try {
          const fh = await open();
          for (let done = 0; done < bytes.length; ) done += (await fh.write(bytes, done, bytes.length - done, at + done)).bytesWritten;
        } catch (err) {
          throw await this.failure(err, 'write', key);
        }
      },
      commit: async (size) => {
        try {
          const fh = await open();
          try {
            const got = (await fh.stat()).size;
            if (got !== size) throw new FerryError('INTERNAL', `${tmp} holds ${got} bytes where ${size} were written`);
            await fh.sync();
          } finally {
            await fh.close();
          }
          await fs.rename(tmp, path);
          // The rename is durable only once its directory is: a manifest must not vanish in a crash.
          await syncDir(dir);
        } catch (err) {
          await fs.rm(tmp, { force: true }).catch(() => undefined);
          throw await this.failure(err, 'write', key);
        } finally {
          finish();
        }
      },
      abort: drop,
    };
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (err) {
      if (isMissing(err)) {
        await this.rootMustExist();
        return null;
      }
      throw await this.failure(err, 'read', key);
    }
  }

  async getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer | null> {
    checkRange(this.url, key, offset, length);
    let fh;
    try {
      fh = await fs.open(this.pathOf(key), 'r');
    } catch (err) {
      if (isMissing(err)) {
        await this.rootMustExist();
        return null;
      }
      throw await this.failure(err, 'read', key);
    }
    try {
      const out = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      let got = 0;
      // pread until `length` bytes or the end of the file.
      while (got < length) {
        const { bytesRead } = await fh.read(out, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < length) throw shortRange(this.url, key, offset, length, got);
      return out;
    } catch (err) {
      throw await this.failure(err, 'read', key);
    } finally {
      await fh.close();
    }
  }

  async has(key: string): Promise<boolean> {
    try {
      return (await fs.stat(this.pathOf(key))).isFile();
    } catch (err) {
      if (isMissing(err)) {
        await this.rootMustExist();
        return false;
      }
      throw await this.failure(err, 'read', key);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    if (prefix !== '') checkKey(prefix, true);
    await this.rootMustExist();
    // Walk only the directory the prefix fully names ("packs/ab" → packs/), filtering below it.
    const cut = prefix.lastIndexOf('/');
    const base = cut < 0 ? '' : prefix.slice(0, cut);
    const files: string[] = [];
    try {
      await this.walk(base, prefix, files);
    } catch (err) {
      throw await this.failure(err, 'list', prefix);
    }
    const out: StoredObject[] = [];
    for (let i = 0; i < files.length; i += LIST_STAT_PARALLEL) {
      const stats = await Promise.all(
        files.slice(i, i + LIST_STAT_PARALLEL).map(async (key) => {
          try {
            const st = await fs.stat(this.pathOf(key));
            return { key, size: st.size, modifiedMs: Math.floor(st.mtimeMs) };
          } catch (err) {
            if (isMissing(err)) return null; // deleted while listing
            throw await this.failure(err, 'list', prefix);
          }
        }),
      );
      for (const s of stats) if (s) out.push(s);
    }
    // Byte order of the key, as S3 lists (keys are ASCII: code-unit order is the same).
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      try {
        await fs.unlink(this.pathOf(key));
      } catch (err) {
        if (isMissing(err)) continue;
        throw await this.failure(err, 'delete', key);
      }
    }
  }

  /** Collects into `out` every key under directory `dir` (a key, '' = root) starting with `prefix`. */
  private async walk(dir: string, prefix: string, out: string[]): Promise<void> {
    let names;
    try {
      names = await fs.readdir(dir === '' ? this.root : this.pathOf(dir), { withFileTypes: true });
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    for (const d of names) {
      const key = dir === '' ? d.name : `${dir}/${d.name}`;
      if (d.isDirectory()) {
        // Descend only where the prefix can still match below.
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) await this.walk(key, prefix, out);
      } else if (d.isFile() && key.startsWith(prefix) && !TMP_SUFFIX.test(d.name)) {
        out.push(key);
      }
    }
  }

  private pathOf(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  /** mkdir -p below the root, never the root itself (a missing root is an unmounted share). */
  private async mkdirs(dir: string): Promise<void> {
    if (dir === this.root) return;
    try {
      await fs.mkdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return;
      if (code !== 'ENOENT') throw err;
      await this.rootMustExist();
      await this.mkdirs(dirname(dir));
      await fs.mkdir(dir).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      });
    }
  }

  private async rootMustExist(): Promise<void> {
    let isDir = false;
    try {
      isDir = (await fs.stat(this.root)).isDirectory();
    } catch (err) {
      if (!isMissing(err)) throw this.mapped(err, 'open', '');
    }
    if (!isDir) {
      throw new FerryError(
        'BANK_UNAVAILABLE',
        `bank ${this.url} is not there: the directory ${this.root} does not exist; check that its disk or NFS share is mounted, or create it (mkdir -p ${this.root})`,
        { details: { url: this.url, path: this.root } },
      );
    }
  }

  /** The FerryError for `err`, after checking the root (a vanished root explains any ENOENT). */
  private async failure(err: unknown, op: string, key: string): Promise<FerryError> {
    if (err instanceof FerryError) return err;
    if (isMissing(err)) await this.rootMustExist();
    return this.mapped(err, op, key);
  }

  private mapped(err: unknown, op: string, key: string): FerryError {
    if (err instanceof FerryError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const details = { url: this.url, key, errno: code };
    const writing = op === 'write' || op === 'delete';
    if (writing && (code === 'EROFS' || code === 'EACCES' || code === 'EPERM')) {
      return new FerryError(
        'BANK_READ_ONLY',
        `bank ${this.url} refuses writes (${code} on ${op} of ${key || this.root}): check that ${this.root} is mounted read-write and writable by ferry, or add the bank with --read-only`,
        { cause: err, details },
      );
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new FerryError(
        'BANK_UNAVAILABLE',
        `bank ${this.url} is full (${code} writing ${key}): free space on ${this.root}'s filesystem (bank gc removes unused chunks) or move the bank to a larger disk`,
        { cause: err, details },
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    return new FerryError(
      'BANK_UNAVAILABLE',
      `bank ${this.url}: cannot ${op} ${key || this.root} (${why}); check the disk or NFS share holding ${this.root}`,
      { cause: err, details },
    );
  }
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
