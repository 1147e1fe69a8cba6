import { expect } from 'chai';
import { ExtentLedger, takeChunk, type Piece, type PlacedExtent } from '../../src/bank/tree-extents';

describe('bank tree extents: the bytes of each chunk assigned to the files they came from', () => {
  const cases: Array<{ name: string; pending: Piece[]; length: number; extents: Omit<PlacedExtent, 'chunk'>[]; rest: Piece[] }> = [
    { name: 'a chunk inside one file', pending: [{ file: 0, at: 0, length: 100 }], length: 40, extents: [{ file: 0, offset: 0, length: 40, at: 0 }], rest: [{ file: 0, at: 40, length: 60 }] },
    { name: 'a chunk that is exactly one file', pending: [{ file: 0, at: 0, length: 40 }, { file: 1, at: 0, length: 5 }], length: 40, extents: [{ file: 0, offset: 0, length: 40, at: 0 }], rest: [{ file: 1, at: 0, length: 5 }] },
    {
      name: 'many small files in one chunk',
      pending: [{ file: 0, at: 0, length: 10 }, { file: 1, at: 0, length: 20 }, { file: 2, at: 0, length: 30 }],
      length: 45,
      extents: [{ file: 0, offset: 0, length: 10, at: 0 }, { file: 1, offset: 10, length: 20, at: 0 }, { file: 2, offset: 30, length: 15, at: 0 }],
      rest: [{ file: 2, at: 15, length: 15 }],
    },
    {
      name: 'a sparse file: runs around a hole stay two extents',
      pending: [{ file: 3, at: 0, length: 4096 }, { file: 3, at: 8192, length: 4096 }],
      length: 8192,
      extents: [{ file: 3, offset: 0, length: 4096, at: 0 }, { file: 3, offset: 4096, length: 4096, at: 8192 }],
      rest: [],
    },
    {
      name: 'adjacent pieces of one file merge',
      pending: [{ file: 1, at: 0, length: 10 }, { file: 1, at: 10, length: 10 }],
      length: 20,
      extents: [{ file: 1, offset: 0, length: 20, at: 0 }],
      rest: [],
    },
    { name: 'the tail of a file that began in an earlier chunk', pending: [{ file: 0, at: 70, length: 30 }, { file: 1, at: 0, length: 9 }], length: 35, extents: [{ file: 0, offset: 0, length: 30, at: 70 }, { file: 1, offset: 30, length: 5, at: 0 }], rest: [{ file: 1, at: 5, length: 4 }] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = takeChunk(c.pending, c.length, 7);
      expect(r.extents).to.deep.equal(c.extents.map((e) => ({ ...e, chunk: 7 })));
      expect(r.rest).to.deep.equal(c.rest);
    });
  }

  it('refuses a chunk longer than the bytes pending (a chunker bug, never data)', () => {
    expect(() => takeChunk([{ file: 0, at: 0, length: 5 }], 6, 0)).to.throw(/only 5 were pending/);
  });

  it('the ledger numbers chunks in cut order and covers every byte once', () => {
    const ledger = new ExtentLedger();
    const sizes = [1000, 0, 1, 5000, 300];
    sizes.forEach((length, file) => ledger.add({ file, at: 0, length }));
    const cuts = [2048, 2048, 2048, 157];
    const all = cuts.flatMap((n) => ledger.cut(n).extents);
    expect(ledger.pendingBytes()).to.equal(0);
    expect(all.map((e) => e.chunk)).to.deep.equal([0, 0, 0, 1, 2, 2, 3]);
    for (const [file, size] of sizes.entries()) {
      const mine = all.filter((e) => e.file === file);
      expect(mine.reduce((n, e) => n + e.length, 0), `file ${file}`).to.equal(size);
      // In file order, without gaps.
      let at = 0;
      for (const e of mine) {
        expect(e.at).to.equal(at);
        at += e.length;
      }
    }
  });
});
