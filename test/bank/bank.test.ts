import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Bank } from '../../src/bank/bank';
import { READ_AHEAD_BYTES, READ_AHEAD_HELD } from '../../src/bank/bank-chunks';
import { packKey } from '../../src/bank/pack-index';
import type { TreeEntry } from '../../src/bank/types';
import { FerryError, isFerryError, type ErrorCode } from '../../src/errors';
import { InlineSealer } from '../../src/bank/sealer';
import { waitFor } from '../support/docker';
import { MemoryBankStore } from '../support/memory-bank-store';

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(isFerryError(err, code), String(err)).to.equal(true);
    return err as Error;
  }
  return expect.fail(`expected ${code}`);
}

/** Puts `count` chunks of `bytes` random bytes into `bank` (packed and indexed: flushed); their ids in put order. */
async function storeRandomChunks(bank: Bank, count: number, bytes: number): Promise<string[]> {
  const writer = bank.chunks({ trusted: await bank.knownChunks() });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await writer.put(randomBytes(bytes)));
  await writer.flush();
  return ids;
}

function fileEntry(path: string, ids: Array<{ id: string; length: number }>): TreeEntry {
  let at = 0;
  const extents = ids.map((x) => {
    const e = { id: x.id, offset: 0, length: x.length, at };
    at += x.length;
    return e;
  });
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1', size: at, extents };
}

describe('bank: Bank', () => {
  const key = randomBytes(32);

  it('create writes a config once (create again = open); open with the right key sees the same id', async () => {
    const store = new MemoryBankStore();
    const a = await Bank.create(store, key);
    expect(store.keys()).to.deep.equal(['config']);
    const config = JSON.parse(store.objects.get('config')!.body.toString());
    expect(config).to.include({ format: 'ferry-bank', version: 2, id: a.id });
    expect(config.chunker).to.deep.equal({ min: 262144, avg: 1048576, max: 4194304 });
    expect(config.pack).to.deep.equal({ targetBytes: 16 * 1024 * 1024 });
    expect((await Bank.create(store, key)).id).to.equal(a.id);
    expect((await Bank.open(store, Buffer.from(key))).id).to.equal(a.id);
  });

  it('refuses a wrong key with BANK_KEY_WRONG saying what a lost key means; no config is BANK_NOT_FOUND; a short key INVALID_OPTION', async () => {
    const store = new MemoryBankStore('file:///srv/bank');
    await Bank.create(store, key);
    const err = await expectCode(Bank.open(store, randomBytes(32)), 'BANK_KEY_WRONG');
    expect(err.message).to.include('file:///srv/bank').and.include('right key file').and.include('cannot be read');
    await expectCode(Bank.create(store, randomBytes(64)), 'BANK_KEY_WRONG');
    await expectCode(Bank.open(new MemoryBankStore(), key), 'BANK_NOT_FOUND');
    await expectCode(Bank.create(new MemoryBankStore(), Buffer.alloc(16)), 'INVALID_OPTION');
    const other = new MemoryBankStore();
    other.objects.set('config', { body: Buffer.from('{"format":"restic"}'), modifiedMs: 0 });
    await expectCode(Bank.open(other, key), 'BANK_CORRUPT');
  });

  it('refuses a version-1 bank (one object per chunk) saying what to do', async () => {
    const store = new MemoryBankStore('file:///srv/old');
    await Bank.create(store, key);
    const config = JSON.parse(store.objects.get('config')!.body.toString());
    delete config.pack;
    store.objects.set('config', { body: Buffer.from(JSON.stringify({ ...config, version: 1 })), modifiedMs: 0 });
    const err = await expectCode(Bank.open(store, key), 'BANK_CORRUPT');
    expect(err.message).to.include('file:///srv/old').and.include('version 1').and.include('earlier build').and.include('add a new bank');
  });

  it('chunks: put reads the bytes only during the call — the caller may overwrite them at once (a cutter reuses its buffer)', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    try {
      const chunks = bank.chunks({ trusted: await bank.knownChunks() });
      const buf = Buffer.alloc(300_000);
      const originals: Buffer[] = [];
      const puts: Array<Promise<string>> = [];
      for (let i = 0; i < 12; i++) {
        randomBytes(buf.length).copy(buf);
        originals.push(Buffer.from(buf));
        puts.push(chunks.put(buf));
        buf.fill(0xab); // the next chunk lands where this one was
      }
      const ids = await Promise.all(puts);
      await chunks.flush();
      const reader = bank.chunks();
      for (const [i, id] of ids.entries()) expect((await reader.get(id)).equals(originals[i]), `chunk ${i}`).to.equal(true);
    } finally {
      await bank.close();
    }
  });

  it('chunks: gets read ranges ahead into reused buffers, and every chunk comes back whole, in order, out of order and eight at once', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const writer = bank.chunks({ trusted: await bank.knownChunks() });
    const plains = Array.from({ length: 60 }, (_, i) => randomBytes(200_000 + i * 997));
    const ids = await Promise.all(plains.map((p) => writer.put(p)));
    await writer.flush();
    const reader = bank.chunks();
    const before = store.calls.getRange;
    // Eight at a time in stored order (a restore's pattern): ranges shared, their buffers reused.
    for (let i = 0; i < ids.length; i += 8) {
      const got = await Promise.all(ids.slice(i, i + 8).map((id) => reader.get(id)));
      got.forEach((g, k) => expect(g.equals(plains[i + k]), `chunk ${i + k}`).to.equal(true));
    }
    const ranges = store.calls.getRange - before;
    expect(ranges, 'one range serves several chunks').to.be.lessThan(ids.length / 4);
    // Backwards and interleaved, on a fresh reader: nothing read ahead is ever overwritten under a get.
    const other = bank.chunks();
    const order = [...ids.keys()].reverse().concat([...ids.keys()].filter((i) => i % 3 === 0));
    const got = await Promise.all(order.map((i) => other.get(ids[i]).then((g) => g.equals(plains[i]))));
    expect(got).to.not.include(false);
  });

  it('chunks: a chunk left waiting in a range read ahead counts its whole range buffer — past READ_AHEAD_HELD the oldest is dropped and read again when asked', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key, { packBytes: 64 * 1024 * 1024 });
    try {
      const ids = await storeRandomChunks(bank, 230, 100_000);
      const reader = bank.chunks();
      const at = new Map<string, number>();
      for (const id of ids) at.set(id, (await reader.locate(id))!.offset);
      ids.sort((a, b) => at.get(a)! - at.get(b)!);
      // One range reads a chunk and the ones after it, up to 4 MiB: 41 of these.
      const perRange = Math.floor(READ_AHEAD_BYTES / (at.get(ids[1])! - at.get(ids[0])!));
      expect(perRange).to.equal(41);
      // One range more than READ_AHEAD_HELD holds, each read for its first chunk, all but its last
      // asked for: that many chunks of 100 kB wait, each in its own 4 MiB buffer.
      const held = READ_AHEAD_HELD / READ_AHEAD_BYTES;
      const starts = Array.from({ length: held + 1 }, (_, r) => r * perRange);
      for (const s of starts) for (let i = s; i < s + perRange - 1; i++) reader.release(await reader.get(ids[i]));
      const before = store.calls.getRange;
      reader.release(await reader.get(ids[starts[held] + perRange - 1]));
      expect(store.calls.getRange - before, 'the newest waiting chunk was still held').to.equal(0);
      reader.release(await reader.get(ids[starts[0] + perRange - 1]));
      expect(store.calls.getRange - before, 'the oldest was dropped, its range buffer reused').to.equal(1);
    } finally {
      await bank.close();
    }
  });

  it('chunks: readOrder puts ids by pack (in the order the ids first name each) and by offset in it, unknown ids first', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key, { packBytes: 1024 * 1024 });
    try {
      const ids = await storeRandomChunks(bank, 24, 200_000);
      const reader = bank.chunks();
      const loc = new Map<string, { pack: string; offset: number }>();
      for (const id of ids) loc.set(id, (await reader.locate(id))!);
      expect(new Set([...loc.values()].map((l) => l.pack)).size, 'several packs').to.be.above(2);
      const unknown = 'f'.repeat(64);
      const scrambled = [...ids.slice(12).reverse(), unknown, ...ids.slice(0, 12).reverse()];
      const got = await reader.readOrder(scrambled);
      expect(got[0], 'an id no index lists first: its get fails before anything is read').to.equal(unknown);
      expect(new Set(got)).to.deep.equal(new Set(scrambled));
      const packs = got.slice(1).map((id) => loc.get(id)!.pack);
      // Each pack once, in the order the scrambled list first names one of its chunks.
      const firstNamed = [...new Set(scrambled.filter((id) => id !== unknown).map((id) => loc.get(id)!.pack))];
      expect(packs.filter((p, i) => i === 0 || packs[i - 1] !== p)).to.deep.equal(firstNamed);
      for (let i = 1; i < packs.length; i++) {
        if (packs[i] === packs[i - 1]) expect(loc.get(got[i + 1])!.offset).to.be.above(loc.get(got[i])!.offset);
      }
    } finally {
      await bank.close();
    }
  });

  it('chunks: a trusted set still being read — holds() answers from what is stored, puts wait for the set, its failure reaches the put', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const plain = Buffer.from('known chunk '.repeat(500));
    const first = bank.chunks({ trusted: await bank.knownChunks() });
    const id = await first.put(plain);
    await first.flush();
    let arrive!: (s: Set<string>) => void;
    const later = bank.chunks({ trusted: new Promise<Set<string>>((resolve) => (arrive = resolve)) });
    expect(later.idOf(plain)).to.equal(id);
    expect(later.holds(id), 'not known before the set arrives').to.equal(false);
    let settled = false;
    const put = later.put(plain, id).then((got) => {
      settled = true;
      return got;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(settled, 'the put waits for the set').to.equal(false);
    arrive(await bank.knownChunks());
    expect(await put).to.equal(id);
    expect(later.holds(id)).to.equal(true);
    await later.flush();
    expect(later.uploadedBytes(), 'the bank had it: nothing uploaded').to.equal(0);
    const failing = bank.chunks({ trusted: Promise.reject(new FerryError('BANK_UNAVAILABLE', 'index listing failed')) });
    await expectCode(failing.put(Buffer.from('new bytes')), 'BANK_UNAVAILABLE');
  });

  it('chunks: put seals into a pack, flush stores it and its index; dedups on trusted; get returns the plaintext', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const uploads: number[] = [];
    const trusted = await bank.knownChunks();
    const chunks = bank.chunks({ trusted, onUpload: (n) => uploads.push(n) });
    const plain = Buffer.from('hello chunk '.repeat(1000));
    const ids = await Promise.all([chunks.put(plain), chunks.put(plain), chunks.put(randomBytes(5000))]);
    expect(ids[0]).to.equal(ids[1]).and.match(/^[0-9a-f]{64}$/);
    // The id is keyed: not the plain SHA-256 of the data.
    expect(ids[0]).to.not.equal(createHash('sha256').update(plain).digest('hex'));
    // Nothing is stored until the pack closes (at 16 MiB, or at flush).
    expect(store.keys('packs/')).to.deep.equal([]);
    expect(uploads).to.deep.equal([]);
    await chunks.flush();
    const packs = store.keys('packs/');
    expect(packs).to.have.length(1);
    expect(store.keys('index/')).to.deep.equal([`index/${packs[0].split('/')[2]}`]);
    expect(store.keys('chunks/')).to.deep.equal([]);
    expect(store.objects.get(packs[0])!.body.includes(Buffer.from('hello chunk'))).to.equal(false);
    expect(uploads).to.have.length(2);
    expect(chunks.uploadedBytes()).to.equal(uploads[0] + uploads[1]).and.equal(store.objects.get(packs[0])!.body.length);
    expect(trusted).to.deep.equal(new Set([ids[0], ids[2]]));
    expect((await chunks.get(ids[0])).equals(plain)).to.equal(true);
    expect(await bank.knownChunks()).to.deep.equal(new Set([ids[0], ids[2]]));
    // A second store over the same bank uploads nothing it already has.
    const again = bank.chunks({ trusted: await bank.knownChunks() });
    await again.put(plain);
    await again.flush();
    expect(again.uploadedBytes()).to.equal(0);
    // Without trusted it looks the id up in the bank's index.
    const asking = bank.chunks();
    await asking.put(plain);
    await asking.flush();
    expect(asking.uploadedBytes()).to.equal(0);
    expect(store.keys('packs/')).to.have.length(1);
    // A fresh reader finds the chunk through the index, with one ranged read of the pack.
    const reader = bank.chunks();
    const before = store.calls.getRange;
    expect((await reader.get(ids[2])).length).to.equal(5000);
    expect(store.calls.getRange - before).to.equal(1);
  });

  it('chunks.get: a missing chunk, a missing pack, one moved to another id and one tampered with are BANK_CORRUPT naming the chunk', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const chunks = bank.chunks({ trusted: new Set() });
    const a = await chunks.put(Buffer.from('aaaa'.repeat(100)));
    const b = await chunks.put(Buffer.from('bbbb'.repeat(100)));
    await chunks.flush();
    const missing = 'c'.repeat(64);
    expect((await expectCode(chunks.get(missing), 'BANK_CORRUPT')).message).to.include(missing).and.include('missing');
    const la = (await chunks.locate(a))!;
    const lb = (await chunks.locate(b))!;
    expect(la.pack).to.equal(lb.pack);
    expect(la.length).to.equal(lb.length);
    const body = store.objects.get(packKey(la.pack))!.body;
    const saved = Buffer.from(body);
    // b's place holds a's sealed bytes: they were sealed for a's key, so they do not open as b.
    body.subarray(la.offset, la.offset + la.length).copy(body, lb.offset);
    expect((await expectCode(bank.chunks().get(b), 'BANK_CORRUPT')).message).to.include(b.slice(0, 2));
    saved.copy(body);
    expect((await bank.chunks().get(b)).toString()).to.equal('bbbb'.repeat(100));
    body[la.offset + la.length - 20] ^= 1;
    expect((await expectCode(bank.chunks().get(a), 'BANK_CORRUPT')).message).to.include(a).and.include('does not open');
    await store.delete([packKey(la.pack)]);
    expect((await expectCode(bank.chunks().get(b), 'BANK_CORRUPT')).message).to.include(b).and.include('missing').and.include(la.pack);
  });

  it('chunks.get reads the chunks after the asked one in its pack with it (one ranged read for several); a damaged one is still named alone', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const w = bank.chunks({ trusted: new Set() });
    const blobs = Array.from({ length: 12 }, () => randomBytes(100_000));
    const ids: string[] = [];
    for (const b of blobs) ids.push(await w.put(b)); // in order: one pack, back to back
    await w.flush();
    expect(store.keys('packs/')).to.have.length(1);
    const r = bank.chunks();
    const before = store.calls.getRange;
    const got = await Promise.all(ids.map((id) => r.get(id)));
    got.forEach((g, i) => expect(g.equals(blobs[i]), `chunk ${i}`).to.equal(true));
    expect(store.calls.getRange - before, 'one range read for 12 chunks of 100 kB').to.equal(1);
    // Again: nothing is held any more, one more read.
    await r.get(ids[3]);
    expect(store.calls.getRange - before).to.equal(2);

    // One byte of chunk 5 flipped: chunk 4 (read with it) is fine, chunk 5 is named.
    const loc = (await r.locate(ids[5]))!;
    store.objects.get(packKey(loc.pack))!.body[loc.offset + 50] ^= 1;
    const fresh = bank.chunks();
    expect((await fresh.get(ids[4])).equals(blobs[4])).to.equal(true);
    expect((await expectCode(fresh.get(ids[5]), 'BANK_CORRUPT')).message).to.include(ids[5]).and.include('does not open');
    expect((await fresh.get(ids[6])).equals(blobs[6])).to.equal(true);
    // Without read-ahead (check's sampling) each get is its own read.
    const single = bank.chunks({ readAhead: false });
    const b2 = store.calls.getRange;
    await single.get(ids[0]);
    await single.get(ids[1]);
    expect(store.calls.getRange - b2).to.equal(2);
    // A pack cut short: the chunks still in it read, the one past its end is named corrupt.
    const body = store.objects.get(packKey(loc.pack))!.body;
    const last = (await r.locate(ids[11]))!;
    store.objects.set(packKey(loc.pack), { body: body.subarray(0, last.offset + 10), modifiedMs: 0 });
    const cut = bank.chunks();
    expect((await cut.get(ids[10])).equals(blobs[10])).to.equal(true);
    expect((await expectCode(cut.get(ids[11]), 'BANK_CORRUPT')).message).to.include(ids[11]).and.include('cut short');
  });

  it('writes a checkpoint (tree in chunks, manifest last), reads it back, lists per volume oldest first, removes only the manifest', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const chunks = bank.chunks({ trusted: await bank.knownChunks() });
    const data = randomBytes(3000);
    const id = await chunks.put(data);
    const entries: TreeEntry[] = [
      { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: '5' },
      fileEntry('f', [{ id, length: 3000 }]),
    ];
    const base = { volume: 'db', host: 'h1', backend: 'btrfs', dataBytes: 3000, files: 1, origin: 'manual' };
    // The manifest is the last object written.
    const puts: string[] = [];
    const spy = store.put.bind(store);
    store.put = async (k, b) => { puts.push(k); return spy(k, b); };
    const s1 = await bank.writeCheckpoint({ ...base, time: '2026-12-02T10:00:00.000Z' }, entries, chunks);
    expect(s1.id).to.match(/^20261202T100000Z-[0-9a-f]{8}$/);
    expect(puts[puts.length - 1]).to.equal(`checkpoints/${s1.id}`);
    expect(s1.addedBytes).to.equal(chunks.uploadedBytes()).and.be.above(3000);
    const back = await bank.readCheckpoint(s1.id);
    expect(back.summary).to.deep.equal(s1);
    expect(back.entries).to.deep.equal(entries);

    const s0 = await bank.writeCheckpoint({ ...base, time: '2026-12-01T10:00:00.000Z', id: '20261201T100000Z-00000000' }, entries, bank.chunks({ trusted: await bank.knownChunks() }));
    expect(s0.addedBytes, 'the same tree again adds nothing').to.equal(0);
    await bank.writeCheckpoint({ ...base, volume: 'web', time: '2026-12-03T10:00:00.000Z' }, entries, chunks);
    expect((await bank.listCheckpoints('db')).map((s) => s.id)).to.deep.equal([s0.id, s1.id]);
    expect(await bank.listCheckpoints()).to.have.length(3);
    await expectCode(bank.writeCheckpoint({ ...base, time: '2026-12-01T10:00:00.000Z', id: s0.id }, entries, chunks), 'BANK_EXISTS');
    await expectCode(bank.writeCheckpoint({ ...base, time: 'yesterday' }, entries, chunks), 'INVALID_REQUEST');

    const before = [...store.keys('packs/'), ...store.keys('index/')];
    expect(before).to.have.length.above(0);
    await bank.removeCheckpoint(s0.id);
    expect([...store.keys('packs/'), ...store.keys('index/')]).to.deep.equal(before);
    expect((await bank.listCheckpoints('db')).map((s) => s.id)).to.deep.equal([s1.id]);
    await expectCode(bank.readCheckpoint(s0.id), 'CHECKPOINT_NOT_FOUND');
    await expectCode(bank.removeCheckpoint(s0.id), 'CHECKPOINT_NOT_FOUND');
    await expectCode(bank.readCheckpoint('../config'), 'INVALID_NAME');
  });

  it('cuts a large tree into several chunks, and an unchanged tree dedups against the last checkpoint', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const id = 'd'.repeat(64);
    const entries = Array.from({ length: 40_000 }, (_, i) => fileEntry(`dir/${i}/file-${i}.dat`, [{ id, length: i + 1 }]));
    const c1 = bank.chunks({ trusted: await bank.knownChunks() });
    const s1 = await bank.writeCheckpoint({ volume: 'v', time: new Date().toISOString(), host: 'h', backend: 'loop', dataBytes: 0, files: 40_000, origin: 'manual' }, entries, c1);
    const treeChunks = (await bank.knownChunks()).size;
    expect(treeChunks).to.be.above(1);
    entries[39_999] = { ...entries[39_999], mode: 0o600 };
    const c2 = bank.chunks({ trusted: await bank.knownChunks() });
    await bank.writeCheckpoint({ volume: 'v', time: new Date(Date.now() + 1000).toISOString(), host: 'h', backend: 'loop', dataBytes: 0, files: 40_000, origin: 'manual' }, entries, c2);
    expect((await bank.knownChunks()).size - treeChunks, 'only the last tree chunk is new').to.equal(1);
    expect((await bank.readCheckpoint(s1.id)).entries).to.have.length(40_000);
  });
});

describe('bank: chunk store limits', () => {
  it('keeps at most 2 packs uploading and 1 filling (sealed chunks held bounded) however many puts are started', async () => {
    const store = new MemoryBankStore();
    let sealed = 0;
    let storedEntries = 0;
    let mostHeld = 0;
    const bank = await Bank.create(store, randomBytes(32), {
      packBytes: 64 * 1024,
      sealer: (k, u) => {
        const inline = new InlineSealer(k, u);
        const counted = (out: Buffer, ad: string): Buffer => {
          if (ad.startsWith('chunks/')) sealed++;
          mostHeld = Math.max(mostHeld, sealed - storedEntries);
          return out;
        };
        return {
          seal: async (p: Buffer, ad: string) => counted(await inline.seal(p, ad), ad),
          takeInput: (n: number) => inline.takeInput(n),
          sealInput: async (b: Buffer, n: number, ad: string) => {
            const r = await inline.sealInput(b, n, ad);
            return { sealed: counted(r.sealed, ad), release: r.release };
          },
          giveInput: () => undefined,
          open: (b: Buffer, ad: string) => inline.open(b, ad),
          openAndHash: (b: Buffer, ad: string, idKey: Buffer) => inline.openAndHash(b, ad, idKey),
          giveOutput: () => undefined,
          close: () => inline.close(),
        };
      },
    });
    let uploading = 0;
    let most = 0;
    const release: Array<() => void> = [];
    const put = store.put.bind(store);
    store.put = async (k, b) => {
      if (!k.startsWith('packs/')) return put(k, b);
      uploading++;
      most = Math.max(most, uploading);
      // Uploads finish only when the test lets them: puts pile up behind them.
      await new Promise<void>((r) => release.push(r));
      uploading--;
      return put(k, b);
    };
    const chunks = bank.chunks({ trusted: new Set(), onUpload: () => storedEntries++ });
    // 200 incompressible chunks of 2000 bytes (2029 sealed): 33 fill a 64 KiB pack, 7 packs in all.
    let finished = false;
    const all = Promise.all(Array.from({ length: 200 }, () => chunks.put(randomBytes(2000)))).then(() => chunks.flush()).then(() => (finished = true));
    await waitFor('2 pack uploads to start', () => release.length === 2, 10_000, 5);
    expect(most).to.equal(2);
    while (!finished) {
      const r = release.shift();
      if (r) r();
      await new Promise((res) => setImmediate(res));
      expect(uploading).to.be.at.most(2);
    }
    await all;
    expect(most).to.equal(2);
    // 2 packs uploading + 1 filling (33 chunks each, plus the one that passes the target) + 8 sealing.
    expect(mostHeld, 'sealed chunks held before their pack was stored').to.be.at.most(3 * 33 + 8).and.above(2 * 33);
    expect(store.keys('packs/')).to.have.length(7);
    expect(store.keys('index/')).to.have.length(7);
    expect((await bank.knownChunks()).size).to.equal(200);
  });
});
