/**
 * Fills packs with sealed chunks and stores them: a pack is closed once it passes `targetBytes` (or
 * at flush), then stored, then its index (pack-index.ts), so a pack is never indexed before it is
 * whole. At most `uploading` packs (2) are being stored while one fills; add waits while the filling
 * pack is full and every upload slot is taken. Peak memory: (uploading + 1) packs of up to
 * targetBytes + one sealed chunk (~3 x 20 MiB with the defaults).
 */
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
  parts: Buffer[];
  entries: IndexEntry[];
  bytes: number;
}

function emptyPack(): OpenPack {
  return { id: newPackId(), parts: [], entries: [], bytes: 0 };
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

  /** Appends sealed chunk `id` to the filling pack (waits while it is full and uploads are busy). */
  async add(id: string, sealed: Buffer): Promise<void> {
    this.throwIfFailed();
    while (this.filling.bytes >= this.o.targetBytes && this.uploads.size >= this.maxUploads) await Promise.race(this.uploads);
    this.throwIfFailed();
    if (this.added.has(id)) return;
    const p = this.filling;
    p.entries.push({ id, offset: p.bytes, length: sealed.length });
    p.parts.push(sealed);
    p.bytes += sealed.length;
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
    const body = Buffer.concat(p.parts, p.bytes);
    p.parts = [];
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
        this.uploads.delete(done as Promise<void>);
        // A pack that filled while every slot was busy goes now.
        if (this.filling.bytes >= this.o.targetBytes && this.uploads.size < this.maxUploads && this.failed === undefined) this.close();
      }
    })();
    this.uploads.add(done);
  }
}
