import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FerryError } from '../../errors';
import type { Logger } from '../../log';
import type { KeyedLock } from '../keyed-lock';
import { assertPlainName, closingInner, oldestFirst, pathExists, readStamped, removeQuietly, stampNewest, syncDir, tempPath } from './files';
import { expectStream, unwrapStream, wrapStream, type StreamHeader } from './stream-envelope';

/** How a file-based backend lays out its snapshots: `<root>/<volume>/<snapshot><suffix>`. */
export interface SnapshotLayout {
  kind: 'loop' | 'directory';
  /** The pool's snapshots directory. */
  root: string;
  /** ".img" for image files, "" for trees. */
  suffix: string;
  /** The snapshot name of a directory entry, or undefined for entries that are not snapshots. */
  entryName: (entry: string) => string | undefined;
  /** Publishes `tmp` as `final` unless `final` exists (false then). */
  publish: (tmp: string, final: string) => Promise<boolean>;
  /** Removes one snapshot (a file, or a tree inside `dir`). Idempotent. */
  remove: (path: string, dir: string, snap: string) => Promise<void>;
  /**
   * When a snapshot's ordering stamp is taken: at publish, or when making it began (a tree copied
   * while it changes must count as of the copy's start, for the tree delta's racy-file rule).
   */
  stampAt: 'publish' | 'start';
}

/** What `send` needs from a backend: extra header fields and the raw body, prepared synchronously. */
export interface SendBody {
  header?: Record<string, unknown>;
  body: AsyncIterable<Buffer>;
}

/**
 * The snapshots of a file-based backend: one way to name, order, take, list, delete, send and
 * receive them. Every snapshot is made in a temp path and published whole (sync, link or rename,
 * sync the directory), so a crash leaves either the whole snapshot or nothing but a temp entry.
 */
export class FileSnapshots {
  constructor(
    private readonly layout: SnapshotLayout,
    /** The backend's per-dataset lock: publishing orders a dataset's snapshots. */
    private readonly lock: KeyedLock,
    /** Turns a no-space error into POOL_FULL naming the pool. */
    private readonly mapNoSpace: (err: unknown) => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  dir(name: string): string {
    return join(this.layout.root, name);
  }

  path(name: string, snap: string): string {
    return join(this.dir(name), `${snap}${this.layout.suffix}`);
  }

  /** The path of snapshot `snap`; SNAPSHOT_NOT_FOUND when there is none. */
  async existing(name: string, snap: string): Promise<string> {
    assertPlainName('snapshot', snap);
    const path = this.path(name, snap);
    if (!(await pathExists(path))) throw this.notFound(name, snap);
    return path;
  }

  /** Snapshot names of a dataset, oldest first (by the stamp each got when it was published). */
  async list(name: string): Promise<string[]> {
    assertPlainName('volume', name);
    return oldestFirst(await readStamped(this.dir(name), this.layout.entryName));
  }

  /** Deletes snapshot `snap`. Idempotent. */
  async delete(name: string, snap: string): Promise<void> {
    assertPlainName('volume', name);
    assertPlainName('snapshot', snap);
    await this.layout.remove(this.path(name, snap), this.dir(name), snap);
  }

  notFound(name: string, snap: string): FerryError {
    return new FerryError('SNAPSHOT_NOT_FOUND', `snapshot ${snap} of volume ${name} does not exist in the ${this.layout.kind} pool`);
  }

  exists(name: string, snap: string): FerryError {
    return new FerryError('VOLUME_EXISTS', `snapshot ${snap} of volume ${name} already exists: choose another name`);
  }

  /**
   * Takes snapshot `snap`: `make(tmp)` writes it to a temp path, which is then published. The
   * caller holds the dataset's lock. Throws VOLUME_EXISTS, POOL_FULL; leaves nothing on failure.
   */
  async take(name: string, snap: string, make: (tmp: string) => Promise<void>): Promise<void> {
    assertPlainName('volume', name);
    assertPlainName('snapshot', snap);
    const final = this.path(name, snap);
    if (await pathExists(final)) throw this.exists(name, snap);
    const dir = this.dir(name);
    await mkdir(dir, { recursive: true });
    const tmp = tempPath(dir, 'snap', snap, this.layout.suffix);
    const started = Date.now();
    try {
      await make(tmp);
      await this.publish(name, snap, tmp, started);
      await syncDir(dir);
    } catch (err) {
      throw await this.mapNoSpace(err);
    } finally {
      await removeQuietly(tmp);
    }
  }

  /**
   * Snapshot `snap` as a stream in the envelope: `prepare` checks what it needs and returns the
   * body (changes since `base`, or everything). Its errors, thrown or later, arrive as stream errors.
   */
  send(name: string, snap: string, base: string | undefined, prepare: () => SendBody): Readable {
    let inner: Readable;
    let extra: Record<string, unknown> = {};
    try {
      assertPlainName('volume', name);
      assertPlainName('snapshot', snap);
      if (base !== undefined) assertPlainName('snapshot', base);
      const prepared = prepare();
      extra = prepared.header ?? {};
      inner = Readable.from(prepared.body, { objectMode: false });
    } catch (err) {
      inner = new Readable({ read() {} });
      inner.destroy(err as Error);
    }
    const header: StreamHeader = { backend: this.layout.kind, snapshot: snap, ...(base !== undefined ? { base } : {}), ...extra };
    return closingInner(wrapStream(inner, header), inner);
  }

  /**
   * Stores a stream made by `send` as snapshot `snap`: `apply(tmp, base, body, header)` builds it
   * in a temp path from the base snapshot's path (incremental) or from nothing, and it is kept
   * only when the stream ended cleanly. Throws STREAM_CORRUPT, SNAPSHOT_NOT_FOUND (base missing),
   * VOLUME_EXISTS, POOL_FULL, INVALID_REQUEST (not this backend's stream of `snap`); on any
   * failure nothing of `snap` is left.
   */
  async receive(
    name: string,
    snap: string,
    stream: Readable,
    apply: (tmp: string, base: string | undefined, body: Readable, header: StreamHeader) => Promise<void>,
  ): Promise<void> {
    assertPlainName('volume', name);
    assertPlainName('snapshot', snap);
    const { header, body } = unwrapStream(stream);
    // Errors reach us through iteration; this keeps an error before then from being "unhandled".
    body.on('error', () => undefined);
    const dir = this.dir(name);
    let tmp: string | undefined;
    const started = Date.now();
    try {
      const h = await header;
      expectStream(h, this.layout.kind, snap);
      if (await pathExists(this.path(name, snap))) throw this.exists(name, snap);
      const base = typeof h.base === 'string' ? await this.existing(name, h.base) : undefined;
      await mkdir(dir, { recursive: true });
      tmp = tempPath(dir, 'receive', snap, this.layout.suffix);
      await apply(tmp, base, body, h);
      // Only publishing is serialized with the dataset's other snapshots (it orders them).
      const made = tmp;
      await this.lock.run(name, () => this.publish(name, snap, made, started));
      await syncDir(dir);
    } catch (err) {
      body.destroy();
      throw await this.mapNoSpace(err);
    } finally {
      if (tmp) await removeQuietly(tmp);
    }
    this.log.info({ volume: name, snapshot: snap, op: 'receive', durationMs: Date.now() - started }, 'snapshot received');
  }

  /** Stamps `tmp` as the dataset's newest snapshot and publishes it as `snap`; VOLUME_EXISTS if taken meanwhile. */
  private async publish(name: string, snap: string, tmp: string, startedMs: number): Promise<void> {
    await stampNewest(tmp, this.dir(name), this.layout.entryName, this.layout.stampAt === 'start' ? startedMs : Date.now());
    if (!(await this.layout.publish(tmp, this.path(name, snap)))) throw this.exists(name, snap);
  }
}
