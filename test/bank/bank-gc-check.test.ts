import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Bank } from '../../src/bank/bank';
import { packKey } from '../../src/bank/pack-index';
import { sampleSize } from '../../src/bank/bank-check';
import type { CheckpointSummary, TreeEntry } from '../../src/bank/types';
import { waitFor } from '../support/docker';
import { MemoryBankStore } from '../support/memory-bank-store';

const fast = { refreshMs: 20, staleMs: 120_000, pollMs: 10, waitMs: 60_000 };
let clock = Date.parse('2026-12-01T00:00:00Z');

/** A checkpoint of `volume` whose one file is made of `blobs` (each stored as one chunk). */
async function backup(bank: Bank, volume: string, blobs: Buffer[]): Promise<{ summary: CheckpointSummary; ids: string[] }> {
  const chunks = bank.chunks({ trusted: await bank.knownChunks() });
  const ids = await Promise.all(blobs.map((b) => chunks.put(b)));
  let at = 0;
  const extents = blobs.map((b, i) => ({ id: ids[i], offset: 0, length: b.length, at: (at += b.length) - b.length }));
  const entries: TreeEntry[] = [
    { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: '1' },
    { path: 'data', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1', size: at, extents },
  ];
  clock += 60_000;
  const summary = await bank.writeCheckpoint({ volume, time: new Date(clock).toISOString(), host: 'h1', backend: 'loop', dataBytes: at, files: 1, origin: 'manual' }, entries, chunks);
  return { summary, ids };
}

const blob = (): Buffer => randomBytes(1000 + Math.floor(Math.random() * 1000));

/** Stores `blobs` in a pack of their own (no checkpoint names them yet); their ids. */
async function packOf(bank: Bank, blobs: Buffer[]): Promise<string[]> {
  const chunks = bank.chunks({ trusted: new Set() });
  const ids = await Promise.all(blobs.map((b) => chunks.put(b)));
  await chunks.flush();
  return ids;
}

/** The pack holding chunk `id`. */
async function packHolding(bank: Bank, id: string): Promise<string> {
  const loc = await bank.chunks().locate(id);
  if (!loc) throw new Error(`chunk ${id} is in no pack`);
  return loc.pack;
}

const stored = (store: MemoryBankStore): string[] => [...store.keys('packs/'), ...store.keys('index/')];

describe('bank: gc', () => {
  it('removes the chunks only a removed checkpoint used; keeps those a kept checkpoint shares; dry run deletes nothing', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const shared = blob();
    const onlyOld = [blob(), blob()];
    const old = await backup(bank, 'db', [shared, ...onlyOld]);
    const kept = await backup(bank, 'db', [shared, blob()]);
    const other = await backup(bank, 'web', [shared]);
    const before = stored(store);
    const known = await bank.knownChunks();
    await bank.removeCheckpoint(old.summary.id);

    const indexReads = (): number => store.gets.filter((k) => k.startsWith('index/')).length;
    const reads0 = indexReads();
    const dry = await bank.gc({ host: 'h1', dryRun: true });
    // The index is read once, however many checkpoints' trees gc reads.
    expect(indexReads() - reads0).to.equal(store.keys('index/').length);
    // The old tree chunk goes too (its tree differs from the kept ones); the old pack holds the
    // shared chunk too, so it is repacked.
    expect(dry).to.include({ removed: 3, kept: known.size - 3, packsRepacked: 1, packsRemoved: 0 });
    expect(stored(store)).to.deep.equal(before);

    const r = await bank.gc({ host: 'h1' });
    expect(r).to.deep.equal(dry);
    expect(r.removedBytes).to.be.above(2000);
    const left = await bank.knownChunks();
    expect(left.size).to.equal(known.size - 3);
    for (const id of old.ids.slice(1)) expect(left.has(id)).to.equal(false);
    for (const id of [...kept.ids, ...other.ids]) expect(left.has(id)).to.equal(true);
    // The old pack and its index are gone, a new one holds the shared chunk.
    expect(store.keys('packs/')).to.have.length(3);
    expect(store.keys('index/')).to.have.length(3);
    // Every kept checkpoint still reads whole.
    for (const s of [kept.summary, other.summary]) await bank.readCheckpoint(s.id);
    expect((await bank.check({ readDataPercent: 100 })).problems).to.deep.equal([]);
    expect(store.keys('locks/')).to.deep.equal([]);
  });

  it('waits for a running backup (never deleting the chunks it has uploaded but not yet listed), then runs', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    await backup(bank, 'db', [blob()]);
    // A backup in flight: it holds its lock, and has uploaded a chunk no manifest names yet.
    const lock = await bank.lock('backup', 'h1');
    const chunks = bank.chunks({ trusted: await bank.knownChunks() });
    const inFlight = await chunks.put(blob());
    await chunks.flush(); // its pack is stored as the backup goes
    const waits: string[] = [];
    let finished = false;
    const gc = bank.gc({ host: 'h2', onWait: (m) => waits.push(m) }).then((r) => { finished = true; return r; });
    await waitFor('gc to wait for the backup', () => waits.length >= 2, 10_000, 5);
    expect(finished).to.equal(false);
    expect(await bank.knownChunks()).to.include(inFlight);
    // The backup finishes: its manifest names the chunk, then it lets go.
    await bank.writeCheckpoint({ volume: 'db', time: new Date(clock += 60_000).toISOString(), host: 'h1', backend: 'loop', dataBytes: 1, files: 1, origin: 'manual' },
      [{ path: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1', size: 1, extents: [{ id: inFlight, offset: 0, length: 1, at: 0 }] }], chunks);
    await lock.release();
    const r = await gc;
    expect(r.removed).to.equal(0);
    expect(await bank.knownChunks()).to.include(inFlight);
  });

  it('stops before deleting anything when a manifest does not open', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const a = await backup(bank, 'db', [blob()]);
    await backup(bank, 'db', [blob()]);
    await bank.removeCheckpoint(a.summary.id);
    const b = (await bank.listCheckpoints())[0];
    store.objects.get(`checkpoints/${b.id}`)!.body[30] ^= 1;
    const before = stored(store);
    try {
      await bank.gc({ host: 'h1' });
      expect.fail('gc ran over a damaged manifest');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('BANK_CORRUPT');
    }
    expect(stored(store)).to.deep.equal(before);
    expect(store.keys('locks/')).to.deep.equal([]);
  });
});

describe('bank: check', () => {
  it('finds a missing chunk and a corrupted one, naming the checkpoints each breaks', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32));
    const shared = blob();
    // The shared chunk in a pack of its own (so losing that pack loses it alone).
    await packOf(bank, [shared]);
    const c1 = await backup(bank, 'db', [shared, blob()]);
    const c2 = await backup(bank, 'db', [shared, blob()]);
    const c3 = await backup(bank, 'web', [blob()]);
    const clean = await bank.check({ readDataPercent: 100 });
    expect(clean.problems).to.deep.equal([]);
    expect(clean.checkpoints).to.equal(3);
    // 3 trees + 4 distinct data chunks (one shared by c1 and c2).
    expect(clean.chunks).to.equal(7);
    expect(clean.read).to.equal(7);

    await store.delete([packKey(await packHolding(bank, c1.ids[0]))]);
    const loc = (await bank.chunks().locate(c3.ids[0]))!;
    store.objects.get(packKey(loc.pack))!.body[loc.offset + (loc.length >> 1)] ^= 0x40;
    // Without --read-data only existence is proved: the corrupted chunk goes unseen.
    const quick = await bank.check();
    expect(quick.read).to.equal(0);
    expect(quick.problems).to.deep.equal([{ chunk: c1.ids[0], problem: 'missing', checkpoints: [c1.summary.id, c2.summary.id].sort() }]);
    const full = await bank.check({ readDataPercent: 100 });
    expect(full.problems).to.have.deep.members([
      { chunk: c1.ids[0], problem: 'missing', checkpoints: [c1.summary.id, c2.summary.id].sort() },
      { chunk: c3.ids[0], problem: 'corrupt', checkpoints: [c3.summary.id] },
    ]);
  });

  it('reports a manifest that does not open, and a missing tree chunk', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32));
    const c1 = await backup(bank, 'db', [blob()]);
    const c2 = await backup(bank, 'web', [blob()]);
    store.objects.get(`checkpoints/${c1.summary.id}`)!.body[20] ^= 1;
    const m2 = await bank.readManifest(c2.summary.id);
    // c2's pack holds its tree chunk (and its data chunk, which no readable tree names now).
    await store.delete([packKey(await packHolding(bank, m2.treeChunks[0]))]);
    const r = await bank.check();
    expect(r.problems).to.have.deep.members([
      { chunk: `checkpoints/${c1.summary.id}`, problem: 'corrupt', checkpoints: [c1.summary.id] },
      { chunk: m2.treeChunks[0], problem: 'missing', checkpoints: [c2.summary.id] },
    ]);
  });

  it('--read-data P% reads about P% of the chunks', async () => {
    expect([sampleSize(0, 10), sampleSize(100, 0), sampleSize(100, 10), sampleSize(7, 10), sampleSize(50, 100), sampleSize(50, 250)]).to.deep.equal([0, 0, 10, 1, 50, 50]);
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32));
    await backup(bank, 'db', Array.from({ length: 199 }, blob));
    const chunkGets = (): number => store.gets.filter((k) => k.startsWith('packs/')).length;
    const before = chunkGets();
    const r = await bank.check({ readDataPercent: 10 });
    expect(r.chunks).to.equal(200);
    expect(r.read).to.equal(20);
    // 20 sampled reads, plus the one tree chunk read to learn the references.
    expect(chunkGets() - before).to.equal(21);
  });
});
