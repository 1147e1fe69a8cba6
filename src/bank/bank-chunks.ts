/**
 * A bank's chunks by id (the ChunkStore the tree archive writes through). put: id = HMAC, then seal
 * and append to a pack (pack-writer.ts) unless the bank has the id; flush stores the last pack and
 * every index. get: locate the chunk in the bank's index, a ranged read of its pack, open, and check
 * the HMAC again. At most `sealing` puts seal at once (8); further puts wait their turn, and the pack
 * writer holds puts back while its uploads are busy, so memory stays bounded however many the
 * caller starts (8 sealed chunks: about 40 MiB at the most with the default sizes; packs are staged on disk).
 */
import { FerryError } from '../errors';
import { packKey, type BankIndex, type ChunkLocation, type IndexEntry } from './pack-index';
import { PackWriter } from './pack-writer';
import { sharedBufferPool } from './buffer-pool';
import { keyedId } from './seal';
import type { Sealer } from './sealer';
import type { BankStore, ChunkStore } from './types';

const CHUNK_ID = /^[0-9a-f]{64}$/;
/** A get reads the chunks that follow its own in the pack with it, up to this many bytes in one request. */
export const READ_AHEAD_BYTES = 4 * 1024 * 1024;
/**
 * Range buffers holding chunks read ahead and not yet asked for, at most, in bytes (chunks are dropped
 * oldest first past it). A range's whole buffer counts while any chunk of it waits: a chunk a
 * restore asks for late would otherwise keep a 4 MiB buffer from reuse for its few hundred KiB.
 * Two ranges: a restore asks for chunks in pack order (readOrder), so what a range read ahead is
 * asked for before the next range is read.
 */
export const READ_AHEAD_HELD = 8 * 1024 * 1024;

/** A range's buffer while chunks read with it wait to be asked for. */
interface AheadRange {
  bytes: number;
  waiting: number;
}

/** Object key of chunk `id`: `chunks/<id[0..2]>/<id>`. */
export function chunkKey(id: string): string {
  return `chunks/${id.slice(0, 2)}/${id}`;
}

/** The chunk id in an object key of `chunks/`, or null when the key is not a chunk's. */
export function chunkIdOfKey(key: string): string | null {
  const m = /^chunks\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  return m && m[2].startsWith(m[1]) ? m[2] : null;
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
  /**
   * Ids the bank is known to hold (a backup reads the index once under its lock); put skips them and
   * adds what it stores. Without it, put looks ids up in the bank's index. A promise of the set lets
   * the caller work (walk the tree) while the indexes are read: puts wait for it, holds() answers
   * from what is being stored until it comes.
   */
  trusted?: Set<string> | Promise<Set<string>>;
  /** Told the sealed size of each chunk stored, once its pack and index are. */
  onUpload?: (bytes: number) => void;
  /** Puts sealing at once (default 8). */
  sealing?: number;
  /** Packs being stored at once (default 2). */
  uploading?: number;
  /** The bank's index, when the caller has read it already (check gives the one it verified). */
  index?: BankIndex;
  /** get reads the chunks after the asked one in its pack with it (default true; check's sampling turns it off). */
  readAhead?: boolean;
}

export class BankChunks implements ChunkStore {
  private trusted: Set<string> | undefined;
  /** The trusted set, while it is being read (then undefined). */
  private trustedLoading: Promise<void> | undefined;
  /** Puts of an id under way: a second put of it waits for the first. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly sealSlots: Slots;
  private readonly writer: PackWriter;
  private uploaded = 0;
  private index: Promise<BankIndex> | undefined;
  /**
   * Sealed chunks read ahead with an earlier get's range, by id, until asked for (oldest first). Each
   * is a view of its range's buffer; `release` says this chunk is done with it.
   */
  private readonly ahead = new Map<string, { sealed: Promise<Buffer>; release: () => void; range: AheadRange }>();
  /**
   * Buffers ranges are read into, reused once every chunk of a range was handed to the sealer (which
   * copies what it opens): a fresh buffer per range and a copy per chunk cost page faults, and their
   * garbage, freed late, most of a restore's memory.
   */
  private readonly rangeBuffers = sharedBufferPool(Math.ceil(READ_AHEAD_HELD / READ_AHEAD_BYTES) + 2);
  /** Bytes of the range buffers chunks read ahead are waiting in (READ_AHEAD_HELD at most). */
  private aheadBytes = 0;
  /** Ids a get returned: one asked again is read alone (its neighbours were most likely served already too). */
  private readonly served = new Set<string>();
  /** Each pack's index entries by offset (for reading ahead). */
  private readonly sorted = new Map<string, IndexEntry[]>();

  constructor(
    private readonly store: BankStore,
    private readonly idKey: Buffer,
    private readonly sealer: Sealer,
    /** Reads the bank's index (once per BankChunks, on first need). */
    private readonly loadIndex: () => Promise<BankIndex>,
    targetBytes: number,
    private readonly o: BankChunksOptions = {},
  ) {
    if (o.trusted instanceof Set) this.trusted = o.trusted;
    else if (o.trusted) {
      const loading = o.trusted.then((set) => {
        this.trusted = set;
        this.trustedLoading = undefined;
      });
      loading.catch(() => undefined); // a put awaits it and throws its error
      this.trustedLoading = loading;
    }
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

  idOf(plain: Buffer): string {
    return keyedId(this.idKey, plain);
  }

  holds(id: string): boolean {
    return this.trusted?.has(id) === true || this.writer.has(id) || this.pending.has(id);
  }

  put(plain: Buffer, known?: string): Promise<string> {
    // Not async: `plain` is read (hashed, and copied into a buffer the sealer takes) before this
    // returns, so the caller may reuse it at once (ChunkStore.put).
    const id = known ?? keyedId(this.idKey, plain);
    if (this.trusted?.has(id) || this.writer.has(id)) return Promise.resolve(id);
    const under = this.pending.get(id);
    if (under) return under.then(() => id);
    const input = this.sealer.takeInput(plain.length);
    plain.copy(input);
    const done = this.add(id, input, plain.length);
    this.pending.set(id, done);
    return done.finally(() => this.pending.delete(id)).then(() => id);
  }

  private async add(id: string, input: Buffer, length: number): Promise<void> {
    // A put holds its sealing slot until its chunk is in a pack: at most `sealing` sealed chunks
    // wait outside the packs, however many puts the caller starts.
    let mine = true; // `input` goes to the sealer, or back to it
    await this.sealSlots.take();
    try {
      if (this.trustedLoading) await this.trustedLoading;
      if (this.trusted ? this.trusted.has(id) : (await this.bankIndex()).chunks.has(id)) return;
      mine = false;
      const { sealed, release } = await this.sealer.sealInput(input, length, chunkKey(id));
      try {
        await this.writer.add(id, sealed);
      } finally {
        release();
      }
    } finally {
      if (mine) this.sealer.giveInput(input);
      this.sealSlots.give();
    }
  }

  async close(): Promise<void> {
    await this.writer.discard();
  }

  async flush(): Promise<void> {
    await this.writer.flush();
  }

  /** Where chunk `id` lies (its pack, offset and sealed length), or undefined when the bank lacks it. */
  async locate(id: string): Promise<ChunkLocation | undefined> {
    if (this.writer.has(id) && !this.writer.locate(id)) await this.writer.flush();
    return this.where(id, await this.bankIndex());
  }

  /** Where `id` lies: in a pack this store wrote, else where the bank's index says (undefined: nowhere). */
  private where(id: string, index: BankIndex): ChunkLocation | undefined {
    return this.writer.locate(id) ?? index.chunks.get(id);
  }

  /**
   * By pack, each pack's chunks by offset; packs in the order `ids` first names one of them (a
   * restore then goes through the tree about in order). Ids no index lists come first: their get
   * fails, naming the chunk, before anything else is read.
   */
  async readOrder(ids: readonly string[]): Promise<string[]> {
    const index = await this.bankIndex();
    const packRank = new Map<string, number>();
    const located: Array<{ id: string; pack: number; offset: number }> = [];
    const unknown: string[] = [];
    for (const id of ids) {
      const loc = this.where(id, index);
      if (!loc) {
        unknown.push(id);
        continue;
      }
      if (!packRank.has(loc.pack)) packRank.set(loc.pack, packRank.size);
      located.push({ id, pack: packRank.get(loc.pack)!, offset: loc.offset });
    }
    located.sort((a, b) => a.pack - b.pack || a.offset - b.offset);
    return [...unknown, ...located.map((l) => l.id)];
  }

  async get(id: string): Promise<Buffer> {
    if (!CHUNK_ID.test(id)) throw new FerryError('BANK_CORRUPT', `"${id}" is not a chunk id; a tree in bank ${this.store.url} is damaged`);
    if (this.writer.has(id) && !this.writer.locate(id)) await this.writer.flush();
    const index = await this.bankIndex();
    // From here until its range is asked for, a get does not await: gets started together see each
    // other's ranges and ask for none twice.
    const held = this.ahead.get(id);
    let got: { sealed: Buffer; release: () => void } | undefined;
    if (held) {
      this.leaveAhead(id, held.range);
      // A shared range that failed is read again alone, so the error names this chunk.
      const sealed = await held.sealed.catch(() => null);
      if (sealed) got = { sealed, release: held.release };
      else held.release();
    }
    got ??= await this.read(id, index);
    const key = chunkKey(id);
    let plain: Buffer;
    let hash: string;
    try {
      // The id is checked from the hash worked out where the chunk is opened (a seal thread), not here.
      // A thread reads the sealed bytes in the range's shared buffer until the open settles.
      ({ plain, id: hash } = await this.sealer.openAndHash(got.sealed, key, this.idKey).finally(got.release));
    } catch (err) {
      throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} does not open (damaged, or not sealed with this bank's key); run ferry bank check to see which checkpoints it breaks`, { cause: err, details: { chunk: id, problem: 'corrupt' } });
    }
    if (hash !== id) {
      throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} does not hash to its id; run ferry bank check to see which checkpoints it breaks`, { details: { chunk: id, problem: 'corrupt' } });
    }
    if (this.o.readAhead !== false) this.served.add(id);
    return plain;
  }

  release(plain: Buffer): void {
    this.sealer.giveOutput(plain);
  }

  uploadedBytes(): number {
    return this.uploaded;
  }

  /**
   * The sealed bytes of chunk `id`, read from its pack together with the chunks right after it
   * there (up to READ_AHEAD_BYTES in one ranged GET): a restore asks for chunks in about the order a
   * backup stored them, so one request serves several gets, and a store's per-request cost (Swift)
   * is paid once per range, not per chunk.
   */
  private async read(id: string, index: BankIndex): Promise<{ sealed: Buffer; release: () => void }> {
    const missing = (where: string): FerryError =>
      new FerryError('BANK_CORRUPT', `chunk ${id} is missing from bank ${this.store.url} (${where}); run ferry bank check to see which checkpoints it breaks`, { details: { chunk: id, problem: 'missing' } });
    const loc = this.where(id, index);
    if (!loc) throw missing('no index lists it');
    // A chunk asked for again: its neighbours were most likely served already too.
    const follow = this.o.readAhead === false || this.served.has(id) ? [] : this.following(id, loc, index);
    const end = follow.length > 0 ? follow[follow.length - 1].offset + follow[follow.length - 1].length : loc.offset + loc.length;
    // The range is read into a pooled buffer, given back once this chunk and each one read ahead
    // with it has let go of it (each release once) — never before the read has settled, since this
    // get holds its own share until then.
    // A range with chunks to read ahead takes a whole READ_AHEAD_BYTES buffer, so that any spare fits
    // the next one (buffers cut to each range's size would rarely be reused).
    const into = this.rangeBuffers.take(follow.length > 0 ? Math.max(end - loc.offset, READ_AHEAD_BYTES) : end - loc.offset);
    let shares = 1 + follow.length;
    const share = (): (() => void) => {
      let released = false;
      return () => {
        if (released) return;
        released = true;
        if (--shares === 0) this.rangeBuffers.give(into);
      };
    };
    const mine = share();
    const range = this.store.getRange(packKey(loc.pack), loc.offset, end - loc.offset, into);
    const waits: AheadRange = { bytes: into.buffer.byteLength, waiting: follow.length };
    if (follow.length > 0) this.aheadBytes += waits.bytes;
    for (const e of follow) {
      const sealed = range.then((b) => {
        if (!b) throw missing(`its pack ${loc.pack} is gone`);
        return b.subarray(e.offset - loc.offset, e.offset - loc.offset + e.length);
      });
      sealed.catch(() => undefined); // nobody may ask for it; a get that does reads it again alone
      this.ahead.set(e.id, { sealed, release: share(), range: waits });
    }
    for (const [old, h] of this.ahead) {
      if (this.aheadBytes <= READ_AHEAD_HELD) break;
      this.leaveAhead(old, h.range);
      h.release();
    }
    let body: Buffer | null;
    try {
      body = await range;
    } catch (err) {
      mine();
      // A pack shorter than its index says: the chunk's bytes are not all there.
      if (err instanceof FerryError && err.code === 'BANK_CORRUPT') {
        if (follow.length > 0) return { sealed: await this.readAlone(id, loc), release: () => undefined };
        throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} is cut short in pack ${loc.pack}; run ferry bank check to see which checkpoints it breaks`, { cause: err, details: { chunk: id, problem: 'corrupt' } });
      }
      throw err;
    }
    if (!body) {
      mine();
      throw missing(`its pack ${loc.pack} is gone`);
    }
    return { sealed: body.subarray(0, loc.length), release: mine };
  }

  /** Chunk `id` no longer waits in the read-ahead (asked for, or dropped); its range stops counting once none does. */
  private leaveAhead(id: string, range: AheadRange): void {
    this.ahead.delete(id);
    if (--range.waiting === 0) this.aheadBytes -= range.bytes;
  }

  /** One chunk's bytes alone (after a longer range failed). */
  private async readAlone(id: string, loc: ChunkLocation): Promise<Buffer> {
    try {
      const b = await this.store.getRange(packKey(loc.pack), loc.offset, loc.length);
      if (!b) throw new FerryError('BANK_CORRUPT', `chunk ${id} is missing from bank ${this.store.url} (its pack ${loc.pack} is gone); run ferry bank check to see which checkpoints it breaks`, { details: { chunk: id, problem: 'missing' } });
      return b;
    } catch (err) {
      if (err instanceof FerryError && err.code === 'BANK_CORRUPT' && err.details?.problem === undefined) {
        throw new FerryError('BANK_CORRUPT', `chunk ${id} of bank ${this.store.url} is cut short in pack ${loc.pack}; run ferry bank check to see which checkpoints it breaks`, { cause: err, details: { chunk: id, problem: 'corrupt' } });
      }
      throw err;
    }
  }

  /** The chunks stored right after `loc` in its pack, back to back, that one range may read with it. */
  private following(id: string, loc: ChunkLocation, index: BankIndex): IndexEntry[] {
    let entries = this.sorted.get(loc.pack);
    if (!entries) {
      entries = [...(index.packs.get(loc.pack) ?? [])].sort((a, b) => a.offset - b.offset);
      this.sorted.set(loc.pack, entries);
    }
    let i = entries.findIndex((e) => e.offset === loc.offset && e.id === id);
    const out: IndexEntry[] = [];
    if (i < 0) return out;
    let end = loc.offset + loc.length;
    for (i++; i < entries.length; i++) {
      const e = entries[i];
      if (e.offset !== end || e.offset + e.length - loc.offset > READ_AHEAD_BYTES) break;
      // Read ahead only chunks this pack is the bank's place for, and not already held.
      if (index.chunks.get(e.id)?.pack !== loc.pack || this.ahead.has(e.id) || this.served.has(e.id)) break;
      out.push(e);
      end += e.length;
    }
    return out;
  }
}
