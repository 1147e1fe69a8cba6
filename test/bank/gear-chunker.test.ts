import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { cutAll, DEFAULT_CHUNKER, GearChunker, gearTable, type ChunkerParams } from '../../src/bank/gear-chunker';
import { subkey } from '../../src/bank/bank-keys';

/** Deterministic pseudo-random bytes (the same every run): SHA-256 in counter mode. */
function prng(seed: string, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  for (let i = 0; at < n; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    at += block.copy(out, at);
  }
  return out;
}

const KEY = Buffer.alloc(32, 7);
const gearOf = (key: Buffer, bank = 'bank-1'): Int32Array => gearTable(subkey(key, bank, 'ferry-bank gear'));
const hashes = (chunks: Buffer[]): string[] => chunks.map((c) => createHash('sha256').update(c).digest('hex'));
const SMALL: ChunkerParams = { min: 2048, avg: 8192, max: 32768 };

describe('bank: gear chunker (FastCDC)', () => {
  const data = prng('data', 24 * 1024 * 1024);
  const gear = gearOf(KEY);

  it('cuts 24 MiB of random data into chunks between min and max, averaging near 1 MiB, reassembling exactly', () => {
    const chunks = cutAll(new GearChunker(gear), data);
    expect(Buffer.concat(chunks).equals(data)).to.equal(true);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).to.be.at.least(DEFAULT_CHUNKER.min + 1);
      expect(c.length).to.be.at.most(DEFAULT_CHUNKER.max);
    }
    const avg = data.length / chunks.length;
    expect(avg).to.be.within(512 * 1024, 2 * 1024 * 1024);
  });

  it('finds the same boundaries however the stream is split into pushes', () => {
    const whole = hashes(cutAll(new GearChunker(gear, SMALL), data.subarray(0, 1 << 20)));
    for (const piece of [1, 7, 4096, 65536, 100_003]) {
      const c = new GearChunker(gear, SMALL);
      const out: Buffer[] = [];
      for (let at = 0; at < 1 << 20; at += piece) out.push(...c.push(data.subarray(at, Math.min(at + piece, 1 << 20))));
      const last = c.end();
      if (last) out.push(last);
      expect(hashes(out), `pushes of ${piece} bytes`).to.deep.equal(whole);
    }
  });

  // Table: where bytes are inserted (or removed) → at most how many chunks of the new stream are new.
  const edits: Array<{ name: string; edit: (d: Buffer) => Buffer; maxNew: number }> = [
    { name: 'insert 1 byte at the start', edit: (d) => Buffer.concat([Buffer.from([0x42]), d]), maxNew: 2 },
    { name: 'insert 100 bytes in the middle', edit: (d) => Buffer.concat([d.subarray(0, d.length >> 1), prng('ins', 100), d.subarray(d.length >> 1)]), maxNew: 2 },
    // A large insert is new data of its own, and normalized chunking needs a few chunks to resync: a
    // boundary the easier mask found past `avg` may not pass the harder one in a chunk that began closer.
    { name: 'insert 300 KiB in the middle', edit: (d) => Buffer.concat([d.subarray(0, 9_000_001), prng('big', 300 * 1024), d.subarray(9_000_001)]), maxNew: 5 },
    { name: 'delete 10 bytes at 5 MB', edit: (d) => Buffer.concat([d.subarray(0, 5_000_000), d.subarray(5_000_010)]), maxNew: 2 },
    { name: 'overwrite 1 byte at 15 MB', edit: (d) => { const c = Buffer.from(d); c[15_000_000] ^= 0xff; return c; }, maxNew: 2 },
    { name: 'append 1 MiB at the end', edit: (d) => Buffer.concat([d, prng('tail', 1 << 20)]), maxNew: 3 },
  ];
  const before = hashes(cutAll(new GearChunker(gear), data));
  for (const { name, edit, maxNew } of edits) {
    it(`keeps all but the chunks around the change: ${name}`, () => {
      const after = hashes(cutAll(new GearChunker(gear), edit(data)));
      const known = new Set(before);
      const fresh = after.filter((h) => !known.has(h));
      expect(fresh.length, `${fresh.length} new of ${after.length}`).to.be.at.most(maxNew);
      expect(fresh.length).to.be.at.least(1);
    });
  }

  it('respects max on data with no boundary (10 MiB of zeros)', () => {
    const zeros = Buffer.alloc(10 * 1024 * 1024);
    const chunks = cutAll(new GearChunker(gear), zeros);
    for (const c of chunks) expect(c.length).to.be.within(1, DEFAULT_CHUNKER.max);
    expect(Buffer.concat(chunks).equals(zeros)).to.equal(true);
  });

  it('never cuts before min, and a stream shorter than min is one chunk', () => {
    const chunks = cutAll(new GearChunker(gear, SMALL), data.subarray(0, 4 << 20));
    for (const c of chunks.slice(0, -1)) expect(c.length).to.be.within(SMALL.min + 1, SMALL.max);
    expect(cutAll(new GearChunker(gear, SMALL), data.subarray(0, 1000)).map((c) => c.length)).to.deep.equal([1000]);
    expect(new GearChunker(gear).end()).to.equal(null);
  });

  it('is deterministic per key and bank, and different between keys or banks', () => {
    const part = data.subarray(0, 2 << 20);
    const cuts = (g: Int32Array): number[] => cutAll(new GearChunker(g, SMALL), part).map((c) => c.length);
    expect(cuts(gearOf(KEY))).to.deep.equal(cuts(gearOf(Buffer.from(KEY))));
    expect(cuts(gearOf(KEY))).to.not.deep.equal(cuts(gearOf(randomBytes(32))));
    expect(cuts(gearOf(KEY, 'bank-1'))).to.not.deep.equal(cuts(gearOf(KEY, 'bank-2')));
  });

  it('copies what it is given: the caller may reuse its buffer after push', () => {
    const part = data.subarray(0, 3 << 20);
    const expected = hashes(cutAll(new GearChunker(gear, SMALL), part));
    const c = new GearChunker(gear, SMALL);
    const buf = Buffer.alloc(65536);
    const out: Buffer[] = [];
    for (let at = 0; at < part.length; at += buf.length) {
      part.copy(buf, 0, at, at + buf.length);
      out.push(...c.push(buf));
      buf.fill(0xee);
    }
    out.push(c.end()!);
    expect(hashes(out)).to.deep.equal(expected);
  });

  it('returns chunks the caller may keep (later pushes do not change them)', () => {
    const c = new GearChunker(gear, SMALL);
    const first = c.push(data.subarray(0, 200_000));
    const copy = first.map((b) => Buffer.from(b));
    c.push(data.subarray(200_000, 400_000));
    c.end();
    expect(first.map((b, i) => b.equals(copy[i]))).to.not.include(false);
  });

  it('hands out views with the same boundaries and bytes as push, whatever the split, without a copy per chunk', () => {
    const part = data.subarray(0, 3 << 20);
    const expected = hashes(cutAll(new GearChunker(gear, SMALL), part));
    for (const piece of [1, 4096, 32768]) {
      const c = new GearChunker(gear, SMALL);
      const got: string[] = [];
      for (let at = 0; at < part.length; at += piece) {
        const views = c.pushViews(part.subarray(at, at + piece));
        // Views share one buffer (none is a fresh allocation), and are used before the next call.
        for (const v of views) expect(v.buffer).to.equal(views[0].buffer);
        got.push(...hashes(views));
      }
      const last = c.endView();
      if (last) got.push(...hashes([last]));
      expect(got, `pushes of ${piece} bytes`).to.deep.equal(expected);
    }
  });

  it('cuts bytes read straight into space() as it cuts the same bytes pushed, whatever the read sizes', () => {
    const part = data.subarray(0, 3 << 20);
    const expected = hashes(cutAll(new GearChunker(gear, SMALL), part));
    for (const piece of [1, 1000, 4096, SMALL.max]) {
      const c = new GearChunker(gear, SMALL);
      const got: string[] = [];
      for (let at = 0; at < part.length; ) {
        const room = c.space();
        expect(room.length).to.equal(SMALL.max);
        const n = part.copy(room, 0, at, Math.min(part.length, at + piece));
        at += n;
        got.push(...hashes(c.commitViews(n)));
      }
      const last = c.endView();
      if (last) got.push(...hashes([last]));
      expect(got, `reads of ${piece} bytes`).to.deep.equal(expected);
    }
  });

  it('refuses a commitViews of more than space() gave', () => {
    const c = new GearChunker(gear, SMALL);
    c.space();
    expect(() => c.commitViews(SMALL.max + 1)).to.throw(RangeError, /0\.\.32768 bytes/);
    expect(() => c.commitViews(-1)).to.throw(RangeError);
    expect(c.commitViews(0)).to.deep.equal([]);
  });

  it('refuses a pushViews larger than its largest chunk (the caller slices)', () => {
    const c = new GearChunker(gear, SMALL);
    expect(() => c.pushViews(Buffer.alloc(SMALL.max + 1))).to.throw(RangeError, /at most 32768 bytes/);
    expect(c.pushViews(Buffer.alloc(SMALL.max))).to.have.length(1);
  });
});
