import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
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
