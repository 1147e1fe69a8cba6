import { FerryError } from '../../src/errors';
import type { BankStore, ObjectWriter, StoredObject } from '../../src/bank/types';

/**
 * An in-memory BankStore for the bank's unit tests (the real file:// and s3:// stores have their own
 * contract suite). Counts its calls, and can refuse writes or be told to fail, as real stores do.
 */
export class MemoryBankStore implements BankStore {
  readonly objects = new Map<string, { body: Buffer; modifiedMs: number }>();
  readonly calls = { put: 0, get: 0, getRange: 0, has: 0, list: 0, delete: 0 };
  /** Keys read by get, in order. */
  readonly gets: string[] = [];
  readOnly = false;
  /** When set, every call throws BANK_UNAVAILABLE (a store that went away). */
  down = false;

  constructor(readonly url = 'mem://bank', private readonly now: () => number = Date.now) {}

  private check(write: boolean): void {
    if (this.down) throw new FerryError('BANK_UNAVAILABLE', `bank ${this.url} is unreachable (test store down)`);
    if (write && this.readOnly) throw new FerryError('BANK_READ_ONLY', `bank ${this.url} refuses writes (test store read-only)`);
  }

  async put(key: string, body: Buffer): Promise<void> {
    this.check(true);
    this.calls.put++;
    this.objects.set(key, { body: Buffer.from(body), modifiedMs: this.now() });
  }

  /** Pieces kept until commit, then put whole (counted as one put); the contract's misuses fail. */
  create(key: string): ObjectWriter {
    const pieces: { bytes: Buffer; at: number }[] = [];
    let done = false;
    return {
      write: async (bytes, at) => {
        if (done) throw new FerryError('INTERNAL', `a piece was written to ${key} after it was committed or aborted`);
        pieces.push({ bytes: Buffer.from(bytes), at });
      },
      commit: async (size) => {
        if (done) throw new FerryError('INTERNAL', `${key} was committed twice, or after it was aborted`);
        done = true;
        const written = pieces.reduce((n, p) => Math.max(n, p.at + p.bytes.length), 0);
        if (written !== size) throw new FerryError('INTERNAL', `${key} of ${size} bytes was committed with ${written} bytes written`);
        const body = Buffer.alloc(size);
        for (const p of pieces) p.bytes.copy(body, p.at);
        await this.put(key, body);
      },
      abort: async () => {
        done = true;
      },
    };
  }

  async get(key: string): Promise<Buffer | null> {
    this.check(false);
    this.calls.get++;
    this.gets.push(key);
    const o = this.objects.get(key);
    return o ? Buffer.from(o.body) : null;
  }

  async getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer | null> {
    this.check(false);
    this.calls.getRange++;
    this.gets.push(key);
    const o = this.objects.get(key);
    if (!o) return null;
    if (offset + length > o.body.length) throw new FerryError('BANK_CORRUPT', `object ${key} of bank ${this.url} ends before byte ${offset + length}`);
    // Into the caller's buffer when it is given, as the real stores do: reuse of it is then tested too.
    if (into && into.length >= length) {
      o.body.copy(into, 0, offset, offset + length);
      return into.subarray(0, length);
    }
    return Buffer.from(o.body.subarray(offset, offset + length));
  }

  async has(key: string): Promise<boolean> {
    this.check(false);
    this.calls.has++;
    return this.objects.has(key);
  }

  async list(prefix: string): Promise<StoredObject[]> {
    this.check(false);
    this.calls.list++;
    return [...this.objects.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, o]) => ({ key, size: o.body.length, modifiedMs: o.modifiedMs }));
  }

  async delete(keys: readonly string[]): Promise<void> {
    this.check(true);
    this.calls.delete++;
    for (const k of keys) this.objects.delete(k);
  }

  /** Keys under `prefix`, sorted (for assertions). */
  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}
