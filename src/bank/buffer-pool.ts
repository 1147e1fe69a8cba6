/**
 * Reusable memory for chunks: a fresh megabyte costs page faults on every 4 KiB first written (and,
 * on the event loop, garbage collections to give it back), so the bank's hot paths take buffers
 * from a pool and give them back. Buffers are made in whole steps (1 MiB) of what was asked, and
 * a request takes the smallest spare that fits, so chunks of about 1 MiB do not each hold the
 * largest chunk's size. At most `keep` spares are kept (the smallest goes first).
 */
export class BufferPool<T extends { readonly byteLength: number }> {
  private readonly spare: T[] = [];

  constructor(
    private readonly keep: number,
    private readonly make: (bytes: number) => T,
    private readonly step = 1024 * 1024,
  ) {}

  /** A buffer of at least `bytes` (its contents are whatever it held before). */
  take(bytes: number): T {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const len = this.spare[i].byteLength;
      if (len >= bytes && (best < 0 || len < this.spare[best].byteLength)) best = i;
    }
    if (best >= 0) return this.spare.splice(best, 1)[0];
    return this.make(Math.ceil(Math.max(bytes, 1) / this.step) * this.step);
  }

  give(buf: T): void {
    this.spare.push(buf);
    if (this.spare.length <= this.keep) return;
    let smallest = 0;
    for (let i = 1; i < this.spare.length; i++) if (this.spare[i].byteLength < this.spare[smallest].byteLength) smallest = i;
    this.spare.splice(smallest, 1);
  }

  /** Spares held now (tests). */
  get size(): number {
    return this.spare.length;
  }
}

/**
 * A pool of Buffers over SharedArrayBuffers: a seal thread reads the bytes where they lie, with no
 * copy and no transfer (a restore's ranges: several chunks opened on two threads from one buffer).
 */
export function sharedBufferPool(keep: number): BufferPool<Buffer> {
  return new BufferPool(keep, (n) => Buffer.from(new SharedArrayBuffer(n)));
}
