import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createCipheriv } from 'node:crypto';
import { Compressor } from 'zstd-napi';
import { CCtx } from 'zstd-napi/binding';
import { looksIncompressible, openSealed, seal, SEAL_OVERHEAD } from '../../src/bank/seal';
import { isFerryError } from '../../src/errors';

const KEY = randomBytes(32);

function expectCorrupt(fn: () => unknown, mentions: string): void {
  try {
    fn();
  } catch (err) {
    expect(isFerryError(err, 'BANK_CORRUPT'), String(err)).to.equal(true);
    expect((err as Error).message).to.include(mentions);
    return;
  }
  expect.fail('opened a damaged object');
}

describe('bank: seal', () => {
  const cases: Array<{ name: string; plain: Buffer; compressed: boolean }> = [
    { name: 'empty', plain: Buffer.alloc(0), compressed: false },
    { name: 'text (compresses)', plain: Buffer.from('ferry '.repeat(100_000)), compressed: true },
    { name: 'random 1 MiB (kept raw)', plain: randomBytes(1 << 20), compressed: false },
    { name: 'one byte', plain: Buffer.from([9]), compressed: false },
  ];
  for (const { name, plain, compressed } of cases) {
    it(`round-trips ${name}, compressing only when it saves 2%`, () => {
      const sealed = seal(KEY, plain, 'chunks/ab/abcd');
      expect(sealed[0]).to.equal(1);
      if (compressed) expect(sealed.length).to.be.below(plain.length / 10);
      else expect(sealed.length).to.equal(plain.length + SEAL_OVERHEAD);
      expect(openSealed(KEY, sealed, 'chunks/ab/abcd', 'mem://b').equals(plain)).to.equal(true);
    });
  }

  describe('sealed into the buffer the plaintext lies in: enciphered in 64 KiB pieces, no write ahead of a read', () => {
    const P = 64 * 1024;
    for (const n of [1, 13, 14, 15, P - 1, P, P + 1, P + 13, P + 14, 3 * P + 5, (1 << 20) + 7]) {
      for (const kind of ['random (raw)', 'text (zstd)'] as const) {
        it(`${kind}, ${n} bytes`, () => {
          const plain = kind === 'random (raw)' ? randomBytes(n) : Buffer.from('log line 0123456789\n'.repeat(Math.ceil(n / 20))).subarray(0, n);
          const buf = Buffer.alloc(n + SEAL_OVERHEAD + 64, 0xa5);
          plain.copy(buf);
          const sealed = seal(KEY, buf.subarray(0, n), 'chunks/cd/in', buf);
          expect(sealed.buffer).to.equal(buf.buffer);
          expect(openSealed(KEY, sealed, 'chunks/cd/in', 'mem://b').equals(plain)).to.equal(true);
        });
      }
    }
  });

  it('uses a fresh nonce each time (two seals of one plaintext differ)', () => {
    const p = Buffer.from('same');
    expect(seal(KEY, p, 'k').equals(seal(KEY, p, 'k'))).to.equal(false);
  });

  it('refuses a flipped bit anywhere (nonce, body, tag) with BANK_CORRUPT naming the object', () => {
    const sealed = seal(KEY, Buffer.from('ferry '.repeat(1000)), 'checkpoints/x');
    for (const at of [1, 5, 13, 20, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] ^= 0x10;
      expectCorrupt(() => openSealed(KEY, bad, 'checkpoints/x', 'mem://b'), 'checkpoints/x');
    }
  });

  it('refuses a blob moved to another key (the AD), a wrong seal key, a short or unknown-version blob', () => {
    const sealed = seal(KEY, Buffer.from('hello'), 'chunks/aa/aa01');
    expectCorrupt(() => openSealed(KEY, sealed, 'chunks/aa/aa02', 'mem://b'), 'chunks/aa/aa02');
    expectCorrupt(() => openSealed(randomBytes(32), sealed, 'chunks/aa/aa01', 'mem://b'), 'fails authentication');
    expectCorrupt(() => openSealed(KEY, sealed.subarray(0, 20), 'chunks/aa/aa01', 'mem://b'), 'too short');
    const v2 = Buffer.from(sealed);
    v2[0] = 2;
    expectCorrupt(() => openSealed(KEY, v2, 'chunks/aa/aa01', 'mem://b'), 'version');
  });

  describe('incompressible chunks skip zstd (samples at the start, middle and end)', () => {
    const ctx = new CCtx();
    const out = Buffer.allocUnsafe(1 << 20);
    const text = (n: number): Buffer => Buffer.from('INFO a log line that repeats itself\n'.repeat(Math.ceil(n / 36))).subarray(0, n);
    const table: Array<{ name: string; plain: Buffer; skip: boolean }> = [
      { name: 'random 1 MiB', plain: randomBytes(1 << 20), skip: true },
      { name: 'text 1 MiB', plain: text(1 << 20), skip: false },
      { name: 'random, then text in its last quarter', plain: Buffer.concat([randomBytes(768 << 10), text(256 << 10)]), skip: false },
      { name: 'text, then random', plain: Buffer.concat([text(64 << 10), randomBytes(960 << 10)]), skip: false },
      { name: 'random but small (under 8 samples): zstd decides', plain: randomBytes(100_000), skip: false },
    ];
    for (const t of table) {
      it(`${t.name}: ${t.skip ? 'stored raw without trying' : 'tried with zstd'}`, () => {
        expect(looksIncompressible(t.plain, ctx, out)).to.equal(t.skip);
        expect(openSealed(KEY, seal(KEY, t.plain, 'k'), 'k', 'b').equals(t.plain)).to.equal(true);
      });
    }
    it('a raw random chunk costs only the seal overhead', () => {
      const plain = randomBytes(1 << 20);
      expect(seal(KEY, plain, 'k').length).to.equal(plain.length + SEAL_OVERHEAD);
    });
  });
});

describe('bank: seal opens into the caller\'s buffers', () => {
  /** A sealed object by hand: [1][nonce][AES-GCM of flag + payload][tag], as seal() lays it out. */
  function sealByHand(flag: number, payload: Buffer, ad: string): Buffer {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', KEY, nonce);
    c.setAAD(Buffer.from(ad, 'utf8'));
    const body = Buffer.concat([c.update(Buffer.from([flag])), c.update(payload), c.final()]);
    return Buffer.concat([Buffer.from([1]), nonce, body, c.getAuthTag()]);
  }

  for (const [name, plain] of [
    ['raw (random, 300 KiB)', randomBytes(300 * 1024)],
    ['zstd (text, 1.2 MB)', Buffer.from('a line of a log file\n'.repeat(60_000))],
  ] as const) {
    it(`${name}: the plaintext is a view at the start of the buffer taken, sized exactly`, () => {
      const sealed = seal(KEY, plain, 'chunks/ef/x');
      const asked: number[] = [];
      const given = Buffer.alloc(2 * 1024 * 1024, 0xee);
      const out = openSealed(KEY, sealed, 'chunks/ef/x', 'mem://b', (n) => (asked.push(n), given));
      expect(asked).to.deep.equal([plain.length]);
      expect(out.buffer).to.equal(given.buffer);
      expect(out.byteOffset).to.equal(given.byteOffset);
      expect(out.equals(plain)).to.equal(true);
    });
  }

  it('a zstd frame without its size (not what seal writes) still opens, into a buffer of its own', () => {
    const plain = Buffer.from('no size in this frame '.repeat(10_000));
    const cmp = new Compressor();
    cmp.setParameters({ contentSizeFlag: false });
    const sealed = sealByHand(1, cmp.compress(plain), 'k');
    let taken = 0;
    const out = openSealed(KEY, sealed, 'k', 'mem://b', (n) => (taken++, Buffer.alloc(n)));
    expect(out.equals(plain)).to.equal(true);
    expect(taken).to.equal(0);
  });

  it('refuses a frame whose recorded size is not what it holds, and a damaged tag before anything is returned', () => {
    const plain = Buffer.from('sized '.repeat(20_000));
    const frame = new Compressor().compress(plain);
    // Ask for more than the frame holds: decompressing into exactly the recorded size must fail or mismatch.
    const short = sealByHand(1, frame.subarray(0, frame.length - 8), 'k');
    expectCorrupt(() => openSealed(KEY, short, 'k', 'mem://b', (n) => Buffer.alloc(n)), 'object k');
    const sealed = seal(KEY, randomBytes(100_000), 'k');
    sealed[sealed.length - 1] ^= 1;
    expectCorrupt(() => openSealed(KEY, sealed, 'k', 'mem://b', (n) => Buffer.alloc(n)), 'fails authentication');
  });
});
