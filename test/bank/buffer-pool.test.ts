import { expect } from 'chai';
import { BufferPool } from '../../src/bank/buffer-pool';

describe('bank: buffer pool', () => {
  const MiB = 1024 * 1024;

  it('makes buffers in whole steps of what is asked, and takes the smallest spare that fits', () => {
    const made: number[] = [];
    const pool = new BufferPool(4, (n) => {
      made.push(n);
      return Buffer.allocUnsafe(n);
    });
    const a = pool.take(1);
    const b = pool.take(MiB + 1);
    const c = pool.take(3 * MiB);
    expect(made).to.deep.equal([MiB, 2 * MiB, 3 * MiB]);
    pool.give(c);
    pool.give(a);
    pool.give(b);
    expect(pool.take(MiB + 5).length, 'the 2 MiB spare, not the 3 MiB one').to.equal(2 * MiB);
    expect(pool.take(10).length).to.equal(MiB);
    expect(pool.take(4 * MiB).length, 'nothing fits: a new one').to.equal(4 * MiB);
    expect(made).to.deep.equal([MiB, 2 * MiB, 3 * MiB, 4 * MiB]);
  });

  it('keeps at most `keep` spares, dropping the smallest', () => {
    const pool = new BufferPool(2, (n) => Buffer.allocUnsafe(n), 1);
    for (const n of [5, 1, 9]) pool.give(Buffer.allocUnsafe(n));
    expect(pool.size).to.equal(2);
    expect(pool.take(1).length).to.equal(5);
    expect(pool.take(1).length).to.equal(9);
  });
});
