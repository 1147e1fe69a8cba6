/**
 * Fills packs with sealed chunks and stores them: a pack is closed once it passes `targetBytes` (or
 * at flush), then committed, then its index stored (pack-index.ts), so a pack is never indexed before
 * it is whole. Each pack is an object written in pieces (BankStore.create): a sealed chunk goes to it
 * as it comes, at the offset its index records: into the pack's file on a file:// bank, into a
 * staged copy on local disk streamed at commit on S3 (object-writer.ts); neither holds the pack in
 * memory. At most `uploading` packs (2) are being committed while one fills; add waits while the
 * filling pack is full and every slot is taken. A failed upload drops the filling pack and fails
 * every later add; discard does the same for a backup that failed elsewhere.
 */
import { FerryError } from '../errors';
import { encodeIndex, indexKey, newPackId, packKey, type ChunkLocation, type IndexEntry } from './pack-index';
import type { Sealer } from './sealer';
import type { BankStore, ObjectWriter } from './types';

export interface PackWriterOptions {
  /** A pack is closed once it holds this many bytes (the bank's config: pack.targetBytes). */
  targetBytes: number;
  /** Packs being stored at once (default 2). */
  uploading?: number;
  /** Told each pack once it and its index are stored. */
  onStored?: (packId: string, entries: readonly IndexEntry[], bytes: number) => void;
}

interface OpenPack {
  id: string;
  /** Made at the first chunk. */
  object?: ObjectWriter;
  entries: IndexEntry[];
  bytes: number;
  /** Writes of its chunks under way (each settles once the store is done with the chunk's bytes). */
  writes: Promise<void>[];
}

function emptyPack(): OpenPack {
  return { id: newPackId(), entries: [], bytes: 0, writes: [] };
}

export class PackWriter {
  private filling = emptyPack();
  private readonly uploads = new Set<Promise<void>>();
  /** Ids added (filling, uploading or stored). */
  private readonly added = new Set<string>();
  /** Where the chunks of the stored packs lie. */
  private readonly stored = new Map<string, ChunkLocation>();
  private failed: unknown = undefined;
  private readonly maxUploads: number;

  constructor(
    private readonly store: BankStore,
    private readonly sealer: Sealer,
    private readonly o: PackWriterOptions,
  ) {
    this.maxUploads = Math.max(1, o.uploading ?? 2);
  }

  /** True when `id` was added to this writer (it is or will be in one of its packs). */
  has(id: string): boolean {
    return this.added.has(id);
  }

  /** Where `id` lies, once its pack and index are stored. */
  locate(id: string): ChunkLocation | undefined {
    return this.stored.get(id);
  }

  /**
   * Appends sealed chunk `id` to the filling pack (waits while it is full and uploads are busy);
   * settles once the store is done with `sealed`.
   */
  async add(id: string, sealed: Buffer): Promise<void> {
    this.throwIfFailed();
    while (this.filling.bytes >= this.o.targetBytes && this.uploads.size >= this.maxUploads) await Promise.race(this.uploads);
    this.throwIfFailed();
    if (this.added.has(id)) return;
    const p = this.filling;
    p.object ??= this.store.create(packKey(p.id));
    // The offset is taken before anything awaits: chunks added together get their own places.
    const at = p.bytes;
    p.entries.push({ id, offset: at, length: sealed.length });
    p.bytes += sealed.length;
    this.added.add(id);
    const writing = p.object.write(sealed, at);
    p.writes.push(writing);
    if (p.bytes >= this.o.targetBytes && this.uploads.size < this.maxUploads) this.close();
    await writing;
  }

  /** Closes the filling pack and waits for every pack and index to be stored; throws the first failure. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.failed === undefined && this.filling.entries.length > 0 && this.uploads.size < this.maxUploads) this.close();
      if (this.uploads.size === 0) break;
      await Promise.race(this.uploads);
    }
    this.throwIfFailed();
  }

  /**
   * Drops the pack being filled (its chunks are not stored) and waits for the packs being stored,
   * their failures ignored: a writer whose backup failed frees what it holds (an open pack file, a
   * staged copy). After a flush there is nothing to drop. The writer takes no chunk after this.
   */
  async discard(): Promise<void> {
    this.failed ??= new FerryError('INTERNAL', 'a chunk was added to a pack writer after it was discarded');
    await this.dropFilling();
    await Promise.allSettled([...this.uploads]);
  }

  /** The filling pack's object aborted once its writes settle; a fresh pack takes its place. */
  private async dropFilling(): Promise<void> {
    const p = this.filling;
    this.filling = emptyPack();
    await Promise.allSettled(p.writes);
    await p.object?.abort().catch(() => undefined);
  }

  private throwIfFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  /** Starts storing the filling pack (the caller checked there is an upload slot). */
  private close(): void {
    const p = this.filling;
    if (p.entries.length === 0 || !p.object) return;
    this.filling = emptyPack();
    const object = p.object;
    // eslint-disable-next-line prefer-const -- the upload removes itself from the set by this name
    let done: Promise<void> | undefined;
    done = (async () => {
      try {
        // Every chunk in place first: a write that failed fails the pack.
        for (const r of await Promise.allSettled(p.writes)) if (r.status === 'rejected') throw r.reason;
        await object.commit(p.bytes);
        const key = indexKey(p.id);
        await this.store.put(key, await this.sealer.seal(encodeIndex(p.entries), key));
        for (const e of p.entries) this.stored.set(e.id, { pack: p.id, offset: e.offset, length: e.length });
        this.o.onStored?.(p.id, p.entries, p.bytes);
      } catch (err) {
        this.failed ??= err;
        await object.abort().catch(() => undefined);
        // No pack is stored after a failure: the one filling goes too (add throws from now on).
        await this.dropFilling();
      } finally {
        this.uploads.delete(done as Promise<void>);
        // A pack that filled while every slot was busy goes now.
        if (this.filling.bytes >= this.o.targetBytes && this.uploads.size < this.maxUploads && this.failed === undefined) this.close();
      }
    })();
    this.uploads.add(done);
  }
}
