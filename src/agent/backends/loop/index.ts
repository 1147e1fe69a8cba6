import { mkdir, open, readdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FerryError } from '../../../errors';
import type { Runner } from '../../../exec/runner';
import type { Logger } from '../../../log';
import { KeyedLock } from '../../keyed-lock';
import { isMountPoint } from '../../mount-table';
import type { Backend, CloneCapable, DatasetSpec, PoolCapacity, SizeRules, SnapshotCapable, StreamCapable, UsageCapable } from '../backend';
import { asPoolFull, ensureNotMounted, ensurePoolHasRoom, filesystemCapacity, loopMount, unmountPath } from '../common';
import { FileSnapshots } from '../file-snapshots';
import { applyBlockDiff, encodeBlockDiff } from './block-stream';
import * as cmd from './commands';
import {
  TEMP_PREFIX,
  assertPlainName,
  pathExists,
  publishFileNoReplace,
  removeQuietly,
  removeStaleTemps,
  removeTree,
  syncDir,
  syncFile,
  tempPath,
  unlinkIfExists,
} from '../files';
import { Freezer } from './freeze';
import { deviceHeld, filesystemOf, filesystemOfSync, loopDevices, makeMountable, mountPointsOf, rangesWorthComparing } from './images';
import { loopSizeRules } from './descriptor';
import { imageEntryName, imageSpec } from './parse';

/** Checks, with growing pauses (ms), before a loop device that looks held counts as held. */
const HELD_CHECKS = 8;
const HELD_CHECK_PAUSE_MS = 50;
/** How many images usage() stats at once. */
const USAGE_CONCURRENCY = 64;

/** Where the loop pool lives (from config `loop.dir`). */
export interface LoopBackendOptions {
  /** The pool directory: `images/<name>.img`, `snapshots/<name>/<snap>.img`, `frozen/<name>` live here. */
  dir: string;
}

/**
 * Each dataset is a sparse image file holding ext4 or xfs, loop-mounted; the image's size is the
 * hard limit. Snapshots are copies of the image (reflinks where the host filesystem has them, taken
 * with the filesystem frozen when mounted); streams carry only the blocks that differ from the base.
 */
export class LoopBackend implements Backend, SnapshotCapable, CloneCapable, StreamCapable, UsageCapable {
  readonly kind = 'loop' as const;
  readonly sizeRules: SizeRules = loopSizeRules;
  private readonly imagesDir: string;
  private readonly snapshotsDir: string;
  private readonly freezer: Freezer;
  /** Serializes the operations that make or replace files of one dataset. */
  private readonly lock = new KeyedLock();
  private readonly snapshots: FileSnapshots;

  constructor(
    private readonly opts: LoopBackendOptions,
    private readonly runner: Runner,
    private readonly log: Logger,
  ) {
    this.imagesDir = join(opts.dir, 'images');
    this.snapshotsDir = join(opts.dir, 'snapshots');
    this.freezer = new Freezer(runner, log, join(opts.dir, 'frozen'));
    this.snapshots = new FileSnapshots(
      {
        kind: this.kind,
        root: this.snapshotsDir,
        suffix: '.img',
        entryName: imageEntryName,
        publish: publishFileNoReplace,
        remove: (path) => unlinkIfExists(path),
        stampAt: 'publish',
      },
      this.lock,
      (err) => this.mapNoSpace(err),
      log,
    );
  }

  /**
   * Makes the pool directories, thaws any filesystem a crashed run left frozen, and removes temp
   * files left by interrupted operations. Idempotent.
   */
  async init(): Promise<void> {
    for (const d of [this.imagesDir, this.snapshotsDir]) await mkdir(d, { recursive: true });
    await this.freezer.thawLeftovers();
    // A private recovery mount (makeMountable) that a crash left mounted goes before its directory.
    for (const entry of await readdir(this.opts.dir)) {
      const path = join(this.opts.dir, entry);
      if (entry.startsWith(TEMP_PREFIX) && isMountPoint(path)) await this.runner.run(cmd.umount(path));
    }
    let stale = await removeStaleTemps(this.imagesDir);
    stale += await removeStaleTemps(this.opts.dir);
    for (const name of await readdir(this.snapshotsDir)) stale += await removeStaleTemps(join(this.snapshotsDir, name));
    if (stale) this.log.info({ count: stale }, 'removed temp files of interrupted operations');
  }

  /** Size and free space of the filesystem holding the pool directory, in bytes. */
  capacity(): Promise<PoolCapacity> {
    return filesystemCapacity(this.opts.dir);
  }

  /**
   * Makes an image of `spec.sizeBytes` (rounded down to 4 KiB) formatted with `spec.fs` (default
   * ext4). Idempotent: an existing image is left as it is. Throws INVALID_OPTION without a size or
   * below the filesystem's minimum, POOL_FULL when the pool has no room; leaves nothing on failure.
   */
  async create(name: string, spec: DatasetSpec): Promise<void> {
    assertPlainName('volume', name);
    const { fs, sizeBytes: size } = imageSpec(name, spec);
    await this.lock.run(name, async () => {
      if (await this.exists(name)) return;
      await mkdir(this.imagesDir, { recursive: true });
      await ensurePoolHasRoom(this.kind, this.imagesDir, { runner: this.runner });
      const tmp = tempPath(this.imagesDir, 'create', name, '.img');
      const started = Date.now();
      try {
        const fh = await open(tmp, 'wx');
        try {
          await fh.truncate(size);
        } finally {
          await fh.close();
        }
        await this.runner.run(cmd.mkfs(fs, tmp));
        await syncFile(tmp);
        // Published with link: a concurrent create of the same name wins and this one is a no-op.
        await publishFileNoReplace(tmp, this.imagePath(name));
        await syncDir(this.imagesDir);
      } catch (err) {
        throw await this.mapNoSpace(err);
      } finally {
        await removeQuietly(tmp);
      }
      this.log.info({ volume: name, op: 'create', fs, sizeBytes: size, durationMs: Date.now() - started }, 'image created');
    });
  }

  /**
   * Removes the image and all its snapshots. Idempotent. Throws VOLUME_BUSY while the image is
   * mounted (here, or anywhere its loop device is held open).
   */
  async destroy(name: string): Promise<void> {
    assertPlainName('volume', name);
    await this.lock.run(name, async () => {
      const image = this.imagePath(name);
      if (await pathExists(image)) {
        const { mountPoint, idle } = await this.mountState(name, image);
        ensureNotMounted(name, mountPoint);
        // Attached but unused (a crash between attach and mount): free it. It may be going already.
        for (const dev of idle) await this.runner.run(cmd.losetupDetach(dev)).catch((err: unknown) => this.log.debug({ err, dev }, 'loop device not detached'));
      }
      // Snapshots first: a crash half-way leaves a volume without snapshots, never old snapshots
      // that a new volume of the same name would take for its own.
      await removeTree(this.snapshots.dir(name), this.snapshotsDir, name);
      await unlinkIfExists(image);
      await syncDir(this.imagesDir);
      this.log.info({ volume: name, op: 'destroy' }, 'image destroyed');
    });
  }

  /** Names of the images in the pool, sorted (one readdir: fast for thousands of volumes). */
  async list(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.imagesDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .map(imageEntryName)
      .filter((n): n is string => n !== undefined)
      .sort();
  }

  /** True when the dataset's image exists. */
  async exists(name: string): Promise<boolean> {
    assertPlainName('volume', name);
    try {
      return (await stat(this.imagePath(name))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Loop-mounts the image at `target` (made if missing), read-only when asked. Idempotent when
   * `target` is already a mount point. Throws VOLUME_NOT_FOUND without an image.
   */
  async mount(name: string, target: string, opts?: { readOnly?: boolean }): Promise<void> {
    const image = this.imagePath(name);
    const fs = await filesystemOf(image, () => new FerryError('VOLUME_NOT_FOUND', `volume ${name} has no image in the loop pool`));
    await loopMount(this.runner, image, target, fs, opts?.readOnly ?? false);
  }

  /** Unmounts `target` (the loop device is freed with it). Idempotent. Throws VOLUME_BUSY when in use. */
  async unmount(_name: string, target: string): Promise<void> {
    await unmountPath(this.runner, target);
  }

  /**
   * Copies the image to snapshot `snap`, with its filesystem frozen for the copy when it is mounted
   * (always thawed afterwards). Throws VOLUME_NOT_FOUND, VOLUME_EXISTS, POOL_FULL; leaves nothing on failure.
   */
  async snapshot(name: string, snap: string): Promise<void> {
    assertPlainName('volume', name);
    await this.lock.run(name, async () => {
      const image = this.imagePath(name);
      if (!(await pathExists(image))) throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} has no image in the loop pool`);
      const started = Date.now();
      let frozenMs = 0;
      let mounted = false;
      await this.snapshots.take(name, snap, async (tmp) => {
        const { mountPoint } = await this.mountState(name, image);
        mounted = !!mountPoint;
        frozenMs = await this.freezer.whileFrozen(name, mountPoint, () => this.runner.run(cmd.copyImage(image, tmp)));
        await syncFile(tmp);
      });
      this.log.info({ volume: name, snapshot: snap, op: 'snapshot', mounted, frozenMs, durationMs: Date.now() - started }, 'snapshot taken');
    });
  }

  /** Snapshot names of a dataset, oldest first (by the stamp each got when it was published). */
  listSnapshots(name: string): Promise<string[]> {
    return this.snapshots.list(name);
  }

  /** Deletes snapshot `snap`. Idempotent. */
  deleteSnapshot(name: string, snap: string): Promise<void> {
    return this.snapshots.delete(name, snap);
  }

  /**
   * Replaces the image with a copy of snapshot `snap` (making it when missing). Throws
   * SNAPSHOT_NOT_FOUND, VOLUME_BUSY while mounted, POOL_FULL. The old image stays on failure.
   */
  async rollback(name: string, snap: string, _spec: DatasetSpec): Promise<void> {
    assertPlainName('volume', name);
    assertPlainName('snapshot', snap);
    await this.lock.run(name, async () => {
      const source = await this.snapshots.existing(name, snap);
      const image = this.imagePath(name);
      if (await pathExists(image)) ensureNotMounted(name, (await this.mountState(name, image)).mountPoint);
      await this.copyToLive(source, name, async (tmp) => {
        await rename(tmp, image);
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
      const exists = () => new FerryError('VOLUME_EXISTS', `volume ${target} already exists in the loop pool: choose another name`);
      if (await this.exists(target)) throw exists();
      const published = await this.copyToLive(source, target, (tmp) => publishFileNoReplace(tmp, this.imagePath(target)));
      if (!published) throw exists();
      this.log.info({ volume: target, source: name, snapshot: snap, op: 'clone' }, 'cloned');
    });
  }

  /**
   * A stream of snapshot `snap`: the blocks that differ from snapshot `base` (or every non-zero
   * block without a base), in the stream envelope. Errors (SNAPSHOT_NOT_FOUND, read errors) arrive
   * as stream errors.
   */
  send(name: string, snap: string, base?: string): Readable {
    return this.snapshots.send(name, snap, base, () => {
      const image = this.snapshots.path(name, snap);
      const fs = filesystemOfSync(image, () => this.snapshots.notFound(name, snap));
      const basePath = base === undefined ? undefined : this.snapshots.path(name, base);
      if (basePath !== undefined) filesystemOfSync(basePath, () => this.snapshots.notFound(name, base!));
      return { header: { fs }, body: this.streamBody(name, image, basePath) };
    });
  }

  /**
   * Stores a stream made by `send` as snapshot `snap` of `name`: applied to a copy of the base
   * snapshot (incremental) or to a new sparse file, kept only when the stream ended cleanly.
   * Throws STREAM_CORRUPT, SNAPSHOT_NOT_FOUND (base missing), VOLUME_EXISTS, POOL_FULL, INVALID_REQUEST
   * (not a loop stream of `snap`); on any failure nothing of `snap` is left.
   */
  receive(name: string, snap: string, stream: Readable): Promise<void> {
    return this.snapshots.receive(name, snap, stream, async (tmp, base, body) => {
      if (base) await this.runner.run(cmd.copyImage(base, tmp));
      const fh = await open(tmp, base ? 'r+' : 'wx');
      try {
        await applyBlockDiff(fh, body);
      } finally {
        await fh.close();
      }
    });
  }

  /** Host bytes each image takes (allocated blocks, so sparse holes are not counted), by name. */
  async usage(only?: readonly string[]): Promise<Map<string, number>> {
    const names = only ? [...only] : await this.list();
    const out = new Map<string, number>();
    for (let i = 0; i < names.length; i += USAGE_CONCURRENCY) {
      await Promise.all(
        names.slice(i, i + USAGE_CONCURRENCY).map(async (name) => {
          try {
            const st = await stat(this.imagePath(name));
            out.set(name, st.blocks * 512);
          } catch (err) {
            // Destroyed meanwhile: left out, as the interface allows.
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
        }),
      );
    }
    return out;
  }

  /** The block stream of `image` against `base`, reading only what the extent maps say may differ. */
  private async *streamBody(name: string, image: string, base: string | undefined): AsyncGenerator<Buffer> {
    const started = Date.now();
    const ranges = await rangesWorthComparing(this.runner, this.log, image, base);
    let bytes = 0;
    for await (const b of encodeBlockDiff(image, base, { ranges })) {
      bytes += b.length;
      yield b;
    }
    const comparedBytes = ranges?.reduce((sum, [s, e]) => sum + e - s, 0);
    this.log.debug({ volume: name, image, base, comparedBytes, streamBytes: bytes, durationMs: Date.now() - started }, 'block stream sent');
  }

  /**
   * Where the image is mounted in this mount namespace (none: `mountPoint` undefined), and its loop
   * devices that nothing holds. Throws VOLUME_BUSY when a loop device of it is held open but not
   * mounted here (another mount namespace): it can be neither frozen nor safely replaced from here.
   */
  private async mountState(name: string, image: string): Promise<{ mountPoint?: string; idle: string[] }> {
    for (let attempt = 1; ; attempt++) {
      const devices = await loopDevices(this.runner, image);
      const mountPoint = mountPointsOf(devices)[0];
      if (mountPoint) return { mountPoint, idle: [] };
      let held: string | undefined;
      for (const dev of devices) if (!held && (await deviceHeld(dev))) held = dev;
      if (!held) return { idle: devices };
      // Right after an unmount the kernel frees the loop device in the background, and until then
      // it still looks held: only a device that stays held is someone else's mount.
      if (attempt >= HELD_CHECKS) {
        throw new FerryError('VOLUME_BUSY', `dataset ${name} is in use through ${held}, mounted outside this agent's mount namespace: unmount it there first`);
      }
      await new Promise((r) => setTimeout(r, HELD_CHECK_PAUSE_MS * attempt));
    }
  }

  private imagePath(name: string): string {
    return join(this.imagesDir, `${name}.img`);
  }

  /**
   * Copies snapshot image `source` to a temp file in the images dir, makes it mountable on this host
   * (journal replayed; xfs gets a fresh UUID, as xfs refuses two mounted filesystems with one UUID),
   * syncs it and hands it to `publish`. The temp file is always removed. Throws POOL_FULL.
   */
  private async copyToLive(source: string, name: string, publish: (tmp: string) => Promise<boolean>): Promise<boolean> {
    await mkdir(this.imagesDir, { recursive: true });
    const tmp = tempPath(this.imagesDir, 'live', name, '.img');
    try {
      await this.runner.run(cmd.copyImage(source, tmp));
      await makeMountable(this.runner, tmp, this.opts.dir);
      await syncFile(tmp);
      const ok = await publish(tmp);
      await syncDir(this.imagesDir);
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
