import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { FerryError, isFerryError } from '../../../errors';
import { CommandFailedError, type CommandResult, type RunOptions, type Runner } from '../../../exec/runner';
import type { Logger } from '../../../log';
import { streamBuffers } from '../../../stream/buffer-size';
import { isMountPoint, readMountTable, type MountEntry } from '../../mount-table';
import type { Backend, CloneCapable, DatasetSpec, PoolCapacity, SizeRules, SnapshotCapable, StreamCapable, UsageCapable } from '../backend';
import * as common from '../common';
import { expectStream, unwrapStream, wrapStream } from '../stream-envelope';
import * as cmd from './commands';
import { zfsSizeRules } from './descriptor';
import * as parse from './parse';

/** Send and receive carry whole volumes, longer than the runner's 10-minute default; stalls are the transfer layer's to catch. */
const STREAM_TIMEOUT_MS = 24 * 60 * 60 * 1000;
/** "dataset is busy" right after an unmount (zfs-fuse, ~0.1 s): retried after these waits, then given up. */
const BUSY_RETRY_MS = [50, 100, 200, 400, 800, 1600];
/** ZFS snapshot names: ferry's stored names (snapshot-names.ts) are a subset. */
const SNAPSHOT_NAME = /^[A-Za-z0-9_.:-]+$/;
/** Filesystem types a ZFS dataset is mounted as: the kernel module's, and zfs-fuse's. */
const ZFS_FS_TYPES = new Set(['zfs', 'fuse.zfs']);

/** Where the pool is: an existing imported pool (`pool`), else ferry's own on a sparse file. */
export interface ZfsOptions {
  pool?: string;
  poolName: string;
  poolFile: string;
  /** Size of the sparse pool file ferry makes, in bytes. */
  poolSizeBytes: number;
  workDir: string;
  /** Waits between tries of a command zfs calls busy (default BUSY_RETRY_MS; unit tests shorten them). */
  busyRetryMs?: readonly number[];
}

function detail(err: unknown): string {
  if (err instanceof CommandFailedError) return err.stderrTail || `${err.argv.slice(0, 3).join(' ')} exited with ${err.exitCode}`;
  return err instanceof Error ? err.message : String(err);
}

function stderrOf(err: unknown): string {
  return err instanceof CommandFailedError ? err.stderrTail : '';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True while process `pid` runs on this host (EPERM: it runs, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Volume `name` is the filesystem `<pool>/ferry/<name>`, owned when its user property
 * `ferry:volume` says `name`, limited by `refquota`; its snapshot `snap` is `<pool>/ferry/<name>@<snap>`.
 * Volumes are `canmount=noauto`: nothing mounts them but ferry, which points `mountpoint` at the
 * target and runs `zfs mount`. Works on OpenZFS 2.x and on zfs-fuse 0.7 (commands.ts keeps to what
 * both have).
 */
export class ZfsBackend implements Backend, SnapshotCapable, CloneCapable, StreamCapable, UsageCapable {
  readonly kind = 'zfs' as const;
  readonly sizeRules: SizeRules = zfsSizeRules;
  private pool = '';
  /** Ferry's own pool, not made yet: init() found no file, the first Create makes it. */
  private pendingPool?: string;
  private making?: Promise<void>;
  /** Unique to this process: names of its scratch snapshots and spool files. */
  private readonly tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  private seq = 0;

  constructor(
    private readonly opts: ZfsOptions,
    private readonly runner: Runner,
    private readonly log: Logger,
  ) {}

  /**
   * Finds the pool (a configured one must be imported; ferry's own is imported from its file when
   * the file is there, and otherwise made at the first Create, so a host that never makes a zfs
   * volume gets no pool), makes `<pool>/ferry`, and removes what a crash left (temporary clones,
   * scratch snapshots, spool files). Idempotent. Throws BACKEND_UNAVAILABLE.
   */
  async init(): Promise<void> {
    let pools: parse.PoolRow[];
    try {
      pools = parse.parsePoolList((await this.run(cmd.poolList())).stdout);
    } catch (err) {
      const msg = `zfs does not answer (zpool list: ${detail(err)}): install zfs (OpenZFS, or zfs-fuse and scripts/start-zfs-fuse.sh) and restart the agent`;
      throw new FerryError('BACKEND_UNAVAILABLE', msg, { cause: err });
    }
    const pool = this.opts.pool ?? this.opts.poolName;
    const row = pools.find((p) => p.name === pool);
    if (!row && this.opts.pool) {
      throw new FerryError('BACKEND_UNAVAILABLE', `zfs pool ${pool} is not imported on this host: import it (zpool import ${pool}) or unset zfs.pool to let ferry make its own`);
    }
    if (row && !this.opts.pool) await this.ensureOwnFile(pool);
    if (!row && !statSync(this.poolFile, { throwIfNoEntry: false })) {
      // Its directory now: capacity() reads the free space there until the pool is made.
      await mkdir(dirname(this.poolFile), { recursive: true });
      this.pendingPool = pool;
      this.log.info({ pool, poolFile: this.poolFile }, 'zfs pool to be made at the first Create');
      return;
    }
    if (!row) await this.ownPool(pool, false);
    await this.prepare(pool);
  }

  /** Pool `pool` is ready: its health is usable, `<pool>/ferry` exists, leftovers are gone. */
  private async prepare(pool: string): Promise<void> {
    const row = parse.parsePoolList((await this.run(cmd.poolList())).stdout).find((p) => p.name === pool);
    if (!row || row.health === 'FAULTED' || row.health === 'UNAVAIL') {
      throw new FerryError('BACKEND_UNAVAILABLE', `zfs pool ${pool} is ${row?.health ?? 'missing'}: see zpool status ${pool}`);
    }
    try {
      const root = `${pool}/ferry`;
      if (!(await this.present(root))) await this.run(cmd.create(root, { mountpoint: 'none', canmount: 'off' }));
      this.pool = pool;
      this.pendingPool = undefined;
      await mkdir(this.opts.workDir, { recursive: true });
      await this.recoverInterrupted();
    } catch (err) {
      this.pool = '';
      throw new FerryError('BACKEND_UNAVAILABLE', `cannot prepare zfs pool ${pool}: ${detail(err)}; check zpool status ${pool} and restart the agent`, { cause: err });
    }
    this.log.info({ pool, health: row.health }, 'zfs pool ready');
  }

  /** Makes ferry's own pool now if init() left it for the first Create (once, however many ask). */
  private async ensurePool(): Promise<void> {
    const pool = this.pendingPool;
    if (pool === undefined) return;
    this.making ??= (async () => {
      await this.ownPool(pool, true);
      this.pendingPool = undefined;
      await this.prepare(pool);
    })().finally(() => (this.making = undefined));
    await this.making;
  }

  /**
   * Refuses a pool of ferry's own name that lives on another file: pool names are global to a
   * host, and another agent's pool must never be taken for this one's.
   */
  private async ensureOwnFile(pool: string): Promise<void> {
    const files = parse.parseStatusPaths((await this.run(cmd.poolStatus(pool))).stdout);
    if (files.includes(this.poolFile)) return;
    const msg = `zfs pool ${pool} on this host is on ${files.join(', ') || 'something else'}, not on ferry's pool file ${this.poolFile}: set zfs.poolName to another name, or zfs.pool to use that pool`;
    throw new FerryError('BACKEND_UNAVAILABLE', msg);
  }

  /** Pool size and free space in bytes (the pool's root filesystem: used + available, available), and its health. */
  async capacity(): Promise<PoolCapacity> {
    if (this.pendingPool !== undefined) {
      // Not made yet: what it will hold, as far as the disk under its file allows.
      const disk = await common.filesystemCapacity(dirname(this.poolFile));
      return { totalBytes: this.opts.poolSizeBytes, freeBytes: Math.min(this.opts.poolSizeBytes, disk.freeBytes) };
    }
    const rows = parse.parseGet((await this.run(cmd.get(['used', 'available'], [this.root]))).stdout);
    const used = parse.bytesOf(rows, this.root, 'used') ?? 0;
    const free = parse.bytesOf(rows, this.root, 'available') ?? 0;
    const health = parse.parsePoolList((await this.run(cmd.poolList())).stdout).find((p) => p.name === this.pool)?.health;
    return { totalBytes: used + free, freeBytes: free, ...(health ? { health } : {}) };
  }

  /** Idempotent; one `zfs create` with every property, so nothing is left on failure. Throws POOL_FULL, INVALID_OPTION, VOLUME_EXISTS. */
  async create(name: string, spec: DatasetSpec): Promise<void> {
    if (await this.exists(name)) return;
    this.checkSpec(spec);
    await this.ensurePool();
    if (await this.present(this.ds(name))) {
      throw new FerryError('VOLUME_EXISTS', `zfs dataset ${this.ds(name)} exists but is not ferry's volume ${name}: rename or destroy it`);
    }
    await this.ensureRoom();
    try {
      await this.run(cmd.create(this.ds(name), this.volumeProps(name, spec)));
    } catch (err) {
      throw this.failure(err, `creating zfs volume ${name}`, 'check the pool and try again');
    }
    this.log.info({ volume: name, sizeBytes: spec.sizeBytes, op: 'create' }, 'volume created');
  }

  /**
   * Destroys the volume and its snapshots. Idempotent. Throws VOLUME_BUSY while mounted. A clone made
   * from one of its snapshots is promoted first, and the snapshots it thereby took over are deleted.
   */
  async destroy(name: string): Promise<void> {
    this.ensureUnmounted(name);
    const ds = this.ds(name);
    if (!(await this.present(ds))) return;
    try {
      const taken = await this.freeClones(ds);
      await this.retryBusy(cmd.destroy(ds, true), { volume: name });
      for (const s of taken) await this.retryBusy(cmd.destroy(s, false), { volume: name }).catch((err: unknown) => this.log.warn({ err, snapshot: s }, 'cannot delete a snapshot a promoted clone took over'));
    } catch (err) {
      throw this.failure(err, `destroying zfs volume ${name}`, 'check that nothing uses it and try again');
    }
    this.log.info({ volume: name, op: 'destroy' }, 'volume destroyed');
  }

  /** Volume names, sorted: the children of `<pool>/ferry` that ferry owns. */
  async list(): Promise<string[]> {
    if (this.pendingPool !== undefined) return [];
    const out = await this.run(cmd.get([cmd.OWNER_PROPERTY], [this.root], 1));
    return parse.volumesOf(parse.parseGet(out.stdout), this.root, cmd.OWNER_PROPERTY);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.ownerOf(this.ds(name))) === name;
  }

  /**
   * Points the dataset's mountpoint at `target` and mounts it. Idempotent. A mount left by a
   * zfs-fuse that is gone is detached first. Throws VOLUME_NOT_FOUND, VOLUME_BUSY (mounted elsewhere).
   */
  async mount(name: string, target: string, opts?: { readOnly?: boolean }): Promise<void> {
    if (!(await this.exists(name))) throw this.notFound(name);
    const ds = this.ds(name);
    const path = resolve(target);
    try {
      await mkdir(path, { recursive: true });
      await this.detachDead(path);
      const table = readMountTable();
      const here = table.find((e) => e.mountPoint === path);
      if (here && this.isDatasetMount(here, ds)) return;
      if (here) throw new FerryError('VOLUME_BUSY', `cannot mount zfs volume ${name} at ${path}: ${here.source} is mounted there; unmount it first`);
      const elsewhere = this.mountsOf(ds, table)[0];
      if (elsewhere) throw new FerryError('VOLUME_BUSY', `zfs volume ${name} is mounted at ${elsewhere}: unmount it first`);
      await this.run(cmd.set(ds, 'mountpoint', path));
      await this.retryBusy(cmd.mount(ds, opts?.readOnly ?? false), { volume: name });
    } catch (err) {
      throw this.failure(err, `mounting zfs volume ${name} at ${path}`, 'check the target directory and try again');
    }
  }

  /** Idempotent. Throws VOLUME_BUSY while a process uses `target`. A mount whose zfs-fuse is gone is detached lazily. */
  async unmount(name: string, target: string): Promise<void> {
    const path = resolve(target);
    try {
      if (await this.detachDead(path)) return;
      const here = readMountTable().find((e) => e.mountPoint === path);
      if (!here) return;
      if (!this.isDatasetMount(here, this.ds(name))) return await common.unmountPath(this.runner, path);
      try {
        await this.run(cmd.unmount(this.ds(name)));
      } catch (err) {
        if (parse.isBusy(stderrOf(err))) throw new FerryError('VOLUME_BUSY', `${path} is busy: a process still uses it; stop it and try again`, { cause: err });
        throw err;
      }
    } catch (err) {
      throw this.failure(err, `unmounting zfs volume ${name} from ${path}`, 'check what holds it and try again');
    }
  }

  /** Native snapshot, consistent while mounted. Throws VOLUME_NOT_FOUND, VOLUME_EXISTS, INVALID_NAME. */
  async snapshot(name: string, snap: string): Promise<void> {
    if (!SNAPSHOT_NAME.test(snap)) throw new FerryError('INVALID_NAME', `${snap} is not a ZFS snapshot name: use letters, digits and _.:-`);
    if (!(await this.exists(name))) throw this.notFound(name);
    if (await this.present(this.snapName(name, snap))) throw this.snapshotExists(name, snap);
    try {
      await this.run(cmd.snapshot(this.ds(name), snap));
    } catch (err) {
      throw this.failure(err, `snapshotting zfs volume ${name} as ${snap}`, 'check the pool and try again');
    }
    this.log.info({ volume: name, snapshot: snap, op: 'snapshot' }, 'snapshot taken');
  }

  /** Snapshot names, oldest first; [] when there are none or the volume is unknown. */
  async listSnapshots(name: string): Promise<string[]> {
    if (this.pendingPool !== undefined) return [];
    const ds = this.ds(name);
    try {
      return parse.parseSnapshotList((await this.run(cmd.listSnapshots(ds))).stdout, ds);
    } catch (err) {
      if (parse.isNotFound(stderrOf(err))) return [];
      throw this.failure(err, `listing snapshots of zfs volume ${name}`, 'check the pool');
    }
  }

  /** Idempotent. Busy (a send still reading it, a fresh unmount) is retried for a while. */
  async deleteSnapshot(name: string, snap: string): Promise<void> {
    const full = this.snapName(name, snap);
    if (!(await this.present(full))) return;
    try {
      await this.retryBusy(cmd.destroy(full, false), { volume: name, snapshot: snap });
    } catch (err) {
      if (!parse.isBusy(stderrOf(err)) || !(await this.releaseSendHolds(full))) throw this.failure(err, `deleting snapshot ${snap} of zfs volume ${name}`, 'try again');
      await this.run(cmd.destroy(full, false)).catch((again: unknown) => Promise.reject(this.failure(again, `deleting snapshot ${snap} of zfs volume ${name}`, 'try again')));
    }
    this.log.info({ volume: name, snapshot: snap, op: 'delete-snapshot' }, 'snapshot deleted');
  }

  /**
   * Makes the volume's contents those of `snap` and sets its limit to `spec.sizeBytes`. The newest
   * snapshot: `zfs rollback`, instant. An older one: ZFS could only get there by destroying the
   * newer snapshots, which ferry keeps, so the snapshot's tree is copied over the live one (rsync
   * from a temporary clone): costs time and writes in proportion to the data. Throws VOLUME_BUSY,
   * SNAPSHOT_NOT_FOUND, INVALID_OPTION.
   */
  async rollback(name: string, snap: string, spec: DatasetSpec): Promise<void> {
    this.ensureUnmounted(name);
    this.checkSpec(spec);
    const snaps = await this.listSnapshots(name);
    if (!snaps.includes(snap)) throw this.snapshotNotFound(name, snap);
    const ds = this.ds(name);
    const what = `rolling back zfs volume ${name} to snapshot ${snap}`;
    try {
      if (snaps[snaps.length - 1] === snap) await this.retryBusy(cmd.rollback(ds, snap), { volume: name, snapshot: snap });
      else await this.copyBack(name, snap);
      await this.run(cmd.set(ds, 'refquota', spec.sizeBytes === undefined ? 'none' : String(spec.sizeBytes)));
    } catch (err) {
      throw this.failure(err, what, 'try again');
    }
    this.log.info({ volume: name, snapshot: snap, op: 'rollback' }, 'volume rolled back');
  }

  /** snap: ZFS's `used` of the snapshot (bytes only it holds); null when it cannot be read. */
  async snapshotSize(name: string, snap: string): Promise<number | null> {
    try {
      const row = parse.parseGet((await this.run(cmd.get(['used'], [this.snapName(name, snap)]))).stdout).find((r) => r.property === 'used');
      const n = row ? Number(row.value) : NaN;
      return Number.isSafeInteger(n) && n >= 0 ? n : null;
    } catch {
      return null;
    }
  }

  /** `zfs clone` of the snapshot: instant, shares blocks. Throws SNAPSHOT_NOT_FOUND, VOLUME_EXISTS, POOL_FULL. */
  async clone(name: string, snap: string, target: string, spec: DatasetSpec): Promise<void> {
    if (!(await this.present(this.snapName(name, snap)))) throw this.snapshotNotFound(name, snap);
    if (await this.present(this.ds(target))) {
      throw new FerryError('VOLUME_EXISTS', `cannot clone snapshot ${snap} of ${name} into ${target}: ${target} exists; pick another name`);
    }
    this.checkSpec(spec);
    await this.ensureRoom();
    try {
      await this.run(cmd.clone(this.snapName(name, snap), this.ds(target), this.volumeProps(target, spec)));
    } catch (err) {
      throw this.failure(err, `cloning snapshot ${snap} of zfs volume ${name} into ${target}`, 'try again');
    }
    this.log.info({ volume: target, source: name, snapshot: snap, op: 'clone' }, 'volume cloned');
  }

  /**
   * `zfs send` (`-i base` for the changes since `base`) in the ferry envelope. The trailer is written
   * only after zfs send exited 0; destroying the stream kills the send.
   */
  send(name: string, snap: string, base?: string): Readable {
    const inner = new PassThrough(streamBuffers);
    const out = wrapStream(inner, { backend: 'zfs', snapshot: snap, ...(base ? { base } : {}) });
    void (async () => {
      if (!(await this.present(this.snapName(name, snap)))) throw this.snapshotNotFound(name, snap);
      if (base !== undefined && !(await this.present(this.snapName(name, base)))) throw this.snapshotNotFound(name, base);
      if (out.destroyed) return;
      const proc = this.runner.stream(cmd.send(this.ds(name), snap, base), { timeoutMs: STREAM_TIMEOUT_MS });
      proc.stdin.end();
      out.once('close', () => proc.kill());
      proc.stdout.pipe(inner, { end: false });
      await Promise.all([finished(proc.stdout), proc.done]);
      inner.end();
    })().catch((err: unknown) => {
      inner.destroy(this.failure(err, `sending snapshot ${snap} of zfs volume ${name}`, 'check the snapshot and send again'));
    });
    return out;
  }

  /**
   * Stores a stream made by send() as snapshot `snap` of `name`. The stream is first written whole
   * to the work dir and its trailer checked; only then does `zfs receive` read it. So zfs never sees
   * a cut or damaged stream (zfs-fuse's daemon dies of some). On any failure nothing of `snap` (and
   * no volume a full stream would have made) is kept, and `stream` is destroyed. Throws
   * STREAM_CORRUPT, INVALID_REQUEST, SNAPSHOT_NOT_FOUND (no base here), VOLUME_EXISTS, VOLUME_BUSY,
   * POOL_FULL, COMMAND_FAILED.
   */
  async receive(name: string, snap: string, stream: Readable): Promise<void> {
    const file = join(this.opts.workDir, `${name}@${snap}.${this.tag}-${++this.seq}.zstream`);
    // Unwrapped before anything is awaited: a stream that errors meanwhile must have a listener.
    const unwrapped = unwrapStream(stream);
    try {
      await this.ensurePool();
      const base = await this.spool(name, snap, unwrapped, file);
      await this.receiveFile(name, snap, base, file);
    } catch (err) {
      stream.destroy();
      throw err;
    } finally {
      await rm(file, { force: true });
    }
    this.log.info({ volume: name, snapshot: snap, op: 'receive' }, 'snapshot received');
  }

  /**
   * Referenced bytes per volume (what its refquota limits). The periodic pass (no `names`) reads after
   * a transaction group is committed; a read of named volumes (a Create, an Unmount) skips that
   * commit, which costs a snapshot, and takes the figures as of the last one.
   */
  async usage(names?: readonly string[]): Promise<Map<string, number>> {
    if (this.pendingPool !== undefined) return new Map();
    if (!names) await this.syncTxg();
    const held = await this.list();
    const wanted = names ? held.filter((n) => names.includes(n)) : held;
    const rows = parse.parseGet((await this.run(cmd.get(['referenced'], [this.root], 1))).stdout);
    return parse.bytesByVolume(rows, this.root, 'referenced', wanted);
  }

  /** Checks the stream's header and writes its body to `file`; resolves with its base once the trailer checked out. */
  private async spool(name: string, snap: string, unwrapped: ReturnType<typeof unwrapStream>, file: string): Promise<string | undefined> {
    const { header, body } = unwrapped;
    // Watched from the start: the body can fail (a corrupt frame) while the checks below still run.
    let bodyErr: unknown;
    body.on('error', (err) => (bodyErr ??= err));
    header.catch(() => undefined);
    const refuse = (err: FerryError): FerryError => (body.destroy(), err);
    if (await this.present(this.snapName(name, snap))) throw refuse(this.snapshotExists(name, snap));
    let h;
    try {
      h = await header;
    } catch (err) {
      throw refuse(this.failure(err, `reading the stream for snapshot ${snap} of ${name}`, 'send it again'));
    }
    try {
      expectStream(h, 'zfs', snap);
    } catch (err) {
      throw refuse(err as FerryError);
    }
    const base = h.base === undefined ? undefined : String(h.base);
    if (base !== undefined && !(await this.present(this.snapName(name, base)))) {
      throw refuse(new FerryError('SNAPSHOT_NOT_FOUND', `snapshot ${snap} of ${name} comes as changes since ${base}, which this host does not have: send a full stream`));
    }
    if (await this.present(this.ds(name))) this.ensureUnmounted(name);
    try {
      await mkdir(dirname(file), { recursive: true });
      if (bodyErr !== undefined || body.destroyed) throw bodyErr ?? new Error('the stream was closed');
      await pipeline(body, createWriteStream(file));
    } catch (err) {
      if (common.isNoSpace(err)) throw new FerryError('POOL_FULL', `no room in ${this.opts.workDir} for the stream of ${name}@${snap}: free space there or set zfs.workDir`, { cause: err });
      throw this.failure(err, `receiving snapshot ${snap} of zfs volume ${name}`, 'nothing was kept; send it again');
    }
    return base;
  }

  /** `zfs receive` from a checked spool file; undoes what it made on failure. */
  private async receiveFile(name: string, snap: string, base: string | undefined, file: string): Promise<void> {
    const ds = this.ds(name);
    const existed = await this.present(ds);
    if (base === undefined && existed) {
      // A full stream makes the filesystem: an empty volume here (no snapshots) gives way, one with snapshots does not.
      if ((await this.listSnapshots(name)).length > 0) {
        throw new FerryError('VOLUME_EXISTS', `a full stream of ${name}@${snap} would replace zfs volume ${name}, which holds snapshots here: destroy this copy first`);
      }
      await this.retryBusy(cmd.destroy(ds, true), { volume: name });
    }
    try {
      const proc = this.runner.stream(cmd.receive(ds, snap, base !== undefined), { timeoutMs: STREAM_TIMEOUT_MS });
      const [fed, done] = await Promise.allSettled([pipeline(createReadStream(file), proc.stdin), proc.done]);
      // zfs's own word first: a refused stream makes it stop reading, and the feed then fails with EPIPE.
      if (done.status === 'rejected') throw done.reason;
      if (fed.status === 'rejected') throw fed.reason;
      if (base === undefined) {
        await this.run(cmd.set(ds, 'canmount', 'noauto'));
        await this.run(cmd.set(ds, cmd.OWNER_PROPERTY, name));
      }
    } catch (err) {
      if (base === undefined) await this.quietly(cmd.destroy(ds, true));
      else if (await this.present(this.snapName(name, snap))) await this.quietly(cmd.destroy(this.snapName(name, snap), false));
      throw this.failure(err, `receiving snapshot ${snap} of zfs volume ${name}`, 'nothing was kept; send it again');
    }
  }

  /** The live tree of `name` made equal to snapshot `snap` through a temporary read-only clone. */
  private async copyBack(name: string, snap: string): Promise<void> {
    const ds = this.ds(name);
    const tmp = this.tempName(name);
    const from = join(this.opts.workDir, `.from-${name}`);
    const to = join(this.opts.workDir, `.to-${name}`);
    await this.destroyTemp(tmp);
    await mkdir(from, { recursive: true });
    await mkdir(to, { recursive: true });
    try {
      await this.run(cmd.clone(this.snapName(name, snap), tmp, { canmount: 'noauto', mountpoint: 'none' }));
      await this.run(cmd.set(tmp, 'mountpoint', from));
      // Some zfs mount a clone as soon as it has a mountpoint, whatever canmount says.
      if (this.mountsOf(tmp).length === 0) await this.run(cmd.mount(tmp, true));
      await this.run(cmd.set(ds, 'mountpoint', to));
      await this.run(cmd.mount(ds, false));
      await this.run(cmd.copyTree(from, to), { timeoutMs: STREAM_TIMEOUT_MS });
    } finally {
      if (this.mountsOf(ds).length > 0) await this.retryBusy(cmd.unmount(ds), { volume: name });
      await this.destroyTemp(tmp);
      await rm(from, { recursive: true, force: true });
      await rm(to, { recursive: true, force: true });
    }
  }

  /**
   * Promotes every clone of one of `ds`'s snapshots (other volumes), so that `ds` can go; returns the
   * snapshots the clones took over from `ds`, to delete once `ds` is gone.
   */
  private async freeClones(ds: string): Promise<string[]> {
    const rows = parse.parseGet((await this.run(cmd.get(['origin'], [this.root], 1))).stdout);
    const clones = rows.filter((r) => r.property === 'origin' && r.value.startsWith(`${ds}@`)).map((r) => r.name);
    const taken: string[] = [];
    for (const c of clones) {
      const leaf = c.slice(this.root.length + 1);
      const before = new Set(await this.listSnapshots(leaf));
      await this.run(cmd.promote(c));
      for (const s of await this.listSnapshots(leaf)) if (!before.has(s)) taken.push(`${c}@${s}`);
      this.log.info({ clone: c, origin: ds }, 'promoted a clone of a volume being destroyed');
    }
    // Newest first: each older one may be the origin of nothing once the newer are gone.
    return taken.reverse();
  }

  /** Makes ferry's own pool on its file (`make`), or imports it from the file. */
  private async ownPool(pool: string, make: boolean): Promise<void> {
    const file = this.poolFile;
    try {
      await mkdir(dirname(file), { recursive: true });
      if (!make) {
        await this.run(cmd.poolImport(pool, dirname(file)));
        this.log.info({ pool, poolFile: file }, 'zfs pool imported');
        return;
      }
      await this.run(cmd.truncateFile(file, this.opts.poolSizeBytes));
      try {
        await this.run(cmd.poolCreate(pool, file));
      } catch (err) {
        await rm(file, { force: true });
        throw err;
      }
      this.log.info({ pool, poolFile: file, sizeBytes: this.opts.poolSizeBytes }, 'zfs pool made');
    } catch (err) {
      const msg = `cannot ${make ? 'make' : 'import'} zfs pool ${pool} on ${file}: ${detail(err)}; check free space there, or set zfs.pool to an existing pool`;
      throw new FerryError('BACKEND_UNAVAILABLE', msg, { cause: err });
    }
  }

  private get poolFile(): string {
    return resolve(this.opts.poolFile);
  }

  /** Removes temporary clones, scratch snapshots and spool files a crash left. */
  private async recoverInterrupted(): Promise<void> {
    const rows = parse.parseGet((await this.run(cmd.get(['type'], [this.root], 1))).stdout);
    for (const r of rows) {
      const leaf = r.name.slice(this.root.length + 1);
      if (r.name.startsWith(`${this.root}/.`) && leaf.endsWith('.rollback')) {
        await this.destroyTemp(r.name);
        this.log.warn({ dataset: r.name }, 'removed a temporary clone left by a crash');
      }
    }
    for (const s of parse.parseSnapshotList((await this.run(cmd.listSnapshots(this.root))).stdout, this.root)) {
      if (s.startsWith('_ferry-sync')) await this.quietly(cmd.destroy(`${this.root}@${s}`, false));
    }
    // Only ferry's own leftovers: the work dir may be shared.
    for (const e of await readdir(this.opts.workDir)) {
      if (e.endsWith('.zstream')) await rm(join(this.opts.workDir, e), { force: true });
      else if (/^\.(from|to)-/.test(e) && !isMountPoint(join(this.opts.workDir, e))) await rmdir(join(this.opts.workDir, e)).catch(() => undefined);
    }
  }

  /**
   * Commits the open transaction group: until then zfs-fuse's `used`/`available` lag deletes and
   * writes by up to ~25 s. A snapshot forces a commit and works on every ZFS (zpool sync does not).
   */
  private async syncTxg(): Promise<void> {
    const snap = `_ferry-sync-${this.tag}-${++this.seq}`;
    await this.run(cmd.snapshot(this.root, snap));
    await this.quietly(cmd.destroy(`${this.root}@${snap}`, false));
  }

  /** POOL_FULL below MIN_FREE_BYTES available, judged again after a commit when it looks full. */
  private async ensureRoom(): Promise<void> {
    const available = async (): Promise<number> => parse.bytesOf(parse.parseGet((await this.run(cmd.get(['available'], [this.root]))).stdout), this.root, 'available') ?? 0;
    let free = await available();
    if (free >= common.MIN_FREE_BYTES) return;
    await this.syncTxg().catch((err: unknown) => this.log.debug({ err }, 'cannot force a txg commit'));
    free = await available();
    if (free < common.MIN_FREE_BYTES) throw common.poolFull('zfs', this.pool, free);
  }

  /** Runs `argv`, again after a short wait while zfs answers "busy" (zfs-fuse, just after an unmount). */
  private async retryBusy(argv: string[], fields: Record<string, unknown>): Promise<void> {
    const waits = this.opts.busyRetryMs ?? BUSY_RETRY_MS;
    for (let i = 0; ; i++) {
      try {
        await this.run(argv);
        return;
      } catch (err) {
        if (i >= waits.length || !parse.isBusy(stderrOf(err))) throw err;
        this.log.warn({ ...fields, argv, waitMs: waits[i] }, 'zfs busy, retrying');
        await sleep(waits[i]);
      }
    }
  }

  /**
   * Releases the holds an aborted send left on `snapshot` (never a running send's: its process is
   * alive on this host); true when there were any. Where zfs cannot list holds (zfs-fuse), false.
   */
  private async releaseSendHolds(snapshot: string): Promise<boolean> {
    const listed = await this.run(cmd.holds(snapshot)).catch(() => undefined);
    const tags = listed ? parse.sendHolds(listed.stdout, processAlive) : [];
    for (const tag of tags) {
      this.log.warn({ snapshot, tag }, 'releasing a hold an aborted send left');
      await this.run(cmd.release(tag, snapshot));
    }
    return tags.length > 0;
  }

  /** Detaches `path` when it is a mount whose zfs-fuse is gone; true when it was one. */
  private async detachDead(path: string): Promise<boolean> {
    try {
      statSync(path);
      return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') return false;
    }
    this.log.warn({ path }, 'mount of a zfs-fuse that is gone; detaching it');
    await this.run(cmd.lazyUnmount(path));
    return true;
  }

  private async destroyTemp(dataset: string): Promise<void> {
    if (!(await this.present(dataset))) return;
    if (this.mountsOf(dataset).length > 0) await this.retryBusy(cmd.unmount(dataset), { dataset });
    await this.retryBusy(cmd.destroy(dataset, true), { dataset });
  }

  private volumeProps(name: string, spec: DatasetSpec): Record<string, string> {
    return {
      // noauto: only ferry mounts volumes (at a pool import or a `zfs mount -a` nothing happens).
      canmount: 'noauto',
      mountpoint: 'none',
      [cmd.OWNER_PROPERTY]: name,
      ...(spec.sizeBytes === undefined ? {} : { refquota: String(spec.sizeBytes) }),
    };
  }

  /** The owner property of `dataset`, or undefined when it does not exist (`-` when unset). */
  private async ownerOf(dataset: string): Promise<string | undefined> {
    if (this.pendingPool !== undefined) return undefined;
    try {
      return parse.parseGet((await this.run(cmd.get([cmd.OWNER_PROPERTY], [dataset]))).stdout)[0]?.value;
    } catch (err) {
      if (parse.isNotFound(stderrOf(err))) return undefined;
      throw this.failure(err, `reading zfs dataset ${dataset}`, 'check the pool');
    }
  }

  private async present(dataset: string): Promise<boolean> {
    return (await this.ownerOf(dataset)) !== undefined;
  }

  private isDatasetMount(e: MountEntry, ds: string): boolean {
    return ZFS_FS_TYPES.has(e.fsType) && e.source === ds;
  }

  /** Mount points of `ds` (its own mount and any bind mount of it). */
  private mountsOf(ds: string, table: MountEntry[] = readMountTable()): string[] {
    return table.filter((e) => this.isDatasetMount(e, ds)).map((e) => e.mountPoint);
  }

  private ensureUnmounted(name: string): void {
    common.ensureNotMounted(name, this.mountsOf(this.ds(name))[0]);
  }

  private get root(): string {
    // A pool still to be made has its names already; nothing is in it.
    const pool = this.pool || this.pendingPool;
    if (!pool) throw new FerryError('BACKEND_UNAVAILABLE', 'the zfs backend is not ready: init() has not run or failed; see the agent log');
    return `${pool}/ferry`;
  }
  private ds(name: string): string {
    return `${this.root}/${name}`;
  }
  private snapName(name: string, snap: string): string {
    return `${this.ds(name)}@${snap}`;
  }
  private tempName(name: string): string {
    return `${this.root}/.${name}.rollback`;
  }

  private run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    return this.runner.run(argv, opts);
  }

  private async quietly(argv: string[]): Promise<void> {
    await this.retryBusy(argv, {}).catch((err: unknown) => this.log.warn({ err, argv }, 'zfs cleanup failed'));
  }

  private checkSpec(spec: DatasetSpec): void {
    const size = spec.sizeBytes;
    const min = this.sizeRules.minBytes(spec);
    if (size !== undefined && (!Number.isSafeInteger(size) || size < min)) {
      throw new FerryError('INVALID_OPTION', `size ${String(size)} does not fit a zfs volume: give a whole number of bytes, at least ${min}`);
    }
  }

  private failure(err: unknown, what: string, next: string): FerryError {
    if (err instanceof FerryError && !(err instanceof CommandFailedError)) return err;
    if (parse.isOutOfSpace(stderrOf(err)) || common.isNoSpace(err)) return common.poolFull('zfs', this.pool, undefined, err);
    if (isFerryError(err, 'COMMAND_FAILED') && parse.isNotFound(stderrOf(err))) {
      return new FerryError('VOLUME_NOT_FOUND', `${what} failed: ${detail(err)}; list the volumes and try again`, { cause: err });
    }
    const code = err instanceof CommandFailedError ? 'COMMAND_FAILED' : 'INTERNAL';
    return new FerryError(code, `${what} failed: ${detail(err)}; ${next}`, { cause: err });
  }

  private notFound(name: string): FerryError {
    return new FerryError('VOLUME_NOT_FOUND', `zfs volume ${name} does not exist in pool ${this.pool}: create it first`);
  }
  private snapshotNotFound(name: string, snap: string): FerryError {
    return new FerryError('SNAPSHOT_NOT_FOUND', `snapshot ${snap} of zfs volume ${name} does not exist: list the volume's snapshots and pick one`);
  }
  private snapshotExists(name: string, snap: string): FerryError {
    return new FerryError('VOLUME_EXISTS', `snapshot ${snap} of zfs volume ${name} already exists: pick another name or delete it first`);
  }
}
