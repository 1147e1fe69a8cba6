/**
 * A bank's chunks by id (the ChunkStore the tree archive writes through). put: id = HMAC, then seal
 * and upload unless the bank has the id; get: fetch, open, and check the HMAC again.
 * At most `sealing` puts seal or upload at once (8), `uploading` of them uploading (4); further
 * puts wait their turn, so sealed bytes in memory stay bounded however many the caller starts.
 */
import { FerryError } from '../errors';
import { keyedId } from './seal';
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
  return keyedId(idKey, plain);
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
  /** Ids the bank is known to hold (a backup lists chunks/ once under its lock); put skips them and adds what it uploads. Without it, put asks the store (has) per chunk. */
  trusted?: Set<string>;
  /** Told the sealed size of each upload, as it completes. */
  onUpload?: (bytes: number) => void;
  /** Puts sealing or uploading at once (default 8), and uploads in flight (default 4). */
  sealing?: number;
  uploading?: number;
}

export class BankChunks implements ChunkStore {
  private readonly trusted: Set<string> | undefined;
  /** Puts of an id under way: a second put of it waits for the first (the manifest must not precede it). */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly sealSlots: Slots;
  private readonly uploadSlots: Slots;
  private uploaded = 0;

  constructor(
    private readonly store: BankStore,
    private readonly idKey: Buffer,
    private readonly sealer: Sealer,
    private readonly o: BankChunksOptions = {},
  ) {
    this.trusted = o.trusted;
    this.sealSlots = new Slots(o.sealing ?? 8);
    this.uploadSlots = new Slots(o.uploading ?? 4);
  }

  async put(plain: Buffer): Promise<string> {
    const id = chunkId(this.idKey, plain);
    if (this.trusted?.has(id)) return id;
    const under = this.pending.get(id);
    if (under) {
      await under;
      return id;
    }
    const done = this.upload(id, plain);
    this.pending.set(id, done);
    try {
      await done;
    } finally {
      this.pending.delete(id);
    }
    return id;
  }

  private async upload(id: string, plain: Buffer): Promise<void> {
    const key = chunkKey(id);
    // A put holds its sealing slot until its upload is done: at most `sealing` sealed chunks exist
    // at once, however many puts the caller starts.
    await this.sealSlots.take();
    try {
      if (!this.trusted && (await this.store.has(key))) return;
      const sealed = await this.sealer.seal(plain, key);
      await this.uploadSlots.take();
      try {
        await this.store.put(key, sealed);
      } finally {
        this.uploadSlots.give();
      }
      this.trusted?.add(id);
      this.uploaded += sealed.length;
      this.o.onUpload?.(sealed.length);
    } finally {
      this.sealSlots.give();
    }
  }

  async get(id: string): Promise<Buffer> {
    if (!CHUNK_ID.test(id)) throw new FerryError('BANK_CORRUPT', `"${id}" is not a chunk id; a tree in bank ${this.store.url} is damaged`);
    const key = chunkKey(id);
    const sealed = await this.store.get(key);
    if (!sealed) {
      throw new FerryError('BANK_CORRUPT', `chunk ${id} is missing from bank ${this.store.url}; run ferry bank check to see which checkpoints it breaks`, { details: { chunk: id, problem: 'missing' } });
    }
    let plain: Buffer;
    let hash: string;
    try {
      // The id is checked from the hash worked out where the chunk is opened (a seal thread), not here.
      ({ plain, id: hash } = await this.sealer.openAndHash(sealed, key, this.idKey));
    } catch (err) {
      throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} does not open (damaged, or not sealed with this bank's key); run ferry bank check to see which checkpoints it breaks`, { cause: err, details: { chunk: id, problem: 'corrupt' } });
    }
    if (hash !== id) {
      throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} does not hash to its id; run ferry bank check to see which checkpoints it breaks`, { details: { chunk: id, problem: 'corrupt' } });
    }
    return plain;
  }

  uploadedBytes(): number {
    return this.uploaded;
  }
}
