import type { Stats } from 'node:fs';
import { lstat, mkdir, readdir, realpath, rename, rm, rmdir, statfs } from 'node:fs/promises';
import { dirname, join, posix, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { FerryError, isFerryError } from '../../../errors';
import { CommandFailedError, type CommandResult, type Runner, type StreamingCommand } from '../../../exec/runner';
import type { Logger } from '../../../log';
import { isMountPoint, readMountTable } from '../../mount-table';
import type { Backend, CloneCapable, DatasetSpec, PoolCapacity, SizeRules, SnapshotCapable, StreamCapable, UsageCapable } from '../backend';
import * as common from '../common';
import { unwrapStream, wrapStream, type StreamHeader, expectStream } from '../stream-envelope';
import * as cmd from './commands';
import { btrfsSizeRules } from './descriptor';
import * as parse from './parse';
import { SparePool, type SpareSize } from './spares';
import { streamBuffers } from '../../../stream/buffer-size';

/** statfs f_type of btrfs (BTRFS_SUPER_MAGIC). */
const BTRFS_SUPER_MAGIC = 0x9123683e;
/** Inode number of the root directory of every btrfs subvolume (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INO = 256;
/** Send and receive carry whole volumes, longer than the runner's 10-minute default; stalls are the transfer layer's to catch. */
const STREAM_TIMEOUT_MS = 24 * 60 * 60 * 1000;
/** Temporary subvolumes in volumes/: ".<name>.new" is never complete; ".<name>.rollback" is, once the old copy is gone. */
const TEMP_NAME = /^\.(.+)\.(new|rollback)$/;

/** Where the pool is: an existing directory on btrfs (`path`), else a loop-mounted pool file that ferry makes. */
export interface BtrfsOptions {
  path?: string;
  poolFile: string;
  /** Size of the sparse pool file ferry makes, in bytes. */
  poolSizeBytes: number;
  poolMount: string;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function isSubvolume(path: string): Promise<boolean> {
  const st = await lstatOrUndefined(path);
  return !!st && st.isDirectory() && st.ino === SUBVOLUME_ROOT_INO;
}

function detail(err: unknown): string {
  if (err instanceof CommandFailedError) return err.stderrTail || `${err.argv.slice(0, 3).join(' ')} exited with ${err.exitCode}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Volume `name` is the subvolume `<pool>/volumes/<name>`, limited by a qgroup limit on referenced
 * bytes; its snapshot `snap` is the read-only subvolume `<pool>/snapshots/<name>/<snap>`. `volumes`
 * and `snapshots` are subvolumes themselves, so `btrfs subvolume list -o` of either lists exactly
 * its children, however the btrfs-progs version prints their paths. `<pool>/spares` holds empty
 * subvolumes made ahead of Create, already limited (spares.ts); nothing else reads it.
 */
export class BtrfsBackend implements Backend, SnapshotCapable, CloneCapable, StreamCapable, UsageCapable {
  readonly kind = 'btrfs' as const;
  readonly sizeRules: SizeRules = btrfsSizeRules;
  private pool = '';
  private volumesId = 0;
  private snapshotsId = 0;
  /** Spare names are unique to this process (a spare a crash left is deleted at start, but this never trips on one). */
  private readonly spareTag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  private spareSeq = 0;
  private readonly spares: SparePool;

  constructor(
    private readonly opts: BtrfsOptions,
    private readonly runner: Runner,
    private readonly log: Logger,
  ) {
    this.spares = new SparePool({ make: (size) => this.makeSpare(size), remove: (paths) => this.deleteSubvolumes(paths) }, log);
  }

  /**
   * Makes or finds the pool, mounts it, turns quotas on, makes `volumes` and `snapshots`, and
   * finishes or removes what a crash interrupted. Idempotent. Throws BACKEND_UNAVAILABLE.
   */
  async init(): Promise<void> {
    const pool = this.opts.path ? await this.givenPool(this.opts.path) : await this.loopPool();
    try {
      await this.run(cmd.quotaEnable(pool));
      await this.run(cmd.quotaRescanWait(pool));
      for (const dir of ['volumes', 'snapshots', 'spares']) await this.ensureSubvolumeDir(join(pool, dir));
      this.volumesId = parse.parseRootId((await this.run(cmd.rootId(join(pool, 'volumes')))).stdout);
      this.snapshotsId = parse.parseRootId((await this.run(cmd.rootId(join(pool, 'snapshots')))).stdout);
      this.pool = pool;
      await this.recoverInterrupted();
    } catch (err) {
      if (isFerryError(err, 'BACKEND_UNAVAILABLE')) throw err;
      const msg = `cannot prepare the btrfs pool at ${pool}: ${detail(err)}; check the filesystem (dmesg) and restart the agent`;
      throw new FerryError('BACKEND_UNAVAILABLE', msg, { cause: err });
    }
    // Older kernels keep the qgroup of a deleted subvolume; newer ones drop it themselves, and a
    // clear-stale right after a delete races them. So: once per start, not at every destroy.
    await this.run(cmd.qgroupClearStale(pool)).catch((err: unknown) => this.log.debug({ err }, 'stale qgroups not cleared'));
    this.log.info({ pool }, 'btrfs pool ready');
  }

  /** Pool size and free space in bytes (statfs of the pool). */
  async capacity(): Promise<PoolCapacity> {
    return common.filesystemCapacity(this.root);
  }

  /**
   * Idempotent; nothing is left on failure. Throws POOL_FULL, INVALID_OPTION, COMMAND_FAILED.
   * A spare already limited to this size is renamed into place when there is one; else the subvolume
   * is made and limited under a temporary name. Either way the volume has its limit before its name.
   */
  async create(name: string, spec: DatasetSpec): Promise<void> {
    if (await this.exists(name)) return;
    this.checkSpec(spec);
    await this.ensureRoom();
    const spare = await this.takeSpare(spec.sizeBytes);
    if (spare) {
      try {
        await rename(spare, this.volumePath(name));
      } catch (err) {
        await this.deleteQuietly([spare]);
        throw this.failure(err, `creating btrfs volume ${name}`, 'check the pool and try again');
      }
    } else {
      const tmp = this.tempPath(name, 'new');
      await this.deleteSubvolumes([tmp]);
      try {
        await this.makeLimited(tmp, spec.sizeBytes);
        await rename(tmp, this.volumePath(name));
      } catch (err) {
        await this.deleteQuietly([tmp]);
        throw this.failure(err, `creating btrfs volume ${name}`, 'check the pool and try again');
      }
    }
    // After this Create, not before it: the next spare is made while the caller goes on.
    this.spares.want(spec.sizeBytes);
    this.log.info({ volume: name, sizeBytes: spec.sizeBytes, spare: !!spare, op: 'create' }, 'volume created');
  }

  /** Resolves once no spare subvolume is being made or deleted in the background (tests, shutdown). */
  sparesIdle(): Promise<void> {
    return this.spares.idle();
  }

  /** Deletes the volume, its snapshots and its leftovers. Idempotent. Throws VOLUME_BUSY while mounted. */
  async destroy(name: string): Promise<void> {
    this.ensureUnmounted(name);
    const dir = this.snapshotDir(name);
    const snaps = (await readdir(dir).catch(() => [] as string[])).map((s) => join(dir, s));
    try {
      await this.deleteSubvolumes([...snaps, this.tempPath(name, 'new'), this.tempPath(name, 'rollback'), this.volumePath(name)]);
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      throw this.failure(err, `destroying btrfs volume ${name}`, 'check that nothing uses it and try again');
    }
    this.log.info({ volume: name, op: 'destroy' }, 'volume destroyed');
  }

  /** Volume names, sorted: one directory read, fast for thousands of volumes. */
  async list(): Promise<string[]> {
    const entries = await readdir(join(this.root, 'volumes'), { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && parse.isDatasetName(e.name))
      .map((e) => e.name)
      .sort();
  }

  async exists(name: string): Promise<boolean> {
    return isSubvolume(this.volumePath(name));
  }

  /** Bind-mounts the volume at `target`. Idempotent. Throws VOLUME_NOT_FOUND. */
  async mount(name: string, target: string, opts?: { readOnly?: boolean }): Promise<void> {
    if (!(await this.exists(name))) throw this.notFound(name);
    try {
      await common.bindMount(this.runner, this.volumePath(name), target, opts?.readOnly ?? false);
    } catch (err) {
      throw this.failure(err, `mounting btrfs volume ${name} at ${target}`, 'check the target directory and try again');
    }
  }

  /** Idempotent. Throws VOLUME_BUSY while a process uses `target`. */
  async unmount(name: string, target: string): Promise<void> {
    try {
      await common.unmountPath(this.runner, target);
    } catch (err) {
      throw this.failure(err, `unmounting btrfs volume ${name} from ${target}`, 'check what holds it and try again');
    }
  }

  /** Read-only snapshot, consistent while mounted. Throws VOLUME_NOT_FOUND, VOLUME_EXISTS. */
  async snapshot(name: string, snap: string): Promise<void> {
    if (!(await this.exists(name))) throw this.notFound(name);
    const dest = this.snapshotPath(name, snap);
    if (await lstatOrUndefined(dest)) throw this.snapshotExists(name, snap);
    try {
      await mkdir(this.snapshotDir(name), { recursive: true });
      await this.run(cmd.subvolumeSnapshot(this.volumePath(name), dest, true));
    } catch (err) {
      throw this.failure(err, `snapshotting btrfs volume ${name} as ${snap}`, 'check the pool and try again');
    }
    this.log.info({ volume: name, snapshot: snap, op: 'snapshot' }, 'snapshot taken');
  }

  /** Snapshot names, oldest first (by subvolume id); [] when there are none or the volume is unknown. */
  async listSnapshots(name: string): Promise<string[]> {
    const onDisk = await readdir(this.snapshotDir(name)).catch(() => [] as string[]);
    if (onDisk.length === 0) return [];
    // -r leaves out a receive in progress: it stays writable until it is complete.
    const out = await this.run(cmd.subvolumeList(join(this.root, 'snapshots'), true));
    return parse.snapshotsOf(parse.parseSubvolumeList(out.stdout), this.snapshotsId, name).filter((n) => onDisk.includes(n));
  }

  /** Idempotent. */
  async deleteSnapshot(name: string, snap: string): Promise<void> {
    try {
      await this.deleteSubvolumes([this.snapshotPath(name, snap)]);
    } catch (err) {
      throw this.failure(err, `deleting snapshot ${snap} of btrfs volume ${name}`, 'try again');
    }
    this.log.info({ volume: name, snapshot: snap, op: 'delete-snapshot' }, 'snapshot deleted');
  }

  /**
   * Replaces the volume by a writable snapshot of `snap` limited to `spec.sizeBytes`, or creates it.
   * Crash-safe: the new copy is complete before the old one goes, and init() puts it in place if a
   * crash came between. Throws VOLUME_BUSY, SNAPSHOT_NOT_FOUND, INVALID_OPTION.
   */
  async rollback(name: string, snap: string, spec: DatasetSpec): Promise<void> {
    this.ensureUnmounted(name);
    const source = await this.existingSnapshot(name, snap);
    this.checkSpec(spec);
    await this.fromSnapshot(source, name, spec, `rolling back btrfs volume ${name} to snapshot ${snap}`);
    this.log.info({ volume: name, snapshot: snap, op: 'rollback' }, 'volume rolled back');
  }

  /** New volume `target` from snapshot `snap` of `name`. Throws SNAPSHOT_NOT_FOUND, VOLUME_EXISTS, POOL_FULL. */
  async clone(name: string, snap: string, target: string, spec: DatasetSpec): Promise<void> {
    const source = await this.existingSnapshot(name, snap);
    if (await lstatOrUndefined(this.volumePath(target))) {
      throw new FerryError('VOLUME_EXISTS', `cannot clone snapshot ${snap} of ${name} into ${target}: ${target} exists; pick another name`);
    }
    this.checkSpec(spec);
    await this.ensureRoom();
    await this.fromSnapshot(source, target, spec, `cloning snapshot ${snap} of btrfs volume ${name} into ${target}`);
    this.log.info({ volume: target, source: name, snapshot: snap, op: 'clone' }, 'volume cloned');
  }

  /**
   * `btrfs send` of the snapshot (only the changes since `base` when given), in the ferry envelope.
   * The stream errors (SNAPSHOT_NOT_FOUND, COMMAND_FAILED) when the send fails; its trailer is written
   * only after btrfs send exited 0, so a failed send never looks complete. Destroying it kills the send.
   */
  send(name: string, snap: string, base?: string): Readable {
    const inner = new PassThrough(streamBuffers);
    const out = wrapStream(inner, { backend: 'btrfs', snapshot: snap, ...(base ? { base } : {}) });
    void (async () => {
      const source = await this.existingSnapshot(name, snap);
      const parent = base === undefined ? undefined : await this.existingSnapshot(name, base);
      if (out.destroyed) return;
      const proc = this.runner.stream(cmd.send(source, parent), { timeoutMs: STREAM_TIMEOUT_MS });
      proc.stdin.end();
      out.once('close', () => proc.kill());
      // Not piped with end: the end (and so the trailer) waits for the exit code.
      proc.stdout.pipe(inner, { end: false });
      await Promise.all([finished(proc.stdout), proc.done]);
      inner.end();
    })().catch((err: unknown) => {
      inner.destroy(this.failure(err, `sending snapshot ${snap} of btrfs volume ${name}`, 'check the snapshot and send again'));
    });
    return out;
  }

  /**
   * Stores a stream made by send() as snapshot `snap` of `name`. It is kept only when the envelope's
   * trailer checked out, btrfs receive exited 0 and the result is read-only with a received UUID;
   * otherwise all it made is deleted and `stream` is destroyed. Receives into one volume must not run
   * concurrently. Throws STREAM_CORRUPT, INVALID_REQUEST, SNAPSHOT_NOT_FOUND (no base here),
   * VOLUME_EXISTS, POOL_FULL, COMMAND_FAILED.
   */
  async receive(name: string, snap: string, stream: Readable): Promise<void> {
    try {
      await this.receiveInto(name, snap, stream);
    } catch (err) {
      stream.destroy();
      throw err;
    }
  }

  /** Referenced bytes per volume from qgroups, read after a commit so that recent writes count. */
  async usage(names?: readonly string[]): Promise<Map<string, number>> {
    if (names) return this.usageOf(names);
    const pool = this.root;
    await this.run(cmd.filesystemSync(pool));
    const [shown, subvols] = await Promise.all([this.run(cmd.qgroupShow(pool)), this.run(cmd.subvolumeList(join(pool, 'volumes')))]);
    let groups = shown;
    if (/inconsistent/i.test(groups.stderr)) {
      // The kernel says its numbers are off (quotas turned on over old data, a crash): count again.
      this.log.warn({ pool }, 'qgroup numbers inconsistent, rescanning');
      await this.run(cmd.quotaRescan(pool));
      groups = await this.run(cmd.qgroupShow(pool));
    }
    const used = parse.parseQgroupShow(groups.stdout);
    const out = new Map<string, number>();
    for (const [name, id] of parse.volumeIds(parse.parseSubvolumeList(subvols.stdout), this.volumesId)) {
      const u = used.get(id);
      if (u) out.set(name, u.referencedBytes);
    }
    return out;
  }

  /**
   * One qgroup read per named volume, without the pool-wide sync of the periodic pass (a sync costs
   * a transaction commit, ~20x a Create): the figures are as of the last commit (at most 30 s old),
   * which the next pass brings up to date. A new subvolume shows 0 until then.
   */
  private async usageOf(names: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const name of names) {
      if (!(await this.exists(name))) continue;
      const groups = [...parse.parseQgroupShow((await this.run(cmd.qgroupShowOf(this.volumePath(name)))).stdout).values()];
      // Exactly the subvolume's own group; anything else is not a figure to trust.
      if (groups.length === 1) out.set(name, groups[0].referencedBytes);
    }
    return out;
  }

  /**
   * snap: the exclusive bytes of the snapshot's qgroup (what deleting it frees), as of the last
   * transaction commit; null when the snapshot or its qgroup cannot be read.
   */
  async snapshotSize(name: string, snap: string): Promise<number | null> {
    try {
      const groups = [...parse.parseQgroupShow((await this.run(cmd.qgroupShowOf(this.snapshotPath(name, snap)))).stdout).values()];
      return groups.length === 1 ? groups[0].exclusiveBytes : null;
    } catch {
      return null;
    }
  }

  private async receiveInto(name: string, snap: string, stream: Readable): Promise<void> {
    const dir = this.snapshotDir(name);
    const dest = join(dir, snap);
    if (await this.isReadOnlySubvolume(dest)) throw this.snapshotExists(name, snap);
    const { header, body } = unwrapStream(stream);
    // Watched from the start: the body can fail (a corrupt frame) while the checks below still run.
    let proc: StreamingCommand | undefined;
    let bodyErr: unknown;
    let ended = false;
    const bodyDone = new Promise<void>((done) => {
      // stdin is closed only once the trailer checked out; on an error btrfs receive is killed
      // first, so it never sees a clean end of a cut stream.
      body.once('end', () => ((ended = true), proc?.stdin.end(), done()));
      body.once('error', (err) => ((bodyErr ??= err), proc?.kill(), done()));
      body.once('close', () => done());
    });
    const refuse = (err: FerryError): FerryError => (body.destroy(), err);
    let h: StreamHeader;
    try {
      h = await header;
    } catch (err) {
      throw refuse(this.failure(err, `reading the stream for snapshot ${snap} of ${name}`, 'send it again'));
    }
    try {
      expectStream(h, 'btrfs', snap);
    } catch (err) {
      throw refuse(err as FerryError);
    }
    if (h.base !== undefined && !(await this.isReadOnlySubvolume(join(dir, String(h.base))))) {
      const msg = `snapshot ${snap} of ${name} comes as changes since ${String(h.base)}, which this host does not have: send a full stream`;
      throw refuse(new FerryError('SNAPSHOT_NOT_FOUND', msg));
    }
    await this.deleteSubvolumes([dest]); // a writable one is what an interrupted receive left
    await mkdir(dir, { recursive: true });
    const before = new Set(await readdir(dir));

    let procErr: unknown;
    if (!bodyErr && !body.destroyed) {
      proc = this.runner.stream(cmd.receive(dir), { timeoutMs: STREAM_TIMEOUT_MS });
      body.pipe(proc.stdin, { end: false });
      await proc.done.catch((err: unknown) => (procErr = err));
    }
    if (!ended) body.destroy();
    await bodyDone;

    let verifyErr: unknown;
    if (ended && !bodyErr && !procErr) {
      try {
        const info = parse.parseSubvolumeShow((await this.run(cmd.subvolumeShow(dest))).stdout);
        if (info.readOnly && info.receivedUuid) {
          this.log.info({ volume: name, snapshot: snap, base: h.base, op: 'receive' }, 'snapshot received');
          return;
        }
        verifyErr = new Error('the result is not a read-only received snapshot');
      } catch (err) {
        verifyErr = err;
      }
    }
    const made = (await readdir(dir).catch(() => [] as string[])).filter((n) => !before.has(n));
    await this.deleteQuietly(made.map((n) => join(dir, n)));
    const what = `receiving snapshot ${snap} of btrfs volume ${name}`;
    if (bodyErr) throw this.failure(bodyErr, what, 'nothing was kept; send it again');
    if (procErr && common.isNoSpace(procErr)) throw common.poolFull('btrfs', this.pool, undefined, procErr);
    const cause = procErr ?? verifyErr;
    const code = ended && procErr ? 'COMMAND_FAILED' : 'STREAM_CORRUPT';
    throw new FerryError(code, `${what} failed: ${detail(cause)}; nothing was kept; send it again`, { cause });
  }

  /** Snapshots `source` (writable) into volume `target`, replacing it if present, through a temporary name. */
  private async fromSnapshot(source: string, target: string, spec: DatasetSpec, what: string): Promise<void> {
    const path = this.volumePath(target);
    const hadOld = await this.exists(target);
    const tmp = this.tempPath(target, hadOld ? 'rollback' : 'new');
    await this.deleteSubvolumes([tmp]);
    try {
      await this.run(cmd.subvolumeSnapshot(source, tmp, false));
      // A snapshot carries its source's limit: set the one asked for, or none.
      await this.run(cmd.qgroupLimit(spec.sizeBytes ?? 'none', tmp));
      // Only now does the old copy go; from here on a crash is finished by init().
      if (hadOld) await this.deleteSubvolumes([path]);
    } catch (err) {
      await this.deleteQuietly([tmp]);
      throw this.failure(err, what, 'the volume is unchanged; try again');
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      if (!hadOld) await this.deleteQuietly([tmp]);
      throw this.failure(err, what, hadOld ? `the new copy waits at ${tmp}; restart the agent to put it in place` : 'try again');
    }
  }

  private get root(): string {
    if (!this.pool) {
      throw new FerryError('BACKEND_UNAVAILABLE', 'the btrfs backend is not ready: init() has not run or failed; see the agent log');
    }
    return this.pool;
  }
  private volumePath(name: string): string {
    return join(this.root, 'volumes', name);
  }
  private tempPath(name: string, kind: 'new' | 'rollback'): string {
    return join(this.root, 'volumes', `.${name}.${kind}`);
  }
  private snapshotDir(name: string): string {
    return join(this.root, 'snapshots', name);
  }
  private snapshotPath(name: string, snap: string): string {
    return join(this.root, 'snapshots', name, snap);
  }

  private run(argv: readonly string[]): Promise<CommandResult> {
    return this.runner.run(argv);
  }

  /** An empty subvolume at `path` (which must not exist) under the limit `size`; a crash may leave it half-made. */
  private async makeLimited(path: string, size: SpareSize): Promise<void> {
    await this.run(cmd.subvolumeCreate(path));
    if (size !== undefined) await this.run(cmd.qgroupLimit(size, path));
  }

  /** One spare for the pool: made and limited under a temporary name, then renamed to its spare name. */
  private async makeSpare(size: SpareSize): Promise<string> {
    const n = `${this.spareTag}-${++this.spareSeq}`;
    const tmp = join(this.root, 'spares', `.new-${n}`);
    const path = join(this.root, 'spares', `${size ?? 'none'}-${n}`);
    try {
      await this.makeLimited(tmp, size);
      await rename(tmp, path);
      return path;
    } catch (err) {
      await this.deleteQuietly([tmp]);
      throw err;
    }
  }

  /** A spare of `size` that is still an empty subvolume (nothing but ferry touches them; this checks). */
  private async takeSpare(size: SpareSize): Promise<string | undefined> {
    const spare = await this.spares.take(size);
    if (spare === undefined) return undefined;
    if ((await isSubvolume(spare)) && (await readdir(spare)).length === 0) return spare;
    this.log.warn({ path: spare }, 'a spare subvolume was changed by something else; not using it');
    await this.deleteQuietly([spare]);
    return undefined;
  }

  /** A pool directory that must already be on btrfs. */
  private async givenPool(path: string): Promise<string> {
    const unusable = (why: string, cause?: unknown): FerryError => {
      const next = 'mount a btrfs filesystem there, or unset it to let ferry make a pool file';
      return new FerryError('BACKEND_UNAVAILABLE', `btrfs pool path ${path} ${why}: ${next}`, { cause });
    };
    const real = await realpath(path).catch((err: unknown) => Promise.reject(unusable('does not exist', err)));
    const type = (await statfs(real)).type;
    if (type !== BTRFS_SUPER_MAGIC) throw unusable(`is not on btrfs (filesystem type 0x${type.toString(16)})`);
    return real;
  }

  /** The pool file, made sparse and formatted when missing, loop-mounted at poolMount. */
  private async loopPool(): Promise<string> {
    const file = resolve(this.opts.poolFile);
    try {
      await mkdir(dirname(file), { recursive: true });
      await mkdir(this.opts.poolMount, { recursive: true });
      if (!(await lstatOrUndefined(file))) {
        // Formatted under a temporary name: a crash never leaves a half-made pool file.
        const tmp = `${file}.mkfs-tmp`;
        await rm(tmp, { force: true });
        await this.run(cmd.truncateFile(tmp, this.opts.poolSizeBytes));
        await this.run(cmd.mkfs(tmp));
        await rename(tmp, file);
        this.log.info({ poolFile: file, sizeBytes: this.opts.poolSizeBytes }, 'btrfs pool file made');
      }
      const mnt = await realpath(this.opts.poolMount);
      if (!isMountPoint(mnt)) await common.loopMount(this.runner, file, mnt, 'btrfs');
      if ((await statfs(mnt)).type !== BTRFS_SUPER_MAGIC) throw new Error(`something other than btrfs is mounted at ${mnt}`);
      return mnt;
    } catch (err) {
      const msg =
        `cannot make or mount the btrfs pool file ${file} at ${this.opts.poolMount}: ${detail(err)}; ` +
        'check free space and loop devices, or set a btrfs pool path';
      throw new FerryError('BACKEND_UNAVAILABLE', msg, { cause: err });
    }
  }

  private async ensureSubvolumeDir(path: string): Promise<void> {
    const st = await lstatOrUndefined(path);
    if (st?.isDirectory() && st.ino === SUBVOLUME_ROOT_INO) return;
    if (st?.isDirectory() && (await readdir(path)).length === 0) await rmdir(path);
    else if (st) throw new FerryError('BACKEND_UNAVAILABLE', `${path} is in ferry's way and is not a btrfs subvolume: move it elsewhere`);
    await this.run(cmd.subvolumeCreate(path));
  }

  /** Finishes rollbacks a crash cut short; removes half-made volumes, partial receives and all spares. */
  private async recoverInterrupted(): Promise<void> {
    // Spares are cheap to make again; a fresh start trusts none (spares.ts makes them as Creates come).
    const spares = join(this.pool, 'spares');
    const leftSpares = (await readdir(spares)).map((e) => join(spares, e));
    if (leftSpares.length > 0) await this.deleteQuietly(leftSpares);
    const volumes = join(this.pool, 'volumes');
    for (const entry of await readdir(volumes)) {
      const [, name, kind] = TEMP_NAME.exec(entry) ?? [];
      if (!name) continue;
      if (kind === 'rollback' && parse.isDatasetName(name) && !(await lstatOrUndefined(this.volumePath(name)))) {
        await rename(join(volumes, entry), this.volumePath(name));
        this.log.warn({ volume: name }, 'finished a rollback interrupted by a crash');
      } else {
        await this.deleteQuietly([join(volumes, entry)]);
        this.log.warn({ volume: name, path: entry }, 'removed a temporary subvolume left by a crash');
      }
    }
    const snapshots = join(this.pool, 'snapshots');
    const [all, readOnly] = await Promise.all([this.run(cmd.subvolumeList(snapshots)), this.run(cmd.subvolumeList(snapshots, true))]);
    const complete = new Set(parse.parseSubvolumeList(readOnly.stdout).map((e) => e.id));
    for (const s of parse.snapshotEntries(parse.parseSubvolumeList(all.stdout), this.snapshotsId)) {
      if (complete.has(s.id)) continue;
      await this.deleteQuietly([this.snapshotPath(s.volume, s.snapshot)]);
      this.log.warn({ volume: s.volume, snapshot: s.snapshot }, 'removed a partial receive left by a crash');
    }
  }

  private async isReadOnlySubvolume(path: string): Promise<boolean> {
    if (!(await isSubvolume(path))) return false;
    return parse.parseSubvolumeShow((await this.run(cmd.subvolumeShow(path))).stdout).readOnly;
  }

  private async existingSnapshot(name: string, snap: string): Promise<string> {
    const path = this.snapshotPath(name, snap);
    if (await isSubvolume(path)) return path;
    const msg = `snapshot ${snap} of btrfs volume ${name} does not exist: list the volume's snapshots and pick one`;
    throw new FerryError('SNAPSHOT_NOT_FOUND', msg);
  }

  /** Deletes those of `paths` that are subvolumes, in one command. */
  private async deleteSubvolumes(paths: readonly string[]): Promise<void> {
    const there: string[] = [];
    for (const p of paths) if (await isSubvolume(p)) there.push(p);
    if (there.length > 0) await this.run(cmd.subvolumeDelete(there));
  }

  private async deleteQuietly(paths: readonly string[]): Promise<void> {
    await this.deleteSubvolumes(paths).catch((err: unknown) => this.log.warn({ err, paths }, 'cannot delete subvolumes'));
  }

  /**
   * VOLUME_BUSY when the volume is reachable through any mount: the kernel deletes a bind-mounted
   * subvolume without complaint, so the mount table is the only guard.
   */
  private ensureUnmounted(name: string): void {
    const table = readMountTable();
    const pool = parse.poolMountOf(table, this.root);
    if (!pool) throw new FerryError('BACKEND_UNAVAILABLE', `the btrfs pool at ${this.root} is not mounted: restart the agent`);
    const path = this.volumePath(name);
    const inside = table.filter((e) => e.mountPoint === path || e.mountPoint.startsWith(`${path}/`)).map((e) => e.mountPoint);
    common.ensureNotMounted(name, [...parse.mountsOf(table, pool, posix.join(pool.root, 'volumes', name)), ...inside][0]);
  }

  /** POOL_FULL below MIN_FREE_BYTES, judged after a commit: btrfs gives deleted space back only then. */
  private async ensureRoom(): Promise<void> {
    try {
      await common.ensurePoolHasRoom('btrfs', this.root);
    } catch (err) {
      if (!isFerryError(err, 'POOL_FULL')) throw this.failure(err, 'checking free space', 'check the pool');
      await this.run(cmd.filesystemSync(this.root));
      await common.ensurePoolHasRoom('btrfs', this.root);
    }
  }

  private checkSpec(spec: DatasetSpec): void {
    const size = spec.sizeBytes;
    const min = this.sizeRules.minBytes(spec);
    if (size !== undefined && (!Number.isSafeInteger(size) || size < min)) {
      const msg = `size ${String(size)} does not fit a btrfs volume: give a whole number of bytes, at least ${min}`;
      throw new FerryError('INVALID_OPTION', msg);
    }
  }

  private failure(err: unknown, what: string, next: string): FerryError {
    if (err instanceof FerryError && !(err instanceof CommandFailedError)) return err;
    if (common.isNoSpace(err)) return common.poolFull('btrfs', this.pool, undefined, err);
    const code = err instanceof CommandFailedError ? 'COMMAND_FAILED' : 'INTERNAL';
    return new FerryError(code, `${what} failed: ${detail(err)}; ${next}`, { cause: err });
  }

  private notFound(name: string): FerryError {
    return new FerryError('VOLUME_NOT_FOUND', `btrfs volume ${name} does not exist in the pool at ${this.pool}: create it first`);
  }

  private snapshotExists(name: string, snap: string): FerryError {
    return new FerryError('VOLUME_EXISTS', `snapshot ${snap} of btrfs volume ${name} already exists: pick another name or delete it first`);
  }
}
