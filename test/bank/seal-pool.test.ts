import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { keyedId, openSealed, seal } from '../../src/bank/seal';
import { InlineSealer } from '../../src/bank/sealer';
import { SealPool } from '../../src/bank/seal-pool';
import { isFerryError } from '../../src/errors';

describe('bank: seal pool (worker threads)', () => {
  const key = randomBytes(32);
  const pool = new SealPool(key, 'mem://b', 2);
  after(() => pool.close());

  it('seals many at once in threads, each opening inline and back through the pool', async () => {
    const plains = Array.from({ length: 24 }, (_, i) => (i % 2 ? randomBytes(100_000 + i) : Buffer.from(`row ${i} `.repeat(20_000))));
    const sealed = await Promise.all(plains.map((p, i) => pool.seal(p, `chunks/00/${i}`)));
    sealed.forEach((s, i) => expect(openSealed(key, s, `chunks/00/${i}`, 'mem://b').equals(plains[i])).to.equal(true));
    const opened = await Promise.all(sealed.map((s, i) => pool.open(s, `chunks/00/${i}`)));
    opened.forEach((o, i) => expect(o.equals(plains[i])).to.equal(true));
  });

  it('leaves the caller its buffer, also a view into a larger one', async () => {
    const big = randomBytes(1 << 20);
    const view = big.subarray(1000, 5000);
    const s = await pool.seal(view, 'k');
    expect(view.length).to.equal(4000);
    expect(big.length).to.equal(1 << 20);
    expect(openSealed(key, s, 'k', 'mem://b').equals(view)).to.equal(true);
  });

  it('seals a taken input without a copy: sealed over that buffer when it fits, in a new one when not; the input reused after release', async () => {
    // Compressible (sealed smaller), incompressible (sealed 30 bytes longer: fits in a 1 MiB step
    // unless the chunk nearly fills it), and one that fills its buffer exactly (sealed elsewhere).
    for (const [label, plain] of [
      ['text', Buffer.from('line of text '.repeat(40_000))],
      ['random', randomBytes(700_000)],
      ['full', randomBytes(1024 * 1024)],
    ] as const) {
      const input = pool.takeInput(plain.length);
      plain.copy(input);
      const { sealed, release } = await pool.sealInput(input, plain.length, `chunks/aa/${label}`);
      expect(openSealed(key, sealed, `chunks/aa/${label}`, 'mem://b').equals(plain), label).to.equal(true);
      const inPlace = sealed.buffer.byteLength >= 1024 * 1024 && sealed.byteOffset === 0 && sealed.buffer.byteLength !== sealed.length;
      expect(inPlace, `${label}: sealed over its input`).to.equal(label !== 'full');
      release();
    }
    // A later input may be the one given back: what was sealed before is no longer read from it.
    const again = pool.takeInput(1000);
    expect(again.buffer.byteLength).to.be.at.least(1024 * 1024);
    pool.giveInput(again);
  });

  it('seals into the buffer its plaintext lies in (inline), byte for byte as into a new one', () => {
    const plain = Buffer.from('abc '.repeat(100_000));
    const buf = Buffer.alloc(plain.length + 100);
    plain.copy(buf);
    const out = seal(key, buf.subarray(0, plain.length), 'k', buf);
    expect(out.buffer).to.equal(buf.buffer);
    expect(openSealed(key, out, 'k', 'mem://b').equals(plain)).to.equal(true);
    const raw = randomBytes(50_000);
    const rbuf = Buffer.alloc(raw.length + 64);
    raw.copy(rbuf);
    const rout = seal(key, rbuf.subarray(0, raw.length), 'r', rbuf);
    expect(rout.buffer).to.equal(rbuf.buffer);
    expect(openSealed(key, rout, 'r', 'mem://b').equals(raw)).to.equal(true);
    // Too small: a new buffer, `into` untouched.
    const small = Buffer.alloc(10);
    expect(seal(key, raw, 'r', small).buffer).to.not.equal(small.buffer);
    expect(small.equals(Buffer.alloc(10))).to.equal(true);
  });

  it('answers a damaged object with BANK_CORRUPT from the thread', async () => {
    const s = seal(key, Buffer.from('hello'), 'a');
    try {
      await pool.open(s, 'b');
      expect.fail('opened under another key');
    } catch (err) {
      expect(isFerryError(err, 'BANK_CORRUPT'), String(err)).to.equal(true);
      expect((err as Error).message).to.include('object b');
    }
  });

  it('opens and hashes on the thread: the id of the plaintext under the key given, as inline', async () => {
    const idKey = randomBytes(32);
    const plain = randomBytes(300_000);
    const s = seal(key, plain, 'chunks/ab/x');
    const got = await pool.openAndHash(s, 'chunks/ab/x', idKey);
    expect(got.plain.equals(plain)).to.equal(true);
    expect(got.id).to.equal(keyedId(idKey, plain));
    expect(got.id).to.not.equal(keyedId(randomBytes(32), plain));
    expect(await new InlineSealer(key, 'mem://b').openAndHash(s, 'chunks/ab/x', idKey)).to.deep.equal(got);
  });

  it('opens into the plaintexts given back: a given-back buffer leaves the caller (reads as empty), the next opens are right', async () => {
    const idKey = randomBytes(32);
    const plains = [randomBytes(700_000), Buffer.from('compressible row '.repeat(50_000)), randomBytes(1_500_000)];
    const sealed = plains.map((p, i) => seal(key, p, `chunks/cd/${i}`));
    const first = await pool.openAndHash(sealed[0], 'chunks/cd/0', idKey);
    expect(first.plain.equals(plains[0])).to.equal(true);
    pool.giveOutput(first.plain);
    // A buffer that is not a thread's plaintext is never taken (its memory may be shared).
    const mine = Buffer.from(plains[1]);
    pool.giveOutput(mine);
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(sealed.map((s, i) => pool.openAndHash(s, `chunks/cd/${i}`, idKey)));
      got.forEach((g, i) => {
        expect(g.plain.equals(plains[i]), `round ${round}, chunk ${i}`).to.equal(true);
        expect(g.id).to.equal(keyedId(idKey, plains[i]));
      });
      got.forEach((g) => pool.giveOutput(g.plain));
    }
    expect(first.plain.length, 'sent back to a thread: detached here').to.equal(0);
    expect(mine.equals(plains[1]), 'a buffer the pool did not make is left alone').to.equal(true);
  });

  it('opens chunks lying in shared memory where they lie (a restore range): the range stays whole and usable; damage there is found', async () => {
    const plains = [Buffer.from('row '.repeat(50_000)), randomBytes(300_000), Buffer.from('x')];
    const sealed = plains.map((p, i) => seal(key, p, `chunks/ab/${i}`));
    const range = Buffer.from(new SharedArrayBuffer(sealed.reduce((n, b) => n + b.length, 64)));
    let at = 64;
    const views = sealed.map((b) => {
      b.copy(range, at);
      const v = range.subarray(at, at + b.length);
      at += b.length;
      return v;
    });
    const idKey = randomBytes(32);
    const opened = await Promise.all(views.map((v, i) => pool.openAndHash(v, `chunks/ab/${i}`, idKey)));
    opened.forEach((o, i) => {
      expect(o.plain.equals(plains[i]), `chunk ${i}`).to.equal(true);
      expect(o.id).to.equal(keyedId(idKey, plains[i]));
      expect(o.plain.buffer, 'a plaintext of its own, never a view of the range').not.to.equal(range.buffer);
    });
    expect(range.length, 'the range is not handed away').to.equal(at);
    expect(range.subarray(64, 64 + sealed[0].length).equals(sealed[0])).to.equal(true);
    range[64 + sealed[0].length + 40] ^= 1;
    const err = await pool.openAndHash(views[1], 'chunks/ab/1', idKey).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isFerryError(err, 'BANK_CORRUPT'), String(err)).to.equal(true);
  });

  it('refuses work after close', async () => {
    const p = new SealPool(key, 'mem://b', 1);
    await p.seal(Buffer.from('x'), 'k');
    await p.close();
    try {
      await p.seal(Buffer.from('x'), 'k');
      expect.fail('sealed after close');
    } catch (err) {
      expect(isFerryError(err, 'INTERNAL')).to.equal(true);
    }
  });
});
