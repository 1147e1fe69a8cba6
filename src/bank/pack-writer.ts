/**
 * Fills packs with sealed chunks and stores them: a pack is closed once it passes `targetBytes` (or
 * at flush), then stored, then its index (pack-index.ts), so a pack is never indexed before it is
 * whole. At most `uploading` packs (2) are being stored while one fills; add waits while the filling
 * pack is full and every upload slot is taken. Each sealed chunk is copied into the filling pack's
 * buffer as it comes (buffers from a pool: a fresh 16 MiB per pack costs page faults on every
 * byte). Peak memory: (uploading + 1) pack buffers of targetBytes + the largest sealed chunk
 * (~3 x 21 MiB with the defaults).
 */
import { BufferPool, bufferPool } from './buffer-pool';
import { encodeIndex, indexKey, newPackId, packKey, type ChunkLocation, type IndexEntry } from './pack-index';
import type { Sealer } from './sealer';
import type { BankStore } from './types';

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
  /** Taken from the pool at the first chunk. */
  buf?: Buffer;
  entries: IndexEntry[];
  bytes: number;
}

function emptyPack(): OpenPack {
  return { id: newPackId(), entries: [], bytes: 0 };
}

/** Room for a pack beyond its target: the largest sealed chunk (4 MiB of data + seal overhead). */
const PACK_SLACK = 4 * 1024 * 1024 + 64 * 1024;

export class PackWriter {
  private filling = emptyPack();
  private readonly uploads = new Set<Promise<void>>();
  /** Ids added (filling, uploading or stored). */
  private readonly added = new Set<string>();
  /** Where the chunks of the stored packs lie. */
  private readonly stored = new Map<string, ChunkLocation>();
  private failed: unknown = undefined;
  private readonly maxUploads: number;
  private readonly buffers: BufferPool<Buffer>;

  constructor(
    private readonly store: BankStore,
    private readonly sealer: Sealer,
    private readonly o: PackWriterOptions,
  ) {
    this.maxUploads = Math.max(1, o.uploading ?? 2);
    this.buffers = bufferPool(this.maxUploads + 1);
  }

  /** True when `id` was added to this writer (it is or will be in one of its packs). */
  has(id: string): boolean {
    return this.added.has(id);
  }

  /** Where `id` lies, once its pack and index are stored. */
  locate(id: string): ChunkLocation | undefined {
    return this.stored.get(id);
  }

  /** Appends sealed chunk `id` to the filling pack (waits while it is full and uploads are busy). */
  async add(id: string, sealed: Buffer): Promise<void> {
    this.throwIfFailed();
    while (this.filling.bytes >= this.o.targetBytes && this.uploads.size >= this.maxUploads) await Promise.race(this.uploads);
    this.throwIfFailed();
    if (this.added.has(id)) return;
    const p = this.filling;
    p.entries.push({ id, offset: p.bytes, length: sealed.length });
    const need = p.bytes + sealed.length;
    if (!p.buf || p.buf.length < need) {
      // First chunk, or one larger than the slack allows for: a (bigger) buffer, the bytes so far moved over.
      const bigger = this.buffers.take(Math.max(need, this.o.targetBytes + PACK_SLACK));
      if (p.buf) {
        p.buf.copy(bigger, 0, 0, p.bytes);
        this.buffers.give(p.buf);
      }
      p.buf = bigger;
    }
    sealed.copy(p.buf, p.bytes);
    p.bytes = need;
    this.added.add(id);
    if (p.bytes >= this.o.targetBytes && this.uploads.size < this.maxUploads) this.close();
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

  private throwIfFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  /** Starts storing the filling pack (the caller checked there is an upload slot). */
  private close(): void {
    const p = this.filling;
    if (p.entries.length === 0) return;
    this.filling = emptyPack();
    const buf = p.buf!;
    const body = buf.subarray(0, p.bytes);
    // eslint-disable-next-line prefer-const -- the upload removes itself from the set by this name
    let done: Promise<void> | undefined;
    done = (async () => {
      try {
        await this.store.put(packKey(p.id), body);
        const key = indexKey(p.id);
        await this.store.put(key, await this.sealer.seal(encodeIndex(p.entries), key));
        for (const e of p.entries) this.stored.set(e.id, { pack: p.id, offset: e.offset, length: e.length });
        this.o.onStored?.(p.id, p.entries, p.bytes);
      } catch (err) {
        this.failed ??= err;
      } finally {
        // The store is done with the body either way.
        this.buffers.give(buf);
        this.uploads.delete(done as Promise<void>);
        // A pack that filled while every slot was busy goes now.
        if (this.filling.bytes >= this.o.targetBytes && this.uploads.size < this.maxUploads && this.failed === undefined) this.close();
      }
    })();
    this.uploads.add(done);
  }
}
