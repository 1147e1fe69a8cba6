import { expect } from 'chai';
import { mapLimit } from '../../src/bank/map-limit';

/* mapLimit: bounded concurrency, results in order, and what a failure stops. */

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('bank: mapLimit', function () {
  it('answers in input order with at most `limit` calls in flight', async function () {
    let running = 0;
    let most = 0;
    const got = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (n, i) => {
      most = Math.max(most, ++running);
      for (let k = 0; k < n; k++) await tick();
      running--;
      return `${i}:${n}`;
    });
    expect(got).to.deep.equal(['0:5', '1:1', '2:4', '3:2', '4:3', '5:0']);
    expect(most).to.equal(2);
  });

  it('after the first failure starts no item, lets the calls in flight settle, then throws that first error', async function () {
    const started: number[] = [];
    let settled = 0;
    let running = 0;
    const err = await mapLimit([0, 1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
      started.push(i);
      running++;
      try {
        for (let k = 0; k < (i === 1 ? 1 : 4); k++) await tick();
        if (i === 1) throw new Error('one failed');
        if (i === 2) throw new Error('a later failure');
        return i;
      } finally {
        running--;
        settled++;
      }
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.equal('one failed');
    // Items 0..2 were in flight when 1 failed (3 takes 1's place only if 1 had succeeded).
    expect(started).to.deep.equal([0, 1, 2]);
    expect(running, 'nothing still running once it threw').to.equal(0);
    expect(settled).to.equal(3);
  });
});
