/**
 * Stand-ins for the bank's chunker and chunk store, for tree-archive tests that need neither keys
 * nor a store: a gear-hash content-defined cutter (small sizes, so small trees make many chunks)
 * and an in-memory chunk store keyed by sha256 that counts what it stores and serves.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../../src/errors';
import type { ChunkCutter, ChunkStore } from '../../src/bank/types';

/** A gear table from a fixed seed (xorshift32), so tests cut the same way every run. */
function gearTable(seed: number): Uint32Array {
  const t = new Uint32Array(256);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    t[i] = x;
  }
  return t;
}

/** Content-defined chunks between min and max bytes, about avg (a power of two) on random data. */
export class TestCutter implements ChunkCutter {
  private readonly gear = gearTable(0x9e3779b9);
  private readonly mask: number;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private hash = 0;

  readonly maxChunk: number;

  constructor(private readonly sizes = { min: 8 * 1024, avg: 32 * 1024, max: 128 * 1024 }) {
    this.mask = sizes.avg - 1;
    this.maxChunk = sizes.max;
  }

  /** Its chunks are copies, which serve as views too. */
  pushViews(data: Buffer): Buffer[] {
    return this.push(data);
  }

  endView(): Buffer | null {
    return this.end();
  }

  private room = Buffer.alloc(0);

  space(): Buffer {
    if (this.room.length !== this.maxChunk) this.room = Buffer.alloc(this.maxChunk);
    return this.room;
  }

  commitViews(n: number): Buffer[] {
    return this.push(this.room.subarray(0, n));
  }

  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < data.length; i++) {
      this.hash = ((this.hash << 1) + this.gear[data[i]]) >>> 0;
      const len = this.pendingLen + (i - from + 1);
      if ((len >= this.sizes.min && (this.hash & this.mask) === 0) || len >= this.sizes.max) {
        this.pending.push(data.subarray(from, i + 1));
        out.push(Buffer.concat(this.pending));
        this.pending = [];
        this.pendingLen = 0;
        this.hash = 0;
        from = i + 1;
      }
    }
    if (from < data.length) {
      this.pending.push(Buffer.from(data.subarray(from)));
      this.pendingLen += data.length - from;
    }
    return out;
  }

  end(): Buffer | null {
    if (this.pendingLen === 0) return null;
    const last = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingLen = 0;
    this.hash = 0;
    return last;
  }
}

/** Chunks in memory by sha256; counts puts, new chunks stored and gets. */
export class MemoryChunks implements ChunkStore {
  readonly stored = new Map<string, Buffer>();
  puts = 0;
  gets = 0;
  private uploaded = 0;

  idOf(plain: Buffer): string {
    return createHash('sha256').update(plain).digest('hex');
  }

  holds(id: string): boolean {
    return this.stored.has(id);
  }

  async put(plain: Buffer, known?: string): Promise<string> {
    this.puts++;
    const id = known ?? this.idOf(plain);
    if (!this.stored.has(id)) {
      this.stored.set(id, Buffer.from(plain));
      this.uploaded += plain.length;
    }
    return id;
  }

  /**
   * A copy of the chunk, as a bank's store hands out memory of its own: release scribbles over it,
   * so a restore that read a chunk after giving it back would write the wrong bytes.
   */
  async get(id: string): Promise<Buffer> {
    this.gets++;
    const b = this.stored.get(id);
    if (!b) throw new FerryError('BANK_CORRUPT', `chunk ${id} is missing`);
    const copy = Buffer.from(b);
    this.handedOut.add(copy);
    return copy;
  }

  /** Buffers get returned and not given back yet. */
  private readonly handedOut = new Set<Buffer>();
  released = 0;

  /** Throws on a buffer get never returned or given back twice; scribbles over the one given back. */
  release(plain: Buffer): void {
    if (!this.handedOut.delete(plain)) throw new Error('released a buffer that get did not return, or released it twice');
    plain.fill(0xee);
    this.released++;
  }

  /** Buffers get returned that were never given back. */
  get unreleased(): number {
    return this.handedOut.size;
  }

  /** Nothing waits: every put is stored when it returns. */
  async flush(): Promise<void> {}
  async close(): Promise<void> {}

  uploadedBytes(): number {
    return this.uploaded;
  }
}
