import { lstat, mkdir, readdir, realpath, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FerryError } from '../../../errors';
import type { Runner } from '../../../exec/runner';
import type { Logger } from '../../../log';
import { KeyedLock } from '../../keyed-lock';
import { readMountTable } from '../../mount-table';
import type { Backend, CloneCapable, DatasetSpec, PoolCapacity, SizeRules, SnapshotCapable, StreamCapable, UsageCapable } from '../backend';
import { asPoolFull, bindMount, ensureNotMounted, ensurePoolHasRoom, filesystemCapacity, unmountPath } from '../common';
import { FileSnapshots } from '../file-snapshots';
import { assertPlainName, isPublicEntry, pathExists, publishDirNoReplace, removeQuietly, removeStaleTemps, removeTree, syncDir, tempPath } from '../files';
import * as cmd from './commands';
import { directorySizeRules } from './descriptor';
import { mountsShowing, parseDiskUsage } from './parse';
import { applyTreeDelta, sendTreeDelta } from './tree-stream';

/** Paths per du run, and du runs at once, in usage(). */
const DU_BATCH = 100;
const DU_CONCURRENCY = 2;

/** Where the directory pool lives (from config `directory.dir`). */
export interface DirectoryBackendOptions {
  /** The pool directory: `volumes/<name>` and `snapshots/<name>/<snap>` live here. */
  dir: string;
}

const snapshotEntry = (entry: string): string | undefined => (isPublicEntry(entry) ? entry : undefined);

/**
 * Each dataset is a plain directory, bind-mounted. It cannot limit size (and says so in its rules).
 * Snapshots are full copies (reflinks where the filesystem has them); streams are file-level deltas.
 * Snapshots of a directory in use are copies made while it changes: each file is whole, but the
 * tree is not one point in time.
 */
export class DirectoryBackend implements Backend, SnapshotCapable, CloneCapable, StreamCapable, UsageCapable {
  readonly kind = 'directory' as const;
  readonly sizeRules: SizeRules = directorySizeRules;
  private readonly volumesDir: string;
  private readonly snapshotsDir: string;
  /** Serializes the operations that make or replace trees of one dataset. */
  private readonly lock = new KeyedLock();
  private readonly snapshots: FileSnapshots;

  constructor(
    private readonly opts: DirectoryBackendOptions,
    private readonly runner: Runner,
    private readonly log: Logger,
  ) {
    this.volumesDir = join(opts.dir, 'volumes');
    this.snapshotsDir = join(opts.dir, 'snapshots');
    this.snapshots = new FileSnapshots(
      {
        kind: this.kind,
        root: this.snapshotsDir,
        suffix: '',
        entryName: snapshotEntry,
        publish: publishDirNoReplace,
        remove: (path, dir, snap) => removeTree(path, dir, snap),
        // The tree is copied while it may change: tree-delta's racy rule measures from the copy's start.
        stampAt: 'start',
      },
      this.lock,
      (err) => this.mapNoSpace(err),
      log,
    );
  }

  /** Makes the pool directories and removes temp trees left by interrupted operations. Idempotent. */
  async init(): Promise<void> {
    await mkdir(this.volumesDir, { recursive: true });
    await mkdir(this.snapshotsDir, { recursive: true });
    let stale = await removeStaleTemps(this.volumesDir);
    for (const name of await readdir(this.snapshotsDir)) stale += await removeStaleTemps(join(this.snapshotsDir, name));
    stale += await removeStaleTemps(this.snapshotsDir);
    if (stale) this.log.info({ count: stale }, 'removed temp trees of interrupted operations');
  }

  /** Size and free space of the filesystem holding the pool directory, in bytes. */
  capacity(): Promise<PoolCapacity> {
    return filesystemCapacity(this.opts.dir);
  }

  /**
   * Makes an empty directory (mode 0755, owned by root). Idempotent. Throws INVALID_OPTION for a
   * size (this backend cannot enforce one), POOL_FULL when the pool has no room; leaves nothing on failure.
   */
  async create(name: string, spec: DatasetSpec): Promise<void> {
    assertPlainName('volume', name);
    if (spec.sizeBytes !== undefined) {
      throw new FerryError('INVALID_OPTION', `backend directory cannot limit a volume's size: drop -o size or use backend loop or btrfs`);
    }
    await this.lock.run(name, async () => {
      if (await this.exists(name)) return;
      await mkdir(this.volumesDir, { recursive: true });
      await ensurePoolHasRoom(this.kind, this.volumesDir, { runner: this.runner });
      const tmp = tempPath(this.volumesDir, 'create', name);
      try {
        await mkdir(tmp, { mode: 0o755 });
        // A concurrent create that won leaves this one a no-op; a stray file of that name does not.
        if (!(await publishDirNoReplace(tmp, this.volumePath(name))) && !(await this.exists(name))) {
          throw new FerryError('INTERNAL', `cannot create volume ${name}: ${this.volumePath(name)} exists and is not a directory; remove it`);
        }
        await syncDir(this.volumesDir);
      } catch (err) {
        throw await this.mapNoSpace(err);
      } finally {
        await removeQuietly(tmp);
      }
      this.log.info({ volume: name, op: 'create' }, 'directory created');
    });
  }

  /** Removes the directory and all its snapshots. Idempotent. Throws VOLUME_BUSY while it is mounted. */
  async destroy(name: string): Promise<void> {
    assertPlainName('volume', name);
    await this.lock.run(name, async () => {
      await this.ensureNotMounted(name);
      // Snapshots first: a crash half-way never leaves old snapshots for a new volume of this name.
      await removeTree(this.snapshots.dir(name), this.snapshotsDir, name);
      await removeTree(this.volumePath(name), this.volumesDir, name);
      this.log.info({ volume: name, op: 'destroy' }, 'directory destroyed');
    });
  }

  /** Names of the datasets, sorted. */
  async list(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.volumesDir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .filter((e) => e.isDirectory() && isPublicEntry(e.name))
      .map((e) => e.name)
      .sort();
  }

  /** True when the dataset's directory exists. */
  async exists(name: string): Promise<boolean> {
    assertPlainName('volume', name);
    try {
      return (await lstat(this.volumePath(name))).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Bind-mounts the directory at `target` (read-only when asked). Idempotent. Throws VOLUME_NOT_FOUND. */
  async mount(name: string, target: string, opts?: { readOnly?: boolean }): Promise<void> {
    if (!(await this.exists(name))) throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} does not exist in the directory pool`);
    await bindMount(this.runner, this.volumePath(name), target, opts?.readOnly ?? false);
  }

  /** Unmounts `target`. Idempotent. Throws VOLUME_BUSY when in use. */
  async unmount(_name: string, target: string): Promise<void> {
    await unmountPath(this.runner, target);
  }

  /**
   * Copies the directory to snapshot `snap`. Throws VOLUME_NOT_FOUND, VOLUME_EXISTS, POOL_FULL;
   * leaves nothing on failure.
   */
  async snapshot(name: string, snap: string): Promise<void> {
    assertPlainName('volume', name);
    await this.lock.run(name, async () => {
      if (!(await this.exists(name))) throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} does not exist in the directory pool`);
      const started = Date.now();
      await this.snapshots.take(name, snap, async (tmp) => {
        await this.runner.run(cmd.copyTree(this.volumePath(name), tmp));
        await this.runner.run(cmd.syncFilesystem(tmp));
      });
      this.log.info({ volume: name, snapshot: snap, op: 'snapshot', durationMs: Date.now() - started }, 'snapshot taken');
    });
  }

  /** Snapshot names of a dataset, oldest first (by the stamp each got when it was made). */
  listSnapshots(name: string): Promise<string[]> {
    return this.snapshots.list(name);
  }

  /** Deletes snapshot `snap` (it disappears at once, then its files go). Idempotent. */
  deleteSnapshot(name: string, snap: string): Promise<void> {
    return this.snapshots.delete(name, snap);
  }

  /**
   * Replaces the directory with a copy of snapshot `snap` (making it when missing). Throws
   * SNAPSHOT_NOT_FOUND, VOLUME_BUSY while mounted, POOL_FULL. The old directory stays on failure.
   */
  async rollback(name: string, snap: string, _spec: DatasetSpec): Promise<void> {
    assertPlainName('volume', name);
    assertPlainName('snapshot', snap);
    await this.lock.run(name, async () => {
      const source = await this.snapshots.existing(name, snap);
      const live = this.volumePath(name);
      const exists = await this.exists(name);
      if (exists) await this.ensureNotMounted(name);
      await this.copyToLive(source, name, async (tmp) => {
        if (exists) {
          // Two renames: a directory cannot replace a non-empty one in one step.
          const old = tempPath(this.volumesDir, 'old', name);
          await rename(live, old);
          await rename(tmp, live);
          await syncDir(this.volumesDir);
          await rm(old, { recursive: true, force: true });
        } else {
          await rename(tmp, live);
        }
        return true;
      });
      this.log.info({ volume: name, snapshot: snap, op: 'rollback' }, 'rolled back');
    });
  }

  /** Makes volume `target` from snapshot `snap` of `name`. Throws SNAPSHOT_NOT_FOUND, VOLUME_EXISTS, POOL_FULL. */
  async clone(name: string, snap: string, target: string, _spec: DatasetSpec): Promise<void> {
    assertPlainName('volume', name);
    assertPlainName('snapshot', snap);
    assertPlainName('volume', target);
    await this.lock.run(target, async () => {
      const source = await this.snapshots.existing(name, snap);
      const exists = () => new FerryError('VOLUME_EXISTS', `volume ${target} already exists in the directory pool: choose another name`);
      if (await pathExists(this.volumePath(target))) throw exists();
      if (!(await this.copyToLive(source, target, (tmp) => publishDirNoReplace(tmp, this.volumePath(target))))) throw exists();
      this.log.info({ volume: target, source: name, snapshot: snap, op: 'clone' }, 'cloned');
    });
  }

  /**
   * A stream of snapshot `snap`: the entries new or changed since snapshot `base` and the paths
   * deleted since (everything without a base), in the stream envelope. Errors (SNAPSHOT_NOT_FOUND,
   * read errors, tar failures) arrive as stream errors.
   */
  send(name: string, snap: string, base?: string): Readable {
    return this.snapshots.send(name, snap, base, () => ({ body: this.deltaBody(name, snap, base) }));
  }

  /**
   * Stores a stream made by `send` as snapshot `snap` of `name`: a copy of the base snapshot
   * (incremental) or an empty tree, minus the deleted paths, plus the archive; kept only when the
   * stream ended cleanly. Throws STREAM_CORRUPT, SNAPSHOT_NOT_FOUND (base missing), VOLUME_EXISTS,
   * POOL_FULL, INVALID_REQUEST (not a directory stream of `snap`); on any failure nothing of `snap` is left.
   */
  receive(name: string, snap: string, stream: Readable): Promise<void> {
    return this.snapshots.receive(name, snap, stream, async (tmp, base, body, h) => {
      if (base) await this.runner.run(cmd.copyTree(base, tmp));
      else await mkdir(tmp, { mode: 0o700 });
      await applyTreeDelta(this.runner, tmp, body, { snapshot: snap, base: h.base as string | undefined });
      await this.runner.run(cmd.syncFilesystem(tmp));
    });
  }

  /** Apparent bytes of each dataset (du), by name; a dataset du cannot read is left out. */
  async usage(only?: readonly string[]): Promise<Map<string, number>> {
    const names = only ? [...only] : await this.list();
    const batches: string[][] = [];
    for (let i = 0; i < names.length; i += DU_BATCH) batches.push(names.slice(i, i + DU_BATCH));
    const out = new Map<string, number>();
    const worker = async (): Promise<void> => {
      for (let batch = batches.shift(); batch; batch = batches.shift()) {
        const r = await this.runner.run(cmd.diskUsage(batch.map((n) => this.volumePath(n))), { okExitCodes: [cmd.DU_SOME_UNREADABLE] });
        const byPath = parseDiskUsage(r.stdout);
        for (const n of batch) {
          const bytes = byPath.get(this.volumePath(n));
          if (bytes !== undefined) out.set(n, bytes);
        }
      }
    };
    await Promise.all(Array.from({ length: DU_CONCURRENCY }, worker));
    return out;
  }

  private volumePath(name: string): string {
    return join(this.volumesDir, name);
  }

  /** Throws VOLUME_BUSY when any mount in this namespace shows the dataset's directory or part of it. */
  private async ensureNotMounted(name: string): Promise<void> {
    let real: string;
    try {
      real = await realpath(this.volumePath(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const dev = (await stat(real)).dev;
    for (const m of mountsShowing(readMountTable(), real)) {
      // Same source name is not proof (tmpfs): the mount must show the same filesystem.
      const shown = await stat(m.mountPoint).catch(() => undefined);
      if (shown && (shown.dev === dev || m.mountPoint === real || m.mountPoint.startsWith(real + '/'))) ensureNotMounted(name, m.mountPoint);
    }
  }

  /** The delta body of snapshot `snap` against `base`; SNAPSHOT_NOT_FOUND when either is missing. */
  private async *deltaBody(name: string, snap: string, base: string | undefined): AsyncGenerator<Buffer> {
    const root = await this.snapshots.existing(name, snap);
    const baseRoot = base === undefined ? undefined : await this.snapshots.existing(name, base);
    yield* sendTreeDelta(this.runner, this.log.child({ volume: name }), root, baseRoot, { snapshot: snap, ...(base !== undefined ? { base } : {}) });
  }

  /**
   * Copies snapshot tree `source` to a temp tree in the volumes dir, gives its root the current
   * mtime (a snapshot root carries its ordering stamp), syncs it and hands it to `publish`.
   * The temp tree is always removed. Throws POOL_FULL.
   */
  private async copyToLive(source: string, name: string, publish: (tmp: string) => Promise<boolean>): Promise<boolean> {
    await mkdir(this.volumesDir, { recursive: true });
    const tmp = tempPath(this.volumesDir, 'live', name);
    try {
      await this.runner.run(cmd.copyTree(source, tmp));
      const now = Date.now() / 1000;
      await utimes(tmp, now, now);
      await this.runner.run(cmd.syncFilesystem(tmp));
      const ok = await publish(tmp);
      await syncDir(this.volumesDir);
      return ok;
    } catch (err) {
      throw await this.mapNoSpace(err);
    } finally {
      await removeQuietly(tmp);
    }
  }

  private mapNoSpace(err: unknown): Promise<unknown> {
    return asPoolFull(this.kind, this.opts.dir, err);
  }
}
