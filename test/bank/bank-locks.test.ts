import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Bank } from '../../src/bank/bank';
import { lockConflicts, type FoundLock, type LockKind } from '../../src/bank/bank-locks';
import { isFerryError } from '../../src/errors';
import { waitFor } from '../support/docker';
import { MemoryBankStore } from '../support/memory-bank-store';

const NOW = Date.parse('2026-12-02T10:00:00Z');
function found(key: string, kind: LockKind | null, ageS: number): FoundLock {
  const t = new Date(NOW - ageS * 1000).toISOString();
  return { key, record: kind ? { kind, host: 'h', pid: 1, started: t, refreshed: t } : null, modifiedMs: NOW - ageS * 1000 };
}

describe('bank: locks', () => {
  // Table: who asks, which locks exist (kind, seconds since refresh) → which block, which are stale.
  const table: Array<{ name: string; kind: LockKind; locks: FoundLock[]; blocking: string[]; stale: string[] }> = [
    { name: 'backup beside backups', kind: 'backup', locks: [found('locks/backup-1', 'backup', 5), found('locks/backup-2', 'backup', 100)], blocking: [], stale: [] },
    { name: 'backup beside a live gc', kind: 'backup', locks: [found('locks/gc-1', 'gc', 10)], blocking: ['locks/gc-1'], stale: [] },
    { name: 'backup beside a stale gc', kind: 'backup', locks: [found('locks/gc-1', 'gc', 121)], blocking: [], stale: ['locks/gc-1'] },
    { name: 'gc beside a live backup', kind: 'gc', locks: [found('locks/backup-1', 'backup', 119)], blocking: ['locks/backup-1'], stale: [] },
    { name: 'gc beside another gc', kind: 'gc', locks: [found('locks/gc-2', 'gc', 0)], blocking: ['locks/gc-2'], stale: [] },
    { name: 'gc beside stale backups only', kind: 'gc', locks: [found('locks/backup-1', 'backup', 600)], blocking: [], stale: ['locks/backup-1'] },
    { name: 'an unreadable lock counts as a gc while fresh', kind: 'backup', locks: [found('locks/x', null, 1)], blocking: ['locks/x'], stale: [] },
    { name: 'its own lock never blocks', kind: 'gc', locks: [found('locks/mine', 'gc', 0)], blocking: [], stale: [] },
  ];
  for (const row of table) {
    it(`decides: ${row.name}`, () => {
      const { blocking, stale } = lockConflicts(row.kind, 'locks/mine', row.locks, NOW, 120_000);
      expect(blocking.map((l) => l.key)).to.deep.equal(row.blocking);
      expect(stale.map((l) => l.key)).to.deep.equal(row.stale);
    });
  }

  const fast = { refreshMs: 20, staleMs: 120_000, pollMs: 10, waitMs: 60_000 };

  it('writes a plaintext lock under locks/, refreshes it, and removes it on release', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const held = await bank.lock('backup', 'h1');
    expect(held.key).to.match(/^locks\/backup-[0-9a-f]{16}$/);
    const rec = JSON.parse(store.objects.get(held.key)!.body.toString());
    expect(rec).to.include({ kind: 'backup', host: 'h1', pid: process.pid });
    const puts = store.calls.put;
    await waitFor('two refreshes', () => store.calls.put > puts + 1, 10_000, 5);
    await held.release();
    expect(store.keys('locks/')).to.deep.equal([]);
  });

  it('a gc waits for a live backup lock (saying whom it waits for) and proceeds once it is released', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const backup = await bank.lock('backup', 'h1');
    const waits: string[] = [];
    let gcHeld = false;
    const gc = bank.lock('gc', 'h2', { onWait: (m) => waits.push(m) }).then((l) => { gcHeld = true; return l; });
    await waitFor('the gc to wait', () => waits.length >= 3, 10_000, 5);
    expect(gcHeld).to.equal(false);
    expect(waits[0]).to.include('backup on host h1');
    // While it waits, the gc keeps no lock a backup would wait on.
    const second = await bank.lock('backup', 'h3', { waitMs: 0 });
    await second.release();
    await backup.release();
    const g = await gc;
    expect(store.keys('locks/')).to.deep.equal([g.key]);
    // A backup now waits for the gc, then proceeds.
    let backupHeld = false;
    const b2 = bank.lock('backup', 'h1', { onWait: (m) => waits.push(m) }).then((l) => { backupHeld = true; return l; });
    await waitFor('the backup to wait for the gc', () => waits.some((w) => w.includes('gc on host h2')), 10_000, 5);
    expect(backupHeld).to.equal(false);
    await g.release();
    await (await b2).release();
  });

  it('gives up with BANK_LOCKED naming the holder after its wait, leaving no lock of its own', async () => {
    const store = new MemoryBankStore('file:///srv/bank');
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const gc = await bank.lock('gc', 'h2');
    try {
      await bank.lock('backup', 'h1', { waitMs: 50 });
      expect.fail('took a lock beside a live gc');
    } catch (err) {
      expect(isFerryError(err, 'BANK_LOCKED'), String(err)).to.equal(true);
      expect((err as Error).message).to.include('gc on host h2').and.include('file:///srv/bank');
    }
    expect(store.keys('locks/')).to.deep.equal([gc.key]);
    await gc.release();
  });

  it('ignores a stale lock (not refreshed for 120 s), which gc then removes', async () => {
    const store = new MemoryBankStore();
    const bank = await Bank.create(store, randomBytes(32), { lockTimings: fast });
    const old = new Date(Date.now() - 10 * 60_000).toISOString();
    await store.put('locks/backup-dead', Buffer.from(JSON.stringify({ kind: 'backup', host: 'gone', pid: 9, started: old, refreshed: old })));
    await store.put('locks/gc-dead', Buffer.from(JSON.stringify({ kind: 'gc', host: 'gone', pid: 9, started: old, refreshed: old })));
    const b = await bank.lock('backup', 'h1', { waitMs: 0 });
    await b.release();
    const r = await bank.gc({ host: 'h1', waitMs: 0 });
    expect(r.removed).to.equal(0);
    expect(store.keys('locks/')).to.deep.equal([]);
  });
});

