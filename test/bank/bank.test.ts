import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Bank } from '../../src/bank/bank';
import { chunkKey } from '../../src/bank/bank-chunks';
import type { TreeEntry } from '../../src/bank/types';
import { isFerryError, type ErrorCode } from '../../src/errors';
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
    expect(config).to.include({ format: 'ferry-bank', version: 1, id: a.id });
    expect(config.chunker).to.deep.equal({ min: 262144, avg: 1048576, max: 4194304 });
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

  it('chunks: put stores sealed under chunks/<2>/<id>, dedups on trusted, get returns the plaintext', async () => {
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
    expect(store.keys('chunks/')).to.deep.equal([chunkKey(ids[0]), chunkKey(ids[2])].sort());
    expect(store.objects.get(chunkKey(ids[0]))!.body.includes(Buffer.from('hello chunk'))).to.equal(false);
    expect(uploads).to.have.length(2);
    expect(chunks.uploadedBytes()).to.equal(uploads[0] + uploads[1]);
    expect(trusted).to.deep.equal(new Set([ids[0], ids[2]]));
    expect((await chunks.get(ids[0])).equals(plain)).to.equal(true);
    // A second store over the same bank uploads nothing it already has.
    const again = bank.chunks({ trusted: await bank.knownChunks() });
    await again.put(plain);
    expect(again.uploadedBytes()).to.equal(0);
    // Without trusted it asks the store.
    const asking = bank.chunks();
    await asking.put(plain);
    expect(asking.uploadedBytes()).to.equal(0);
  });

  it('chunks.get: a missing chunk, one moved to another id and one tampered with are BANK_CORRUPT naming the chunk', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, key);
    const chunks = bank.chunks({ trusted: new Set() });
    const a = await chunks.put(Buffer.from('aaaa'.repeat(100)));
    const b = await chunks.put(Buffer.from('bbbb'.repeat(100)));
    const missing = 'c'.repeat(64);
    expect((await expectCode(chunks.get(missing), 'BANK_CORRUPT')).message).to.include(missing).and.include('missing');
    store.objects.set(chunkKey(b), store.objects.get(chunkKey(a))!);
    expect((await expectCode(chunks.get(b), 'BANK_CORRUPT')).message).to.include(b.slice(0, 2));
    const body = store.objects.get(chunkKey(a))!.body;
    body[body.length - 20] ^= 1;
    await expectCode(chunks.get(a), 'BANK_CORRUPT');
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

    const before = store.keys('chunks/');
    await bank.removeCheckpoint(s0.id);
    expect(store.keys('chunks/')).to.deep.equal(before);
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
    const treeChunks = store.keys('chunks/').length;
    expect(treeChunks).to.be.above(1);
    entries[39_999] = { ...entries[39_999], mode: 0o600 };
    const c2 = bank.chunks({ trusted: await bank.knownChunks() });
    await bank.writeCheckpoint({ volume: 'v', time: new Date(Date.now() + 1000).toISOString(), host: 'h', backend: 'loop', dataBytes: 0, files: 40_000, origin: 'manual' }, entries, c2);
    expect(store.keys('chunks/').length - treeChunks, 'only the last tree chunk is new').to.equal(1);
    expect((await bank.readCheckpoint(s1.id)).entries).to.have.length(40_000);
  });
});

describe('bank: chunk store limits', () => {
  it('keeps at most 4 uploads and 8 sealed chunks in flight however many puts are started', async () => {
    const store = new MemoryBankStore();
    let sealed = 0;
    let stored = 0;
    let mostHeld = 0;
    const bank = await Bank.create(store, randomBytes(32), {
      sealer: (k, u) => {
        const inline = new InlineSealer(k, u);
        return {
          seal: async (p: Buffer, ad: string) => {
            const out = await inline.seal(p, ad);
            sealed++;
            mostHeld = Math.max(mostHeld, sealed - stored);
            return out;
          },
          open: (b: Buffer, ad: string) => inline.open(b, ad),
          openAndHash: (b: Buffer, ad: string, idKey: Buffer) => inline.openAndHash(b, ad, idKey),
          close: () => inline.close(),
        };
      },
    });
    let uploading = 0;
    let most = 0;
    const release: Array<() => void> = [];
    const put = store.put.bind(store);
    store.put = async (k, b) => {
      uploading++;
      most = Math.max(most, uploading);
      // Uploads finish only when the test lets them: puts pile up behind them.
      await new Promise<void>((r) => release.push(r));
      uploading--;
      if (k.startsWith('chunks/')) stored++;
      return put(k, b);
    };
    let sealedCalls = 0;
    const chunks = bank.chunks({ trusted: new Set(), onUpload: () => sealedCalls++ });
    const all = Promise.all(Array.from({ length: 40 }, () => chunks.put(randomBytes(2000))));
    await waitFor('4 uploads to start', () => release.length === 4, 10_000, 5);
    expect(most).to.equal(4);
    while (sealedCalls < 40) {
      const r = release.shift();
      if (r) r();
      await new Promise((res) => setImmediate(res));
      expect(uploading).to.be.at.most(4);
    }
    await all;
    expect(most).to.equal(4);
    expect(mostHeld, 'sealed chunks held before their upload ended').to.equal(8);
    expect(store.keys('chunks/')).to.have.length(40);
  });
});
