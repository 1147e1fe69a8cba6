import { existsSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { FerryError, isFerryError } from '../../../errors';
import { CommandFailedError, type Runner } from '../../../exec/runner';
import type { Logger } from '../../../log';
import { KeyedLock } from '../../keyed-lock';
import { isMountPoint, readMountTable } from '../../mount-table';
import type { Backend, CloneCapable, DatasetSpec, PoolCapacity, SizeRules, SnapshotCapable, StreamCapable, UsageCapable } from '../backend';
import { MIN_FREE_BYTES, ensureNotMounted, unmountPath } from '../common';
import { applyBlockDiff, encodeBlockDiff } from '../loop/block-stream';
import { expectStream, unwrapStream, wrapStream, type StreamHeader } from '../stream-envelope';
import * as cmd from './commands';
import { LVM_FILESYSTEMS, lvmSizeRules, type LvmFilesystem } from './descriptor';
import {
  SET_ASIDE_PREFIX,
  TEMP_PREFIX,
  classify,
  lvBytes,
  parseLvReport,
  parseVgReport,
  poolFreeBytes,
  recoverTemps,
  saysPoolFull,
  snapshotLv,
  snapshotTags,
  volumeLv,
  volumeTags,
  type LvmState,
  type VgInfo,
} from './parse';

/** Where the lvm backend keeps its volumes (config section `lvm`). */
export interface LvmBackendOptions {
  /** An existing volume group: ferry never creates or removes one. */
  vg: string;
  /** The thin pool in it. */
  pool: string;
  /** When set, the pool is made with this size ("20G", "90%FREE") if it is missing. */
  createPool?: string;
}

/** ferry's volume and snapshot names as LVM takes them (a subset of `[A-Za-z0-9+_.-]`). */
const LVM_SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

function assertName(what: string, name: string): void {
  if (!LVM_SAFE_NAME.test(name)) {
    throw new FerryError('INVALID_NAME', `invalid ${what} name ${JSON.stringify(name)}: use letters, digits, "_", "." or "-"`);
  }
}

/** device-mapper's name of an LV: `VG-LV`, each `-` inside a name doubled. */
export function dmPath(vg: string, lv: string): string {
  return `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

/**
 * Each volume is a thin LV holding ext4 or xfs in a thin pool of an existing volume group; the LV
 * size is the limit (ENOSPC past it) and space comes from the pool as it is written. Snapshots are
 * thin snapshots (the origin's filesystem frozen by LVM's suspend while it is taken), clones are
 * writable thin snapshots of them, and streams carry the blocks that differ between two snapshots
 * in the loop backend's block-stream format.
 */
export class LvmBackend implements Backend, SnapshotCapable, CloneCapable, StreamCapable, UsageCapable {
  readonly kind = 'lvm' as const;
  readonly sizeRules: SizeRules = lvmSizeRules;
  private readonly lock = new KeyedLock();
  private vgInfo?: VgInfo;

  constructor(
    private readonly opts: LvmBackendOptions,
    private readonly runner: Runner,
    private readonly log: Logger,
  ) {}

  /**
   * Checks the kernel (device-mapper, thin pools), the lvm2 tools and the volume group; makes the
   * thin pool when asked to and it is missing; sets it to fail writes at once when full; removes
   * temp LVs of interrupted operations. Idempotent. Throws BACKEND_UNAVAILABLE saying what is missing.
   */
  async init(): Promise<void> {
    const { vg, pool } = this.opts;
    // lvm2 would load the modules itself; asking first gives a clear reason when there are none.
    if (!existsSync(DM_CONTROL)) await this.runner.run(cmd.loadThinPool()).catch(() => undefined);
    if (!existsSync(DM_CONTROL)) {
      throw unavailable('this kernel has no device-mapper (/dev/mapper/control is missing)', 'load the dm-mod and dm-thin-pool modules (modprobe dm-thin-pool), or use another backend');
    }
    try {
      await this.runner.run(cmd.lvmVersion());
    } catch (err) {
      throw unavailable('the lvm2 tools do not run (lvm version failed)', 'install lvm2 and thin-provisioning-tools', err);
    }
    const vgText = await this.runner.run(cmd.vgReport(vg), { okExitCodes: [LVM_NOT_FOUND] });
    const info = parseVgReport(vgText.stdout, vg);
    if (!info) throw unavailable(`volume group ${vg} does not exist`, `make it (vgcreate ${vg} DEVICE) or set lvm.vg to an existing one; ferry never creates volume groups`);
    this.vgInfo = info;
    let state = await this.state();
    if (!state.pool) {
      if (!this.opts.createPool) {
        throw unavailable(`volume group ${vg} has no thin pool ${pool}`, `make one (lvcreate --type thin-pool -L SIZE -n ${pool} ${vg}) or set lvm.createPool (e.g. "90%FREE")`);
      }
      await this.runner.run(cmd.createPool(vg, pool, this.opts.createPool));
      this.log.info({ vg, pool, size: this.opts.createPool }, 'thin pool created');
      state = await this.state();
      if (!state.pool) throw new FerryError('INTERNAL', `thin pool ${vg}/${pool} was made but lvs does not show it`);
    }
    if (state.pool.attr[0] !== 't') throw unavailable(`${vg}/${pool} is not a thin pool (lv_attr ${state.pool.attr})`, 'set lvm.pool to a thin pool');
    if (state.pool.whenFull !== 'error') await this.runner.run(cmd.errorWhenFull(vg, pool));
    const { restore, remove } = recoverTemps(state, vg);
    for (const r of restore) {
      await this.runner.run(cmd.rename(vg, r.from, r.to));
      this.log.warn({ from: r.from, to: r.to }, 'put back a volume an interrupted rollback had set aside (the rollback is undone)');
    }
    if (remove.length > 0) {
      await this.runner.run(cmd.remove(vg, remove));
      this.log.info({ lvs: remove }, 'removed temp LVs of interrupted operations');
    }
  }

  /** The thin pool's size and its unmapped space, in bytes. */
  async capacity(): Promise<PoolCapacity> {
    const pool = (await this.state()).pool;
    if (!pool) throw unavailable(`thin pool ${this.opts.vg}/${this.opts.pool} is gone`, 'recreate it or restart ferry with lvm.createPool set');
    return { totalBytes: pool.sizeBytes, freeBytes: poolFreeBytes(pool) };
  }

  /**
   * Makes a thin LV of `spec.sizeBytes` (rounded down to whole extents) formatted with `spec.fs`
   * (default ext4). Idempotent: an existing volume is left as it is. Throws INVALID_OPTION,
   * POOL_FULL when the pool has under 16 MiB unmapped; leaves nothing on failure.
   */
  async create(name: string, spec: DatasetSpec): Promise<void> {
    assertName('volume', name);
    const fs = filesystemOf(spec);
    if (spec.sizeBytes === undefined) throw new FerryError('INVALID_OPTION', `volume ${name}: the lvm backend needs a size (-o size=10G)`);
    await this.lock.run(name, async () => {
      const state = await this.state();
      if (state.volumes.has(name)) return;
      this.ensureRoom(state);
      const { vg, pool } = this.opts;
      const lv = volumeLv(vg, name);
      const bytes = lvBytes(spec.sizeBytes!, (await this.vg()).extentBytes);
      const started = Date.now();
      try {
        await this.runner.run(cmd.createThin(vg, pool, lv, bytes, volumeTags(name, fs)));
      } catch (err) {
        throw await this.asPoolFull(err);
      }
      try {
        await this.runner.run(cmd.mkfs(fs, dmPath(vg, lv)));
      } catch (err) {
        await this.removeQuietly([lv]);
        throw await this.asPoolFull(err);
      }
      this.log.info({ volume: name, op: 'create', fs, sizeBytes: bytes, durationMs: Date.now() - started }, 'thin LV created');
    });
  }

  /** Removes the volume's LV and its snapshots. Idempotent. Throws VOLUME_BUSY while it is mounted. */
  async destroy(name: string): Promise<void> {
    assertName('volume', name);
    await this.lock.run(name, async () => {
      const state = await this.state();
      const vol = state.volumes.get(name);
      if (vol) ensureNotMounted(name, this.mountPointOf(vol.lv));
      // Snapshots first: a crash half-way leaves a volume without snapshots, never old snapshots
      // that a new volume of the same name would take for its own.
      const snaps = (state.snapshots.get(name) ?? []).map((s) => s.lv);
      if (snaps.length > 0) await this.runner.run(cmd.remove(this.opts.vg, snaps));
      if (vol) await this.runner.run(cmd.remove(this.opts.vg, [vol.lv]));
      if (vol || snaps.length > 0) this.log.info({ volume: name, op: 'destroy', snapshots: snaps.length }, 'thin LV destroyed');
    });
  }

  /** Names of the volumes in the pool, sorted. */
  async list(): Promise<string[]> {
    return [...(await this.state()).volumes.keys()].sort();
  }

  /** True when the volume's LV exists. */
  async exists(name: string): Promise<boolean> {
    assertName('volume', name);
    return (await this.state()).volumes.has(name);
  }

  /**
   * Mounts the volume's filesystem at `target` (made if missing; the LV activated if it is not),
   * read-only when asked. Idempotent when `target` is a mount point. Throws VOLUME_NOT_FOUND.
   */
  async mount(name: string, target: string, opts?: { readOnly?: boolean }): Promise<void> {
    assertName('volume', name);
    await mkdir(target, { recursive: true });
    if (isMountPoint(target)) return;
    const vol = (await this.state()).volumes.get(name);
    if (!vol) throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} has no LV in ${this.opts.vg}/${this.opts.pool}`);
    if (!vol.active) await this.runner.run(cmd.activate(this.opts.vg, vol.lv));
    await this.runner.run(cmd.mount(vol.fs, dmPath(this.opts.vg, vol.lv), target, opts?.readOnly ?? false));
  }

  /** Unmounts `target`. Idempotent. Throws VOLUME_BUSY when in use. */
  async unmount(_name: string, target: string): Promise<void> {
    await unmountPath(this.runner, target);
  }

  /**
   * Takes thin snapshot `snap`. A mounted filesystem is flushed first, then LVM's suspend of the
   * origin freezes it for the instant of the snapshot (an fsfreeze of our own would make that
   * suspend fail with EBUSY: Linux refuses to freeze a frozen filesystem again).
   * Throws VOLUME_NOT_FOUND, VOLUME_EXISTS, POOL_FULL.
   */
  async snapshot(name: string, snap: string): Promise<void> {
    assertName('volume', name);
    assertName('snapshot', snap);
    await this.lock.run(name, async () => {
      const state = await this.state();
      const vol = state.volumes.get(name);
      if (!vol) throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} has no LV in ${this.opts.vg}/${this.opts.pool}`);
      if ((state.snapshots.get(name) ?? []).some((s) => s.snap === snap)) throw snapshotExists(name, snap);
      this.ensureRoom(state);
      const started = Date.now();
      const mountPoint = this.mountPointOf(vol.lv);
      if (mountPoint) await this.runner.run(cmd.syncFilesystem(mountPoint));
      const lv = snapshotLv(this.opts.vg, name, snap);
      try {
        await this.runner.run(cmd.snapshot(this.opts.vg, vol.lv, lv, snapshotTags(name, snap, vol.fs, Date.now()), true));
      } catch (err) {
        throw await this.asPoolFull(err);
      }
      this.log.info({ volume: name, snapshot: snap, op: 'snapshot', mounted: !!mountPoint, durationMs: Date.now() - started }, 'snapshot taken');
    });
  }

  /** Snapshot names of a volume, oldest first. */
  async listSnapshots(name: string): Promise<string[]> {
    assertName('volume', name);
    return ((await this.state()).snapshots.get(name) ?? []).map((s) => s.snap);
  }

  /** Deletes snapshot `snap`. Idempotent. */
  async deleteSnapshot(name: string, snap: string): Promise<void> {
    assertName('volume', name);
    assertName('snapshot', snap);
    await this.lock.run(name, async () => {
      const s = ((await this.state()).snapshots.get(name) ?? []).find((x) => x.snap === snap);
      if (s) await this.runner.run(cmd.remove(this.opts.vg, [s.lv]));
    });
  }

  /**
   * Makes the volume's contents those of `snap`, creating the volume when it is missing, and keeps
   * `snap` and every other snapshot. Not `lvconvert --merge`: merging a thin snapshot consumes it
   * (the merged snapshot becomes the origin), and a move's final snapshot must stay as the base of a
   * move back. Instead: a writable thin snapshot of `snap` (a temp LV), the old LV removed, the temp
   * renamed into its place. Throws SNAPSHOT_NOT_FOUND, VOLUME_BUSY while mounted, POOL_FULL.
   */
  async rollback(name: string, snap: string, _spec: DatasetSpec): Promise<void> {
    assertName('volume', name);
    assertName('snapshot', snap);
    await this.lock.run(name, async () => {
      const state = await this.state();
      const s = (state.snapshots.get(name) ?? []).find((x) => x.snap === snap);
      if (!s) throw snapshotNotFound(name, snap);
      const vol = state.volumes.get(name);
      if (vol) ensureNotMounted(name, this.mountPointOf(vol.lv));
      const { vg } = this.opts;
      const tmp = tempLv();
      try {
        await this.runner.run(cmd.snapshot(vg, s.lv, tmp, volumeTags(name, s.fs), false));
      } catch (err) {
        throw await this.asPoolFull(err);
      }
      // The volume is set aside, not removed, until the copy is in its place: a crash at any step
      // leaves either the old volume (put back by init) or the rolled-back one, never none.
      const aside = vol ? `${SET_ASIDE_PREFIX}${randomBytes(8).toString('hex')}` : undefined;
      try {
        if (vol && aside) await this.runner.run(cmd.rename(vg, vol.lv, aside));
        await this.runner.run(cmd.rename(vg, tmp, volumeLv(vg, name)));
      } catch (err) {
        if (vol && aside) await this.runner.run(cmd.rename(vg, aside, vol.lv)).catch(() => undefined);
        await this.removeQuietly([tmp]);
        throw err;
      }
      if (aside) await this.removeQuietly([aside]);
      this.log.info({ volume: name, snapshot: snap, op: 'rollback' }, 'rolled back');
    });
  }

  /** Makes volume `target` from snapshot `snap` of `name` (a writable thin snapshot). Throws SNAPSHOT_NOT_FOUND, VOLUME_EXISTS, POOL_FULL. */
  async clone(name: string, snap: string, target: string, _spec: DatasetSpec): Promise<void> {
    assertName('volume', name);
    assertName('snapshot', snap);
    assertName('volume', target);
    await this.lock.run(target, async () => {
      const state = await this.state();
      const s = (state.snapshots.get(name) ?? []).find((x) => x.snap === snap);
      if (!s) throw snapshotNotFound(name, snap);
      if (state.volumes.has(target)) throw new FerryError('VOLUME_EXISTS', `volume ${target} already exists in ${this.opts.vg}/${this.opts.pool}: choose another name`);
      this.ensureRoom(state);
      try {
        await this.runner.run(cmd.snapshot(this.opts.vg, s.lv, volumeLv(this.opts.vg, target), volumeTags(target, s.fs), false));
      } catch (err) {
        throw await this.asPoolFull(err);
      }
      this.log.info({ volume: target, source: name, snapshot: snap, op: 'clone' }, 'cloned');
    });
  }

  /**
   * A stream of snapshot `snap`: the blocks that differ from snapshot `base` (or every non-zero
   * block without a base), in the block-stream format inside the stream envelope. Both snapshots
   * are activated to be read. Errors (SNAPSHOT_NOT_FOUND, read errors) arrive as stream errors.
   */
  send(name: string, snap: string, base?: string): Readable {
    const self = this;
    async function* envelope(): AsyncGenerator<Buffer> {
      assertName('volume', name);
      assertName('snapshot', snap);
      if (base !== undefined) assertName('snapshot', base);
      const snaps = (await self.state()).snapshots.get(name) ?? [];
      const s = snaps.find((x) => x.snap === snap);
      if (!s) throw snapshotNotFound(name, snap);
      const b = base === undefined ? undefined : snaps.find((x) => x.snap === base);
      if (base !== undefined && !b) throw snapshotNotFound(name, base);
      const { vg } = self.opts;
      for (const x of [s, b]) if (x && !x.active) await self.runner.run(cmd.activate(vg, x.lv));
      const header: StreamHeader = { backend: 'lvm', snapshot: snap, ...(base !== undefined ? { base } : {}), fs: s.fs, sizeBytes: s.sizeBytes };
      const body = Readable.from(
        encodeBlockDiff(dmPath(vg, s.lv), b && dmPath(vg, b.lv), { imageBytes: s.sizeBytes, ...(b ? { baseBytes: b.sizeBytes } : {}) }),
        { objectMode: false },
      );
      const started = Date.now();
      let bytes = 0;
      for await (const chunk of wrapStream(body, header)) {
        bytes += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      self.log.debug({ volume: name, snapshot: snap, base, streamBytes: bytes, durationMs: Date.now() - started }, 'block stream sent');
    }
    return Readable.from(envelope(), { objectMode: false });
  }

  /**
   * Stores a stream made by `send` as snapshot `snap` of `name`: written into a temp LV (a writable
   * thin snapshot of the base, or a new thin LV), which is renamed into place only when the stream
   * ended cleanly. Throws STREAM_CORRUPT, SNAPSHOT_NOT_FOUND (base missing), VOLUME_EXISTS,
   * POOL_FULL, INVALID_REQUEST (not an lvm stream of `snap`); on any failure nothing of `snap` is left.
   */
  async receive(name: string, snap: string, stream: Readable): Promise<void> {
    assertName('volume', name);
    assertName('snapshot', snap);
    const { header, body } = unwrapStream(stream);
    body.on('error', () => undefined);
    const { vg, pool } = this.opts;
    const tmp = tempLv();
    let made = false;
    const started = Date.now();
    try {
      const h = await header;
      expectStream(h, this.kind, snap);
      const fs = (LVM_FILESYSTEMS as readonly unknown[]).includes(h.fs) ? (h.fs as LvmFilesystem) : undefined;
      const sizeBytes = typeof h.sizeBytes === 'number' && Number.isSafeInteger(h.sizeBytes) && h.sizeBytes > 0 ? h.sizeBytes : undefined;
      if (!fs || !sizeBytes) throw new FerryError('INVALID_REQUEST', `the lvm stream of snapshot ${snap} has no filesystem or size in its header: send it again from a current ferry`);
      const state = await this.state();
      const snaps = state.snapshots.get(name) ?? [];
      if (snaps.some((x) => x.snap === snap)) throw snapshotExists(name, snap);
      const tags = snapshotTags(name, snap, fs, Date.now());
      if (typeof h.base === 'string') {
        const b = snaps.find((x) => x.snap === h.base);
        if (!b) throw snapshotNotFound(name, h.base);
        await this.runner.run(cmd.snapshot(vg, b.lv, tmp, tags, false));
      } else {
        this.ensureRoom(state);
        await this.runner.run(cmd.createThin(vg, pool, tmp, sizeBytes, tags));
      }
      made = true;
      const fh = await open(dmPath(vg, tmp), 'r+');
      try {
        await applyBlockDiff(fh, body, sizeBytes);
      } finally {
        await fh.close();
      }
      await this.lock.run(name, async () => {
        // Taken meanwhile by another receive or snapshot: this one loses.
        if (((await this.state()).snapshots.get(name) ?? []).some((x) => x.snap === snap)) throw snapshotExists(name, snap);
        await this.runner.run(cmd.rename(vg, tmp, snapshotLv(vg, name, snap)));
      });
      made = false;
    } catch (err) {
      body.destroy();
      if (made) await this.removeQuietly([tmp]);
      throw await this.asPoolFull(err);
    }
    this.log.info({ volume: name, snapshot: snap, op: 'receive', durationMs: Date.now() - started }, 'snapshot received');
  }

  /**
   * Pool space each volume's LV maps (what it has written), in bytes, by name, from one `lvs`; only
   * `names` when given. Inactive LVs and names it does not hold are left out.
   */
  async usage(names?: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const wanted = names === undefined ? undefined : new Set(names);
    for (const [name, v] of (await this.state()).volumes) if (v.usedBytes !== undefined && (!wanted || wanted.has(name))) out.set(name, v.usedBytes);
    return out;
  }

  /** ferry's LVs in the volume group and the pool, from one `lvs`. */
  private async state(): Promise<LvmState> {
    const r = await this.runner.run(cmd.lvReport(this.opts.vg));
    return classify(this.opts.vg, this.opts.pool, parseLvReport(r.stdout));
  }

  private async vg(): Promise<VgInfo> {
    if (!this.vgInfo) {
      const info = parseVgReport((await this.runner.run(cmd.vgReport(this.opts.vg))).stdout, this.opts.vg);
      if (!info) throw unavailable(`volume group ${this.opts.vg} does not exist`, 'restore it or set lvm.vg');
      this.vgInfo = info;
    }
    return this.vgInfo;
  }

  /** POOL_FULL when the thin pool has less than MIN_FREE_BYTES unmapped. */
  private ensureRoom(state: LvmState): void {
    if (!state.pool) throw unavailable(`thin pool ${this.opts.vg}/${this.opts.pool} is gone`, 'recreate it or restart ferry with lvm.createPool set');
    const free = poolFreeBytes(state.pool);
    if (free < MIN_FREE_BYTES) throw this.poolFull(free);
  }

  private poolFull(freeBytes?: number, cause?: unknown): FerryError {
    const free = freeBytes === undefined ? '' : ` (${Math.floor(freeBytes / 1024 / 1024)} MiB unmapped)`;
    return new FerryError('POOL_FULL', `the thin pool ${this.opts.vg}/${this.opts.pool} is full${free}: remove volumes or snapshots, or grow it (lvextend -L +SIZE ${this.opts.vg}/${this.opts.pool})`, { cause });
  }

  /**
   * A failure caused by a full thin pool as POOL_FULL: lvm2's words for it, or an I/O error (a full
   * pool with errorwhenfull fails writes with EIO) while the pool is out of space; others as they are.
   */
  private async asPoolFull(err: unknown): Promise<unknown> {
    if (isFerryError(err, 'POOL_FULL')) return err;
    const e = err as NodeJS.ErrnoException;
    const stderr = err instanceof CommandFailedError ? err.stderrTail : '';
    if (saysPoolFull(stderr) || e?.code === 'ENOSPC') return this.poolFull(undefined, err);
    if (e?.code === 'EIO' || /input\/output error/i.test(stderr)) {
      const pool = await this.state().then((s) => s.pool, () => undefined);
      if (pool && poolFreeBytes(pool) < MIN_FREE_BYTES) return this.poolFull(poolFreeBytes(pool), err);
    }
    return err;
  }

  private mountPointOf(lv: string): string | undefined {
    const devices = [dmPath(this.opts.vg, lv), `/dev/${this.opts.vg}/${lv}`];
    return readMountTable().find((m) => devices.includes(m.source))?.mountPoint;
  }

  private async removeQuietly(lvs: string[]): Promise<void> {
    await this.runner.run(cmd.remove(this.opts.vg, lvs)).catch((err: unknown) => this.log.warn({ err, lvs }, 'temp LV not removed; the next start removes it'));
  }
}

/** Exists once the device-mapper module is loaded. */
const DM_CONTROL = '/dev/mapper/control';

/** lvm2 exits 5 (ECMD_FAILED) for a VG or LV it cannot find. */
const LVM_NOT_FOUND = 5;

function filesystemOf(spec: DatasetSpec): LvmFilesystem {
  const fs = spec.fs ?? 'ext4';
  if (!(LVM_FILESYSTEMS as readonly string[]).includes(fs)) {
    throw new FerryError('INVALID_OPTION', `filesystem ${fs} is not one the lvm backend makes: use ${LVM_FILESYSTEMS.join(' or ')}`);
  }
  return fs as LvmFilesystem;
}

function tempLv(): string {
  return `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`;
}

function unavailable(what: string, next: string, cause?: unknown): FerryError {
  return new FerryError('BACKEND_UNAVAILABLE', `${what}: ${next}`, { cause });
}

function snapshotNotFound(name: string, snap: string): FerryError {
  return new FerryError('SNAPSHOT_NOT_FOUND', `snapshot ${snap} of volume ${name} does not exist in the lvm pool`);
}

function snapshotExists(name: string, snap: string): FerryError {
  return new FerryError('VOLUME_EXISTS', `snapshot ${snap} of volume ${name} already exists: choose another name`);
}
