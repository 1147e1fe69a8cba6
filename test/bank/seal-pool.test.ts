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
