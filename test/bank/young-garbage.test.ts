import { expect } from 'chai';
import { YoungGarbage } from '../../src/bank/young-garbage';

describe('bank: YoungGarbage asks for a minor collection after every so many bytes', () => {
  const g = globalThis as { gc?: unknown };
  let saved: unknown;
  beforeEach(() => (saved = g.gc));
  afterEach(() => (g.gc = saved));

  it('once per `everyBytes` made, minor only, counting from zero after each', () => {
    const asked: unknown[] = [];
    g.gc = (o: unknown) => asked.push(o);
    const y = new YoungGarbage(1000);
    for (const n of [400, 500]) y.made(n);
    expect(asked).to.have.length(0);
    y.made(100); // 1000 reached
    expect(asked).to.deep.equal([{ type: 'minor' }]);
    y.made(999);
    expect(asked).to.have.length(1);
    y.made(5000); // one large piece: one collection, not five
    expect(asked).to.have.length(2);
  });

  it('does nothing where Node runs without --expose-gc', () => {
    g.gc = undefined;
    const y = new YoungGarbage(1);
    expect(() => y.made(10)).to.not.throw();
  });
});
