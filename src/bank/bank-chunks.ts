/**
 * A bank's chunks by id (the ChunkStore the tree archive writes through). put: id = HMAC, then seal
 * and append to a pack (pack-writer.ts) unless the bank has the id; flush stores the last pack and
 * every index. get: locate the chunk in the bank's index, a ranged read of its pack, open, and check
 * the HMAC again. At most `sealing` puts seal at once (8); further puts wait their turn, and the pack
 * writer holds puts back while its uploads are busy, so memory stays bounded however many the
 * caller starts (8 sealed chunks + 3 packs: about 100 MiB at the most with the default sizes).
 */
import { createHmac } from 'node:crypto';
import { FerryError } from '../errors';
import { packKey, type BankIndex, type ChunkLocation } from './pack-index';
import { PackWriter } from './pack-writer';
import type { Sealer } from './sealer';
import type { BankStore, ChunkStore } from './types';

const CHUNK_ID = /^[0-9a-f]{64}$/;

/** Object key of chunk `id`: `chunks/<id[0..2]>/<id>`. */
export function chunkKey(id: string): string {
  return `chunks/${id.slice(0, 2)}/${id}`;
}

/** The chunk id in an object key of `chunks/`, or null when the key is not a chunk's. */
export function chunkIdOfKey(key: string): string | null {
  const m = /^chunks\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  return m && m[2].startsWith(m[1]) ? m[2] : null;
}

export function chunkId(idKey: Buffer, plain: Buffer): string {
  return createHmac('sha256', idKey).update(plain).digest('hex');
}

/** A counting semaphore: at most `n` holders. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(n: number) {
    this.free = n;
  }
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

export interface BankChunksOptions {
  /** Ids the bank is known to hold (a backup reads the index once under its lock); put skips them and adds what it stores. Without it, put looks ids up in the bank's index. */
  trusted?: Set<string>;
  /** Told the sealed size of each chunk stored, once its pack and index are. */
  onUpload?: (bytes: number) => void;
  /** Puts sealing at once (default 8). */
  sealing?: number;
  /** Packs being stored at once (default 2). */
  uploading?: number;
  /** The bank's index, when the caller has read it already (check gives the one it verified). */
  index?: BankIndex;
}

export class BankChunks implements ChunkStore {
  private readonly trusted: Set<string> | undefined;
  /** Puts of an id under way: a second put of it waits for the first. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly sealSlots: Slots;
  private readonly writer: PackWriter;
  private uploaded = 0;
  private index: Promise<BankIndex> | undefined;

  constructor(
    private readonly store: BankStore,
    private readonly idKey: Buffer,
    private readonly sealer: Sealer,
    /** Reads the bank's index (once per BankChunks, on first need). */
    private readonly loadIndex: () => Promise<BankIndex>,
    targetBytes: number,
    private readonly o: BankChunksOptions = {},
  ) {
    this.trusted = o.trusted;
    this.sealSlots = new Slots(o.sealing ?? 8);
    if (o.index) this.index = Promise.resolve(o.index);
    this.writer = new PackWriter(store, sealer, {
      targetBytes,
      uploading: o.uploading,
      onStored: (_pack, entries) => {
        for (const e of entries) {
          this.trusted?.add(e.id);
          this.uploaded += e.length;
          this.o.onUpload?.(e.length);
        }
      },
    });
  }

  private bankIndex(): Promise<BankIndex> {
    if (!this.index) {
      this.index = this.loadIndex();
      this.index.catch(() => (this.index = undefined)); // a failed read is tried again next time
    }
    return this.index;
  }

  async put(plain: Buffer): Promise<string> {
    const id = chunkId(this.idKey, plain);
    if (this.trusted?.has(id) || this.writer.has(id)) return id;
    const under = this.pending.get(id);
    if (under) {
      await under;
      return id;
    }
    const done = this.add(id, plain);
    this.pending.set(id, done);
    try {
      await done;
    } finally {
      this.pending.delete(id);
    }
    return id;
  }

  private async add(id: string, plain: Buffer): Promise<void> {
    // A put holds its sealing slot until its chunk is in a pack: at most `sealing` sealed chunks
    // wait outside the packs, however many puts the caller starts.
    await this.sealSlots.take();
    try {
      if (!this.trusted && (await this.bankIndex()).chunks.has(id)) return;
      const sealed = await this.sealer.seal(plain, chunkKey(id));
      await this.writer.add(id, sealed);
    } finally {
      this.sealSlots.give();
    }
  }

  async flush(): Promise<void> {
    await this.writer.flush();
  }

  /** Where chunk `id` lies (its pack, offset and sealed length), or undefined when the bank lacks it. */
  async locate(id: string): Promise<ChunkLocation | undefined> {
    if (this.writer.has(id) && !this.writer.locate(id)) await this.writer.flush();
    return this.writer.locate(id) ?? (await this.bankIndex()).chunks.get(id);
  }

  async get(id: string): Promise<Buffer> {
    if (!CHUNK_ID.test(id)) throw new FerryError('BANK_CORRUPT', `"${id}" is not a chunk id; a tree in bank ${this.store.url} is damaged`);
    const missing = (where: string): FerryError =>
      new FerryError('BANK_CORRUPT', `chunk ${id} is missing from bank ${this.store.url} (${where}); run ferry bank check to see which checkpoints it breaks`, { details: { chunk: id, problem: 'missing' } });
    const loc = await this.locate(id);
    if (!loc) throw missing('no index lists it');
    let sealed: Buffer | null;
    try {
      sealed = await this.store.getRange(packKey(loc.pack), loc.offset, loc.length);
    } catch (err) {
      // A pack shorter than its index says: the chunk's bytes are not all there.
      if (err instanceof FerryError && err.code === 'BANK_CORRUPT') {
        throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} is cut short in pack ${loc.pack}; run ferry bank check to see which checkpoints it breaks`, { cause: err, details: { chunk: id, problem: 'corrupt' } });
      }
      throw err;
    }
    if (!sealed) throw missing(`its pack ${loc.pack} is gone`);
    const key = chunkKey(id);
    let plain: Buffer;
    try {
      plain = await this.sealer.open(sealed, key);
    } catch (err) {
      throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} does not open (damaged, or not sealed with this bank's key); run ferry bank check to see which checkpoints it breaks`, { cause: err, details: { chunk: id, problem: 'corrupt' } });
    }
    if (chunkId(this.idKey, plain) !== id) {
      throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} does not hash to its id; run ferry bank check to see which checkpoints it breaks`, { details: { chunk: id, problem: 'corrupt' } });
    }
    return plain;
  }

  uploadedBytes(): number {
    return this.uploaded;
  }
}
