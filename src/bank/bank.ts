/**
 * A bank: the format over any BankStore (file://, s3://). Opening checks the key; checkpoints are
 * written manifest last, so a checkpoint is either complete and listed or invisible. Locks, gc and
 * check live in their own modules (bank-locks.ts, bank-gc.ts, bank-check.ts); this class joins them.
 */
import { FerryError, isFerryError } from '../errors';
import { runBackup, type BackupOptions, type BackupResult, type BackupSubject } from './bank-backup';
import { runCheck, type CheckOptions, type CheckResult } from './bank-check';
import { BankChunks, type BankChunksOptions } from './bank-chunks';
import { CONFIG_KEY, decodeConfig, encodeConfig, newBankConfig, unlockConfig, type BankConfig } from './bank-config';
import { runGc, type GcOptions, type GcResult } from './bank-gc';
import type { BankKeys } from './bank-keys';
import { BankLocks, LOCK_TIMINGS, type AcquireOptions, type HeldLock, type LockKind, type LockTimings } from './bank-locks';
import { assertCheckpointId, checkpointKey, isCheckpointId, newCheckpointId } from './checkpoint-id';
import { GearChunker, gearTable } from './gear-chunker';
import { decodeManifest, decodeTree, encodeManifest, treeBlocks, type Manifest } from './manifest';
import { mapLimit } from './map-limit';
import { loadIndex, type BankIndex } from './pack-index';
import { PackWriter } from './pack-writer';
import { SealPool } from './seal-pool';
import type { Sealer } from './sealer';
import type { BankStore, CheckpointSummary, ChunkCutter, ChunkStore, TreeEntry } from './types';

/** How a Bank seals (default: a SealPool of worker threads; InlineSealer seals on the calling thread). */
export interface BankOptions {
  sealer?: (sealKey: Buffer, url: string) => Sealer;
  /** Lock timings (tests shorten them). */
  lockTimings?: Partial<LockTimings>;
  /** create: the new bank's pack size (default 16 MiB; tests make packs small). */
  packBytes?: number;
}

/** What writeCheckpoint is given: the summary but for what the bank fills in. */
export type NewCheckpoint = Omit<CheckpointSummary, 'id' | 'addedBytes'> & { id?: string };

export class Bank {
  readonly id: string;
  private readonly gear: Int32Array;
  private readonly sealer: Sealer;
  /** The bank's locks (gc removes stale ones through it). */
  readonly locks: BankLocks;

  private constructor(
    readonly store: BankStore,
    readonly config: BankConfig,
    private readonly keys: BankKeys,
    o: BankOptions,
  ) {
    this.id = config.id;
    this.gear = gearTable(keys.gear);
    this.sealer = (o.sealer ?? defaultSealer)(keys.seal, store.url);
    this.locks = new BankLocks(store, { ...LOCK_TIMINGS, ...o.lockTimings });
  }

  /** Opens the bank at `store`, writing a new config first when it has none. */
  static async create(store: BankStore, key: Buffer, o: BankOptions = {}): Promise<Bank> {
    if (await store.has(CONFIG_KEY)) return Bank.open(store, key, o);
    const { config, keys } = newBankConfig(key, new Date(), undefined, o.packBytes);
    await store.put(CONFIG_KEY, encodeConfig(config));
    return new Bank(store, config, keys, o);
  }

  /** BANK_NOT_FOUND when the store holds no config; BANK_KEY_WRONG when `key` does not open it. */
  static async open(store: BankStore, key: Buffer, o: BankOptions = {}): Promise<Bank> {
    const body = await store.get(CONFIG_KEY);
    if (!body) {
      throw new FerryError('BANK_NOT_FOUND', `there is no bank at ${store.url} (no config object there); check the URL, or add the bank without --read-only to create it`);
    }
    const config = decodeConfig(body, store.url);
    const keys = unlockConfig(config, key, store.url);
    return new Bank(store, config, keys, o);
  }

  /** Frees the sealer's threads; the bank is not used after. */
  async close(): Promise<void> {
    await this.sealer.close();
  }

  /** A fresh chunker with this bank's gear table and sizes. */
  cutter(): ChunkCutter {
    return new GearChunker(this.gear, this.config.chunker);
  }

  /** The bank's chunks; put skips ids in `trusted` (see BankChunksOptions). */
  chunks(o: BankChunksOptions = {}): BankChunks {
    return new BankChunks(this.store, this.keys.chunkId, this.sealer, () => this.index(), this.config.pack.targetBytes, o);
  }

  /** The bank's index: every indexed pack's chunks (one listing of index/, then each index read). */
  async index(): Promise<BankIndex> {
    return loadIndex(this.store, this.sealer);
  }

  /** The ids of every chunk in an indexed pack. */
  async knownChunks(): Promise<Set<string>> {
    return new Set((await this.index()).chunks.keys());
  }

  /** A writer of new packs of sealed chunks (gc moves live chunks through one). */
  packWriter(): PackWriter {
    return new PackWriter(this.store, this.sealer, { targetBytes: this.config.pack.targetBytes });
  }

  /**
   * Stores `entries` as the tree of a new checkpoint through `chunks` (the store the data went
   * through, so addedBytes counts both), then its manifest, last. The summary's id is made from its
   * time unless given.
   */
  async writeCheckpoint(summary: NewCheckpoint, entries: TreeEntry[], chunks: ChunkStore): Promise<CheckpointSummary> {
    const at = new Date(summary.time);
    if (Number.isNaN(at.getTime())) throw new FerryError('INVALID_REQUEST', `checkpoint time "${summary.time}" is not an ISO-8601 time`);
    const id = summary.id ?? newCheckpointId(at);
    assertCheckpointId(id);
    const key = checkpointKey(id);
    if (await this.store.has(key)) throw new FerryError('BANK_EXISTS', `checkpoint ${id} already exists in bank ${this.store.url}`);
    // The tree's NDJSON cut and put block by block (put copies each chunk before it returns).
    const cutter = this.cutter();
    const treeChunks: string[] = [];
    for (const block of treeBlocks(entries)) treeChunks.push(...(await mapLimit(cutter.push(block), 8, (p) => chunks.put(p))));
    const last = cutter.end();
    if (last) treeChunks.push(await chunks.put(last));
    // Every pack and index stored before the manifest names their chunks.
    await chunks.flush();
    // addedBytes: the sealed new chunks, data and tree (the manifest is not counted).
    const full: CheckpointSummary = { ...summary, id, addedBytes: chunks.uploadedBytes() };
    await this.store.put(key, await this.sealer.seal(encodeManifest({ version: 1, summary: full, treeChunks }), key));
    return full;
  }

  /** The manifest of checkpoint `id`; CHECKPOINT_NOT_FOUND when there is none. */
  async readManifest(id: string): Promise<Manifest> {
    assertCheckpointId(id);
    const key = checkpointKey(id);
    const sealed = await this.store.get(key);
    if (!sealed) throw new FerryError('CHECKPOINT_NOT_FOUND', `no checkpoint ${id} in bank ${this.store.url}; ferry backup ls lists them`, { details: { checkpoint: id } });
    return decodeManifest(await this.sealer.open(sealed, key), id, this.store.url);
  }

  /** The tree of a manifest, read through its tree chunks. */
  async readTree(m: Manifest, chunks: ChunkStore = this.chunks()): Promise<TreeEntry[]> {
    const parts = await mapLimit(m.treeChunks, 8, (c) => chunks.get(c));
    const whole = Buffer.concat(parts);
    for (const p of parts) chunks.release(p);
    return decodeTree(whole, m.summary.id, this.store.url);
  }

  async readCheckpoint(id: string): Promise<{ summary: CheckpointSummary; entries: TreeEntry[] }> {
    const m = await this.readManifest(id);
    return { summary: m.summary, entries: await this.readTree(m) };
  }

  /** Every checkpoint's manifest (of `volume` when given), oldest first. */
  async listManifests(volume?: string): Promise<Manifest[]> {
    const ids = (await this.store.list('checkpoints/'))
      .map((o) => o.key.slice('checkpoints/'.length))
      .filter(isCheckpointId);
    const found = await mapLimit(ids, 8, async (id) => {
      try {
        return await this.readManifest(id);
      } catch (err) {
        // Removed between the listing and the read: it is simply gone.
        if (isFerryError(err, 'CHECKPOINT_NOT_FOUND')) return null;
        throw err;
      }
    });
    // Oldest first by the time each was taken (the id breaks ties): ids name the second only, so in
    // id order two checkpoints of one second came in the order of their random suffixes (a stale parent).
    return found
      .filter((m): m is Manifest => m !== null && (volume === undefined || m.summary.volume === volume))
      .sort((a, b) => Date.parse(a.summary.time) - Date.parse(b.summary.time) || (a.summary.id < b.summary.id ? -1 : a.summary.id > b.summary.id ? 1 : 0));
  }

  async listCheckpoints(volume?: string): Promise<CheckpointSummary[]> {
    return (await this.listManifests(volume)).map((m) => m.summary);
  }

  /** The newest checkpoint of `volume` with its entries (a backup's parent), or undefined when it has none. */
  async newestCheckpoint(volume: string): Promise<{ summary: CheckpointSummary; entries: TreeEntry[] } | undefined> {
    const newest = (await this.listCheckpoints(volume)).at(-1);
    return newest ? this.readCheckpoint(newest.id) : undefined;
  }

  /** Deletes the checkpoint's manifest only (its chunks go at the next gc); CHECKPOINT_NOT_FOUND when absent. */
  async removeCheckpoint(id: string): Promise<void> {
    assertCheckpointId(id);
    const key = checkpointKey(id);
    if (!(await this.store.has(key))) throw new FerryError('CHECKPOINT_NOT_FOUND', `no checkpoint ${id} in bank ${this.store.url}; ferry backup ls lists them`, { details: { checkpoint: id } });
    await this.store.delete([key]);
  }

  /**
   * Takes a lock: 'backup' (shared; waits while a gc runs) or 'gc' (exclusive; waits for backups).
   * BANK_LOCKED when still blocked after waitMs; onWait says whom it waits for.
   */
  async lock(kind: LockKind, host: string, o: AcquireOptions = {}): Promise<HeldLock> {
    return this.locks.acquire(kind, host, o);
  }

  /** Backs up the tree at `root` as a new checkpoint of `subject.volume` (see bank-backup.ts). */
  async backUp(root: string, subject: BackupSubject, o: BackupOptions): Promise<BackupResult> {
    return runBackup(this, root, subject, o);
  }

  /** Deletes the chunks no checkpoint reaches, under the gc lock (see bank-gc.ts). */
  async gc(o: GcOptions): Promise<GcResult> {
    return runGc(this, o);
  }

  /** Proves every checkpoint's chunks exist, and reads back a share of them (see bank-check.ts). */
  async check(o: CheckOptions = {}): Promise<CheckResult> {
    return runCheck(this, o);
  }
}

function defaultSealer(sealKey: Buffer, url: string): Sealer {
  return new SealPool(sealKey, url);
}
