import { expect } from 'chai';
import { KeyedLock } from '../../src/agent/keyed-lock';

const tick = () => new Promise((r) => setImmediate(r));

describe('KeyedLock', function () {
  it('runs work for one key in order, one at a time, even when some fails', async function () {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (name: string, fail = false) => async () => {
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([lock.run('v', job('a')), lock.run('v', job('b', true)), lock.run('v', job('c'))]);
    expect(log).to.deep.equal(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
  });
  it('runs different keys in parallel', async function () {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
    };
    await Promise.all([lock.run('x', job('x')), lock.run('y', job('y'))]);
    expect(log.slice(0, 2)).to.deep.equal(['start x', 'start y']);
  });
});
