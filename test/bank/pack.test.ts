import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Bank } from '../../src/bank/bank';
import { planGc } from '../../src/bank/bank-gc';
import { decodeIndex, encodeIndex, indexKey, indexOf, packIdOfIndexKey, packIdOfKey, packKey, type IndexEntry } from '../../src/bank/pack-index';
import type { TreeEntry } from '../../src/bank/types';
import { isFerryError } from '../../src/errors';
import { MemoryBankStore } from '../support/memory-bank-store';

const id = (c: string): string => c.repeat(64);
const pk = (c: string): string => c.repeat(64);

describe('bank: pack index', () => {
  it('encodes and decodes entries (44 bytes each after an 8-byte header); refuses damage', () => {
    const entries: IndexEntry[] = [
      { id: id('a'), offset: 0, length: 1000 },
      { id: id('b'), offset: 1000, length: 4 * 1024 * 1024 + 29 },
      { id: id('c'), offset: 2 ** 33 + 7, length: 1 },
    ];
    const body = encodeIndex(entries);
    expect(body.length).to.equal(8 + 3 * 44);
    expect(decodeIndex(body, 'index/x', 'mem://')).to.deep.equal(entries);
    expect(decodeIndex(encodeIndex([]), 'index/x', 'mem://')).to.deep.equal([]);
    for (const bad of [body.subarray(0, 50), Buffer.concat([Buffer.from('XXXX'), body.subarray(4)]), Buffer.alloc(3)]) {
      try {
        decodeIndex(bad, 'index/x', 'mem://');
        expect.fail('decoded a damaged index');
      } catch (err) {
        expect(isFerryError(err, 'BANK_CORRUPT')).to.equal(true);
        expect((err as Error).message).to.include('index/x');
      }
    }
  });

  it('names packs and indexes by key, and reads ids back only from well-formed keys', () => {
    const p = '0a' + '1'.repeat(62);
    expect(packKey(p)).to.equal(`packs/0a/${p}`);
    expect(indexKey(p)).to.equal(`index/${p}`);
    expect(packIdOfKey(packKey(p))).to.equal(p);
    expect(packIdOfIndexKey(indexKey(p))).to.equal(p);
    for (const k of [`packs/0b/${p}`, `packs/0a/${p}.tmp-0123456789abcdef`, `chunks/0a/${p}`, 'packs/0a/short']) expect(packIdOfKey(k), k).to.equal(null);
    expect(packIdOfIndexKey(`index/${p}x`)).to.equal(null);
  });

  it('a chunk in two packs (a crash, a repack) keeps the first place listed', () => {
    const idx = indexOf(
      new Map([
        [pk('1'), [{ id: id('a'), offset: 0, length: 10 }, { id: id('b'), offset: 10, length: 5 }]],
        [pk('2'), [{ id: id('b'), offset: 0, length: 5 }, { id: id('c'), offset: 5, length: 7 }]],
      ]),
    );
    expect(idx.chunks.get(id('b'))).to.deep.equal({ pack: pk('1'), offset: 10, length: 5 });
    expect(idx.chunks.get(id('c'))).to.deep.equal({ pack: pk('2'), offset: 5, length: 7 });
    expect(idx.chunks.size).to.equal(3);
  });
});

describe('bank: gc plan (which packs to delete, repack, keep)', () => {
  const e = (c: string, length: number, offset = 0): IndexEntry => ({ id: id(c), offset, length });
  const cases: Array<{ name: string; packs: Array<[string, IndexEntry[]]>; listed: string[]; live: string[]; want: { remove: string[]; repack: Array<[string, string[]]>; orphans: string[]; removed: number; removedBytes: number; kept: number; unusedKept?: number } }> = [
    {
      name: 'every chunk live: kept',
      packs: [[pk('1'), [e('a', 100), e('b', 100, 100)]]],
      listed: [pk('1')],
      live: ['a', 'b'],
      want: { remove: [], repack: [], orphans: [], removed: 0, removedBytes: 0, kept: 2 },
    },
    {
      name: 'every chunk dead: removed',
      packs: [[pk('1'), [e('a', 100), e('b', 100, 100)]], [pk('2'), [e('c', 50)]]],
      listed: [pk('1'), pk('2')],
      live: ['c'],
      want: { remove: [pk('1')], repack: [], orphans: [], removed: 2, removedBytes: 200, kept: 1 },
    },
    {
      name: 'dead share at 10% or more: repacked with its live chunks',
      packs: [[pk('1'), [e('a', 90), e('b', 10, 90)]]],
      listed: [pk('1')],
      live: ['a'],
      want: { remove: [], repack: [[pk('1'), ['a']]], orphans: [], removed: 1, removedBytes: 10, kept: 1 },
    },
    {
      name: 'dead share under 10%: kept, its dead chunk stays',
      packs: [[pk('1'), [e('a', 91), e('b', 9, 91)]]],
      listed: [pk('1')],
      live: ['a'],
      want: { remove: [], repack: [], orphans: [], removed: 0, removedBytes: 0, kept: 1, unusedKept: 1 },
    },
    {
      name: 'a pack without an index: an orphan, deleted',
      packs: [[pk('1'), [e('a', 100)]]],
      listed: [pk('1'), pk('9')],
      live: ['a'],
      want: { remove: [], repack: [], orphans: [pk('9')], removed: 0, removedBytes: 0, kept: 1 },
    },
    {
      name: 'a crash mid-repack (old pack and its copy both indexed): the copy owns the live chunk, the old pack goes',
      packs: [
        [pk('1'), [e('a', 50), e('b', 50, 50)]],
        [pk('2'), [e('a', 50)]],
      ],
      listed: [pk('1'), pk('2')],
      live: ['a'],
      want: { remove: [pk('1')], repack: [], orphans: [], removed: 1, removedBytes: 100, kept: 1 },
    },
    {
      name: 'a chunk in two whole packs is live in one: the other repacks without it',
      packs: [
        [pk('1'), [e('a', 50), e('b', 50, 50)]],
        [pk('2'), [e('b', 50), e('c', 50, 50)]],
      ],
      listed: [pk('1'), pk('2')],
      live: ['a', 'b', 'c'],
      want: { remove: [], repack: [[pk('2'), ['c']]], orphans: [], removed: 0, removedBytes: 50, kept: 3 },
    },
    {
      name: 'an index whose pack is gone, all dead: removed (deleting a missing pack is fine)',
      packs: [[pk('1'), [e('a', 10)]]],
      listed: [],
      live: [],
      want: { remove: [pk('1')], repack: [], orphans: [], removed: 1, removedBytes: 10, kept: 0 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const packs = new Map(c.packs);
      const plan = planGc({ packs }, new Map(c.listed.map((p) => [p, 1000])), new Set(c.live.map(id)));
      expect({
        remove: plan.remove,
        repack: plan.repack.map((r) => [r.pack, r.keep.map((k) => k.id[0])]),
        orphans: plan.orphans,
        removed: plan.removed,
        removedBytes: plan.removedBytes - plan.orphans.length * 1000,
        kept: plan.kept,
        ...(c.want.unusedKept === undefined ? {} : { unusedKept: plan.unusedKept }),
      }).to.deep.equal(c.want);
      if (c.want.unusedKept === undefined) expect(plan.unusedKept).to.equal(0);
    });
  }
});

describe('bank: gc over packs (in memory)', () => {
  const fast = { refreshMs: 20, staleMs: 120_000, pollMs: 10, waitMs: 60_000 };
  let clock = Date.parse('2026-12-01T00:00:00Z');
  const file = (ids: string[], blobs: Buffer[]): TreeEntry => {
    let at = 0;
    const extents = blobs.map((b, i) => ({ id: ids[i], offset: 0, length: b.length, at: (at += b.length) - b.length }));
    return { path: 'data', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1', size: at, extents };
  };
  async function backup(bank: Bank, blobs: Buffer[]): Promise<string> {
    const chunks = bank.chunks({ trusted: await bank.knownChunks() });
    const ids = await Promise.all(blobs.map((b) => chunks.put(b)));
    clock += 60_000;
    const s = await bank.writeCheckpoint({ volume: 'v', time: new Date(clock).toISOString(), host: 'h', backend: 'loop', dataBytes: 0, files: 1, origin: 'manual' }, [file(ids, blobs)], chunks);
    return s.id;
  }

  it('deletes an orphan pack (a crashed backup\'s), and a repack that crashed before deleting the old pack leaves a bank that reads and the next gc finishes', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const keep = [randomBytes(3000), randomBytes(3000)];
    const drop = [randomBytes(3000)];
    const gone = await backup(bank, [...keep, ...drop]);
    const kept = await backup(bank, keep); // its data chunks are in the first backup's pack
    // A crashed backup's pack: stored, never indexed.
    const orphan = 'f'.repeat(64);
    await store.put(packKey(orphan), randomBytes(5000));
    await bank.removeCheckpoint(gone);
    const oldPacks = store.keys('packs/');

    // The first steps of a repack by hand: live chunks copied to a new pack and indexed; then the
    // gc "crashes" before deleting the old index and pack.
    const idx = await bank.index();
    const first = [...idx.packs.entries()].find(([, es]) => es.length === 4)!; // keep + drop + the first backup's tree
    const live = new Set((await bank.readCheckpoint(kept)).entries.flatMap((e) => (e.extents ?? []).map((x) => x.id)));
    const writer = bank.packWriter();
    const body = (await store.get(packKey(first[0])))!;
    for (const e of first[1]) if (live.has(e.id)) await writer.add(e.id, body.subarray(e.offset, e.offset + e.length));
    await writer.flush();
    expect(store.keys('index/')).to.have.length(oldPacks.length); // one new, the orphan has none
    // Reads work with the chunks in two packs.
    expect((await bank.check({ readDataPercent: 100 })).problems).to.deep.equal([]);

    const r = await bank.gc({ host: 'h' });
    expect(r.packsRemoved).to.be.at.least(2); // the orphan and the old first pack
    expect(store.keys('packs/')).to.not.include(packKey(orphan));
    expect(store.keys('packs/')).to.not.include(packKey(first[0]));
    expect(store.keys('index/')).to.not.include(indexKey(first[0]));
    const after = await bank.check({ readDataPercent: 100 });
    expect(after.problems).to.deep.equal([]);
    expect(after.checkpoints).to.equal(1);
    const entries = (await bank.readCheckpoint(kept)).entries;
    const chunks = bank.chunks();
    for (const x of entries[0].extents ?? []) expect((await chunks.get(x.id)).length).to.equal(3000);
    // A second gc finds nothing more to do.
    const again = await bank.gc({ host: 'h' });
    expect(again).to.include({ removed: 0, packsRemoved: 0, packsRepacked: 0 });
  });

  it('a gc that crashes after writing the new pack but before its index leaves an orphan the next gc removes', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const a = randomBytes(3000);
    const b = randomBytes(3000);
    await backup(bank, [a, b]);
    const cp = await backup(bank, [a]);
    const all = await bank.listCheckpoints();
    await bank.removeCheckpoint(all[0].id);
    // The store refuses the index write: the new pack is stored, unindexed; gc fails, deleting nothing.
    const put = store.put.bind(store);
    let failIndex = true;
    store.put = async (k, body) => {
      if (failIndex && k.startsWith('index/')) throw Object.assign(new Error('index write refused'), { code: 'EIO' });
      return put(k, body);
    };
    try {
      await bank.gc({ host: 'h' });
      expect.fail('gc went on without its new index');
    } catch (err) {
      expect((err as Error).message).to.include('index write refused');
    }
    failIndex = false;
    expect((await bank.check({ readDataPercent: 100 })).problems).to.deep.equal([]);
    const r = await bank.gc({ host: 'h' });
    expect(r.packsRemoved).to.be.at.least(1);
    expect((await bank.check({ readDataPercent: 100 })).problems).to.deep.equal([]);
    expect((await bank.readCheckpoint(cp)).entries).to.have.length(1);
    expect(store.keys('packs/')).to.have.length(store.keys('index/').length);
  });
});
