import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bank } from '../../src/bank/bank';
import { cleanupDir, makeTempDir } from '../support/host';
import { MemoryBankStore } from '../support/memory-bank-store';

describe('bank: Bank.backUp (the one backup sequence: lock, parent, chunks, walk, manifest)', () => {
  const key = randomBytes(32);
  const subject = { volume: 'db', host: 'h1', backend: 'directory', origin: 'manual' };
  let dir: string;
  let bank: Bank;

  beforeEach(async () => {
    dir = makeTempDir('bank-backup');
    mkdirSync(join(dir, 'tree'));
    writeFileSync(join(dir, 'tree', 'a.bin'), randomBytes(600 * 1024));
    writeFileSync(join(dir, 'tree', 'b.txt'), 'hello\n');
    bank = await Bank.create(new MemoryBankStore(), key, { lockTimings: { pollMs: 20 } });
  });

  afterEach(async () => {
    await bank.close();
    cleanupDir(dir);
  });

  it('stores a checkpoint that says what it holds; the next backup names it as parent and uploads only the change', async () => {
    const first = await bank.backUp(join(dir, 'tree'), { ...subject, sizeBytes: 1 << 30 }, { stableInodes: true });
    expect(first.summary).to.include({ volume: 'db', host: 'h1', backend: 'directory', origin: 'manual', files: 2, dataBytes: 600 * 1024 + 6, sizeBytes: 1 << 30 });
    expect(first.summary.parent).to.equal(undefined);
    expect(first.summary).not.to.have.property('fs');
    expect(first.uploadedBytes).to.be.above(600 * 1024);

    const unchanged = await bank.backUp(join(dir, 'tree'), subject, { stableInodes: true });
    expect(unchanged.summary.parent).to.equal(first.summary.id);
    expect(unchanged.uploadedBytes).to.equal(0);

    writeFileSync(join(dir, 'tree', 'c.txt'), randomBytes(5000));
    const phases: string[] = [];
    const changed = await bank.backUp(join(dir, 'tree'), subject, { stableInodes: true, progress: (p) => phases.push(p.phase) });
    expect(changed.summary.parent).to.equal(unchanged.summary.id);
    expect(changed.uploadedBytes).to.be.above(5000).and.below(64 * 1024);
    expect(phases.at(-1)).to.equal('manifest');
    // All three within a second or so: listed in the order they were taken, not by their ids' random suffixes.
    expect((await bank.listCheckpoints('db')).map((c) => c.id)).to.deep.equal([first.summary.id, unchanged.summary.id, changed.summary.id]);
  });

  it('a failed walk leaves no checkpoint and releases the backup lock (a gc can take its lock at once)', async () => {
    let err: unknown;
    try {
      await bank.backUp(join(dir, 'absent'), subject, { stableInodes: true });
    } catch (e) {
      err = e;
    }
    expect(err, 'the backup of a missing tree fails').to.be.instanceOf(Error);
    expect(await bank.listCheckpoints('db')).to.deep.equal([]);
    const gc = await bank.lock('gc', 'h2', { waitMs: 0 });
    await gc.release();
  });

  it('a backup waits while a gc holds the bank, and says whom it waits for', async () => {
    const gc = await bank.lock('gc', 'h2');
    const waits: string[] = [];
    const p = bank.backUp(join(dir, 'tree'), subject, { stableInodes: true, onLockWait: (msg) => waits.push(msg) });
    await new Promise((r) => setTimeout(r, 50));
    expect(waits.join(' ')).to.include('h2');
    expect(await bank.listCheckpoints('db'), 'nothing written while it waits').to.deep.equal([]);
    await gc.release();
    const done = await p; // its next poll finds the bank free
    expect(done.summary.volume).to.equal('db');
  });
});
