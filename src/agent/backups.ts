import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointSummary, ProgressSink, TreeEntry } from '../bank/types';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { writeFileAtomic } from './atomic-file';
import { LATEST, restoringValue } from '../volume/backup-refs';
import { restoreCreateOptions } from '../volume/restore-options';
import { formatSize } from '../volume/size';
import type { QuiesceMode } from '../volume/options';
import type { ControlClient } from '../wire/control-client';
import type { ListedCheckpoint, VolumeView } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import { requireSnapshots, type Backend } from './backends/backend';
import { Banks, secondsSince } from './banks';
import type { OpenBank } from './bank-kit';
import { cloneDataset } from './clone-dataset';
import type { Snapshots } from './snapshots';
import { volumeNotFound } from './volume-errors';
import type { VolumeService } from './volume-service';

/** Backends whose snapshot clones keep inode numbers and ctimes: a backup may reuse unchanged files' extents. */
const STABLE_INODES: ReadonlySet<string> = new Set(['btrfs', 'zfs', 'lvm', 'loop']);

/** What a backup in progress keeps on disk until it has undone its steps (a crash leaves it for the next start). */
interface WorkRecord {
  id: string;
  volume: string;
  backend: string;
  /** The snapshot it took (`_backup.<id>`) and the scratch dataset cloned from it (`_scratch.<id>`). */
  snapshot: string;
  scratch: string;
  mountpoint: string;
}

/**
 * bank-ops (issue 8): backups of this host's volumes to banks, and restores from them (agent part
 * `backups`). A backup reads a read-only clone of a fresh snapshot (quiesced as asked), so the volume
 * stays in use; a restore makes a new volume through the normal Create path, marked `restoring` until
 * its data is in. Runs on the volume's primary host (another host gets NOT_PRIMARY naming it).
 *
 * Every step of a backup is undone on failure. Its work record (`<workDir>/<id>.json`, written before
 * the first step) is how a crash's leftovers (`_backup.<id>` snapshot, `_scratch.<id>` dataset and its
 * mount under `<workDir>`) are found and removed at the next start (`cleanLeftovers`, before
 * reconciliation).
 */
export class Backups {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly snapshots: Snapshots,
    private readonly volumes: VolumeService,
    private readonly banks: Banks,
    /** `<dataDir>/bank-work`: scratch mounts and work records. */
    private readonly workDir: string,
    /** The host's default backend (a restore's when this host lacks the checkpoint's). */
    private readonly defaultBackend: string,
    private readonly log: Logger,
  ) {}

  /**
   * Backs `volume` up to bank `o.bank`: snapshot, read-only clone, the bank's backup lock, the tree
   * cut into chunks (only those the bank lacks are uploaded; unchanged files of the newest checkpoint
   * of the volume reused where the backend keeps inodes), the manifest written last. Records
   * `backup-created` (or `backup-failed` with the reason, the volume untouched, no checkpoint listed).
   */
  async create(volume: string, o: { bank: string; origin: 'manual' | 'schedule' | 'drill'; quiesce?: QuiesceMode; progress?: ProgressSink }): Promise<CheckpointSummary> {
    const started = Date.now();
    try {
      const v = await this.primaryHere(volume);
      const summary = await this.banks.using(o.bank, async ({ record, bank }) => {
        Banks.writable(record, `take backups (of ${volume})`);
        return this.backUp(v, bank, o);
      });
      const secs = secondsSince(started);
      await this.banks.event(
        'backup-created',
        `backup of ${volume} to bank ${o.bank}: checkpoint ${summary.id}, ${formatSize(summary.dataBytes)} in ${summary.files} files, ${formatSize(summary.addedBytes)} added to the bank, in ${secs} s`,
        volume,
      );
      this.log.info({ volume, bank: o.bank, checkpoint: summary.id, addedBytes: summary.addedBytes, dataBytes: summary.dataBytes, seconds: secs, op: 'backup' }, 'backup created');
      return summary;
    } catch (err) {
      const e = toFerryError(err);
      if (e.code !== 'NOT_PRIMARY' && e.code !== 'VOLUME_NOT_FOUND') await this.banks.event('backup-failed', `backup of ${volume} to bank ${o.bank} failed: ${e.message}`, volume);
      throw e;
    }
  }

  private async backUp(v: VolumeView, bank: OpenBank, o: { origin: string; quiesce?: QuiesceMode; progress?: ProgressSink }): Promise<CheckpointSummary> {
    const id = randomBytes(4).toString('hex');
    const backend = this.backends.backendFor(v.backend);
    const work: WorkRecord = { id, volume: v.name, backend: v.backend, snapshot: `_backup.${id}`, scratch: `_scratch.${id}`, mountpoint: join(this.workDir, id) };
    await this.remember(work);
    try {
      o.progress?.({ phase: 'snapshot', doneBytes: 0, totalBytes: 0 });
      await this.snapshots.take(v.name, { origin: 'backup', name: work.snapshot, ...(o.quiesce ? { quiesce: o.quiesce } : {}) });
      await cloneDataset(backend, { volume: v.name, snapshot: work.snapshot }, work.scratch, { sizeBytes: v.sizeBytes ?? undefined, fs: v.fs ?? undefined });
      await mkdir(work.mountpoint, { recursive: true });
      await backend.mount(work.scratch, work.mountpoint, { readOnly: true });
      const { summary } = await bank.backUp(
        work.mountpoint,
        { volume: v.name, host: this.node, backend: v.backend, sizeBytes: v.sizeBytes ?? undefined, fs: v.fs ?? undefined, origin: o.origin },
        {
          stableInodes: STABLE_INODES.has(v.backend),
          ...(o.progress ? { progress: o.progress } : {}),
          onLockWait: (msg) => o.progress?.({ phase: `waiting: ${msg}`, doneBytes: 0, totalBytes: 0 }),
          onLockReleaseFailed: (err) => this.log.warn({ err, volume: v.name }, 'cannot release the bank lock (it goes stale in 120 s)'),
        },
      );
      return summary;
    } finally {
      await this.undo(work, backend);
    }
  }

  /**
   * Restores checkpoint `checkpoint` (`latest`: the newest) of `volume` from bank `bank` as new volume
   * `o.as` on this host: Create with `restoring=BANK/CP` (Mount refuses it meanwhile), the tree written
   * into it, the option cleared. A failure removes the new volume. Records restore-done/failed.
   */
  async restore(bankName: string, volume: string, checkpoint: string, o: { as: string; backend?: string; size?: string; fs?: string; progress?: ProgressSink }): Promise<VolumeView> {
    const started = Date.now();
    try {
      if (await this.control.getVolume(o.as)) throw new FerryError('VOLUME_EXISTS', `volume ${o.as} already exists: restore --as another name, or remove it first`);
      return await this.banks.using(bankName, ({ bank }) => this.restoreFrom(bank, bankName, volume, checkpoint, o, started));
    } catch (err) {
      const e = toFerryError(err);
      await this.banks.event('restore-failed', `restore of ${volume}@${checkpoint} from bank ${bankName} as ${o.as} failed: ${e.message}`);
      throw e;
    }
  }

  private async restoreFrom(
    bank: OpenBank,
    bankName: string,
    volume: string,
    checkpoint: string,
    o: { as: string; backend?: string; size?: string; fs?: string; progress?: ProgressSink },
    started: number,
  ): Promise<VolumeView> {
    const { summary, entries } = await this.read(bank, bankName, volume, checkpoint);
    const here = this.backends.entries().filter(([, s]) => !s.error).map(([k]) => k as string);
    const options = restoreCreateOptions(summary, o, here, this.defaultBackend, restoringValue(bankName, summary.id));
    o.progress?.({ phase: 'create', doneBytes: 0, totalBytes: summary.dataBytes });
    const v = await this.volumes.create(o.as, options);
    const backend = this.backends.backendFor(v.backend);
    const mountpoint = join(this.workDir, `restore-${randomBytes(4).toString('hex')}`);
    let done: VolumeView;
    try {
      await mkdir(mountpoint, { recursive: true });
      await backend.mount(o.as, mountpoint);
      try {
        await (await this.banks.kit()).restoreTree(entries, mountpoint, { chunks: bank.chunks(), ...(o.progress ? { progress: o.progress } : {}) });
      } finally {
        await backend.unmount(o.as, mountpoint);
        await rm(mountpoint, { recursive: true, force: true });
      }
      done = await this.control.setVolumeOptions(o.as, { restoring: null }, this.node);
    } catch (err) {
      await this.volumes.remove(o.as).catch((e: unknown) => this.log.warn({ err: e, volume: o.as }, 'cannot remove the volume of a failed restore'));
      throw err;
    }
    await this.banks.event('restore-done', `checkpoint ${volume}@${summary.id} of bank ${bankName} restored as ${o.as} (${v.backend}), ${formatSize(summary.dataBytes)} in ${secondsSince(started)} s`, o.as);
    return done;
  }

  /** Writes path `o.path` of a checkpoint (a file or a directory, with what it holds) into directory `o.into` on this host. */
  async extract(bankName: string, volume: string, checkpoint: string, o: { path: string; into: string; progress?: ProgressSink }): Promise<{ files: number; bytes: number }> {
    return this.banks.using(bankName, async ({ bank }) => {
      const { entries } = await this.read(bank, bankName, volume, checkpoint);
      const path = o.path.replace(/^\/+|\/+$/g, '');
      if (path && !entries.some((e) => e.path === path)) {
        throw new FerryError('CHECKPOINT_NOT_FOUND', `checkpoint ${volume}@${checkpoint} of bank ${bankName} holds no path ${path}`);
      }
      await mkdir(o.into, { recursive: true });
      return (await this.banks.kit()).restoreTree(entries, o.into, { chunks: bank.chunks(), path, ...(o.progress ? { progress: o.progress } : {}) });
    });
  }

  /** Checkpoints of every bank (or one), of every volume (or one), oldest first per bank. */
  async list(o: { bank?: string; volume?: string }): Promise<ListedCheckpoint[]> {
    const names = o.bank ? [o.bank] : (await this.banks.list()).map((b) => b.name);
    const out: ListedCheckpoint[] = [];
    for (const name of names) {
      for (const c of await this.banks.using(name, ({ bank }) => bank.listCheckpoints(o.volume))) out.push({ ...c, bank: name });
    }
    return out;
  }

  /** Removes one checkpoint's manifest (its chunks go at the next `ferry bank gc`). Records `backup-removed`. */
  async remove(bankName: string, volume: string, checkpoint: string): Promise<string> {
    const summary = await this.banks.using(bankName, async ({ record, bank }) => {
      Banks.writable(record, 'have checkpoints removed');
      const { summary: s } = await this.read(bank, bankName, volume, checkpoint);
      await bank.removeCheckpoint(s.id);
      return s;
    });
    await this.banks.event('backup-removed', `checkpoint ${volume}@${summary.id} removed from bank ${bankName} (its chunks go at the next ferry bank gc)`, volume);
    return summary.id;
  }

  /** A checkpoint of `volume` (`latest`: the newest), read; CHECKPOINT_NOT_FOUND naming where to look. */
  private async read(bank: OpenBank, bankName: string, volume: string, checkpoint: string): Promise<{ summary: CheckpointSummary; entries: TreeEntry[] }> {
    let id = checkpoint;
    if (checkpoint === LATEST) {
      const newest = (await bank.listCheckpoints(volume)).at(-1);
      if (!newest) throw new FerryError('CHECKPOINT_NOT_FOUND', `bank ${bankName} holds no checkpoint of ${volume} (ferry backup ls --bank ${bankName})`);
      id = newest.id;
    }
    const r = await bank.readCheckpoint(id);
    if (r.summary.volume !== volume) {
      throw new FerryError('CHECKPOINT_NOT_FOUND', `checkpoint ${id} of bank ${bankName} is of volume ${r.summary.volume}, not ${volume}: name it ${r.summary.volume}@${id}`);
    }
    return r;
  }

  /**
   * At start, before reconciliation: undoes what backups cut off by a crash left (their work records):
   * unmount and destroy `_scratch.<id>`, remove the `_backup.<id>` snapshot. A record whose undo fails
   * stays for the next start.
   */
  async cleanLeftovers(): Promise<number> {
    let names: string[];
    try {
      names = (await readdir(this.workDir)).filter((n) => n.endsWith('.json'));
    } catch {
      return 0;
    }
    let cleaned = 0;
    for (const n of names) {
      try {
        const work = JSON.parse(await readFile(join(this.workDir, n), 'utf8')) as WorkRecord;
        this.log.warn({ volume: work.volume, scratch: work.scratch, snapshot: work.snapshot }, 'removing what a cut-off backup left');
        await this.undo(work, this.backends.backendFor(work.backend), true);
        cleaned++;
      } catch (err) {
        this.log.warn({ err, record: n }, 'cannot undo a cut-off backup yet; trying again at the next start');
      }
    }
    return cleaned;
  }

  private async remember(work: WorkRecord): Promise<void> {
    await mkdir(this.workDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.workDir, `${work.id}.json`), JSON.stringify(work));
  }

  /** Each step undone (idempotent); the work record goes once all are. `strict`: throw the first failure (start-up). */
  private async undo(work: WorkRecord, backend: Backend, strict = false): Promise<void> {
    let failed: unknown;
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        failed ??= err;
        this.log.warn({ err, volume: work.volume, step: what }, 'cannot undo a step of a backup');
      }
    };
    await step('unmount', () => backend.unmount(work.scratch, work.mountpoint));
    await step('destroy scratch', () => backend.destroy(work.scratch));
    await step('remove snapshot', async () => {
      const snaps = requireSnapshots(backend, work.volume, 'back up');
      if (!(await snaps.listSnapshots(work.volume).catch((): string[] => [])).includes(work.snapshot)) {
        // Gone from disk (or never taken): only the registry may still name it.
        await this.control.forgetSnapshot(work.volume, work.snapshot, this.node);
        return;
      }
      // Through Snapshots (disk and registry); a volume control forgot meanwhile has only its disk.
      if (await this.control.getVolume(work.volume)) await this.snapshots.remove(work.volume, work.snapshot);
      else await snaps.deleteSnapshot(work.volume, work.snapshot);
    });
    if (failed === undefined) {
      await rm(work.mountpoint, { recursive: true, force: true }).catch(() => undefined);
      await rm(join(this.workDir, `${work.id}.json`), { force: true });
    } else if (strict) throw failed;
  }

  /** The volume's record, checked ready and primary here (NOT_PRIMARY names the host to run it on). */
  private async primaryHere(volume: string): Promise<VolumeView> {
    const v = await this.control.getVolume(volume);
    if (!v || v.state === 'creating') throw volumeNotFound(volume);
    if (v.state === 'deleting') throw new FerryError('VOLUME_BUSY', `volume ${volume} is being removed; it cannot be backed up`);
    if (v.options.restoring) throw new FerryError('VOLUME_BUSY', `volume ${volume} is still being restored (${v.options.restoring}); back it up once the restore has finished`);
    if (v.primaryNode !== this.node) throw new FerryError('NOT_PRIMARY', `volume ${volume} lives on ${v.primaryNode}, not ${this.node}: run the backup on ${v.primaryNode}`);
    return v;
  }
}
