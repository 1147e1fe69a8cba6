import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bank } from '../../src/bank/bank';
import type { BackupResult } from '../../src/bank/bank-backup';
import { openStore } from '../../src/bank/open-store';
import { backupTree, restoreTree } from '../../src/bank/tree-archive';
import type { BankLocation, BankStore, TreeEntry } from '../../src/bank/types';
import { FerryError } from '../../src/errors';
import { waitFor } from '../support/docker';
import { cleanupDir, makeTempDir } from '../support/host';
import { stagedFds } from '../support/staged-fds';
import { swiftAio, type SwiftAio } from '../support/swift';
import { treeDigest } from '../support/tree';

/*
 * Issue 8's faults, at the library level the agent's backup runner drives (Bank, the tree archive,
 * openStore), on a real Swift (s3api, on loopback) and a real file:// bank: the store stopped in the
 * middle of a backup, then the backup rerun; a corrupted chunk found by check --read-data; gc while
 * a backup holds its lock.
 */

const MiB = 2 ** 20;
const HOST = 'faults-host';

/** A tree of `mib` MiB of random files (1-3 MiB each, so many chunks) and a few small ones. */
function writeTree(root: string, mib: number, tag: string): void {
  mkdirSync(join(root, 'big'), { recursive: true });
  mkdirSync(join(root, 'small'), { recursive: true });
  for (let i = 0, done = 0; done < mib * MiB; i++) {
    const n = Math.min((1 + (i % 3)) * MiB, mib * MiB - done);
    writeFileSync(join(root, 'big', `${tag}-${i}.bin`), randomBytes(n));
    done += n;
  }
  for (let i = 0; i < 30; i++) writeFileSync(join(root, 'small', `${tag}-${i}.txt`), `file ${i} of ${tag}\n`.repeat(i + 1));
}

/** Backs `dir` up as `volume` the way the agent does (Bank.backUp: backup lock, trusted chunk list, parent, manifest last). */
async function backup(bank: Bank, dir: string, volume: string, o: { onUpload?: (bytes: number) => void } = {}): Promise<BackupResult> {
  return bank.backUp(dir, { volume, host: HOST, backend: 'directory', origin: 'manual' }, { stableInodes: false, ...o });
}

/** Restores checkpoint `id` into a new dir and returns the dir. */
async function restore(bank: Bank, id: string, into: string): Promise<string> {
  const { entries } = await bank.readCheckpoint(id);
  mkdirSync(into);
  await restoreTree(entries, into, { chunks: bank.chunks() });
  return into;
}

/** Every chunk id a checkpoint's files refer to. */
function chunkIds(entries: TreeEntry[]): Set<string> {
  return new Set(entries.flatMap((e) => (e.extents ?? []).map((x) => x.id)));
}

async function rejection(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(FerryError);
    return err as FerryError;
  }
  throw new Error('expected a rejection');
}

describe('bank faults (real Swift s3api and file://)', function () {
  let dir: string;
  let key: Buffer;

  before(function () {
    dir = makeTempDir('bank-faults');
    key = randomBytes(32);
  });
  after(function () {
    if (dir) cleanupDir(dir);
  });

  describe('Swift stopped in the middle of a backup', function () {
    let swift: SwiftAio;
    let loc: BankLocation;
    before(async function () {
      swift = await swiftAio(this);
      loc = await swift.bank('faults');
    });

    it('fails with BANK_UNAVAILABLE naming the bank, lists no checkpoint, and the rerun uploads only the missing chunks', async function () {
      const src = join(dir, 'resume-src');
      writeTree(src, 24, 'r');
      // Stop Swift once the first pack is in (onUpload tells each chunk of a pack once its index is
      // stored): the backup must fail, not hang, and say which bank. Puts started after that wait
      // for Swift to be down, so the failure does not race the stop. Packs of 4 MiB: 6 or so here.
      let puts = 0;
      let stopping: Promise<void> | undefined;
      const swiftStore = openStore(loc, { spoolDir: join(dir, 'spool') });
      const gatedPut = async (k: string, b: Buffer): Promise<void> => {
        await stopping?.catch(() => undefined);
        return swiftStore.put(k, b);
      };
      const gated: BankStore = {
        url: swiftStore.url,
        put: gatedPut,
        // The pack's own writer (staged on disk, streamed at commit), its commit gated as puts are.
        create: (k) => {
          const w = swiftStore.create(k);
          return {
            ...w,
            commit: async (size) => {
              await stopping?.catch(() => undefined);
              return w.commit(size);
            },
          };
        },
        get: (k) => swiftStore.get(k),
        getRange: (k, o, n) => swiftStore.getRange(k, o, n),
        has: (k) => swiftStore.has(k),
        list: (p) => swiftStore.list(p),
        delete: (ks) => swiftStore.delete(ks),
      };
      const bank = await Bank.create(gated, key, { packBytes: 4 * MiB });
      let err: FerryError;
      try {
        err = await rejection(
          backup(bank, src, 'resume', {
            onUpload: () => {
              if (++puts === 1) stopping = swift.stop();
            },
          }),
        );
        await stopping;
      } finally {
        // The Swift of this test process is shared with other suites: always back up.
        await stopping?.catch(() => undefined);
        await swift.start();
      }
      expect(err.code, err.message).to.equal('BANK_UNAVAILABLE');
      expect(err.message).to.include(loc.url);
      // The pack that was filling when the store went away is dropped: no staged copy held open.
      expect(stagedFds()).to.deep.equal([]);

      expect(await bank.listCheckpoints()).to.deep.equal([]);
      const before = await bank.knownChunks();
      expect(before.size, 'chunks the interrupted backup left (its first pack at least)').to.be.at.least(1);
      expect(before.size).to.equal(puts);

      let rerunPuts = 0;
      const { summary, uploadedBytes } = await backup(bank, src, 'resume', { onUpload: () => rerunPuts++ });
      const after = await bank.knownChunks();
      // Exactly the chunks not in an indexed pack went up, and nothing already there went up again.
      expect(rerunPuts).to.equal(after.size - before.size).and.be.above(0);
      expect(uploadedBytes).to.be.above(0);
      const { entries } = await bank.readCheckpoint(summary.id);
      const wanted = chunkIds(entries);
      expect([...before].filter((id) => !wanted.has(id)), 'chunks of the first run that the second does not use').to.deep.equal([]);
      expect((await bank.listCheckpoints()).map((c) => c.id)).to.deep.equal([summary.id]);
      expect(treeDigest(await restore(bank, summary.id, join(dir, 'resume-out')))).to.deep.equal(treeDigest(src));
    });
  });

  describe('file:// bank', function () {
    let bankDir: string;
    let bank: Bank;
    before(async function () {
      bankDir = join(dir, 'file-bank');
      mkdirSync(bankDir);
      bank = await Bank.create(openStore({ url: `file://${bankDir}` }), key);
    });

    it('check --read-data 100% finds a corrupted chunk and names every checkpoint it breaks', async function () {
      // Two volumes sharing a file (its chunks are stored once), and one that does not.
      const a = join(dir, 'corrupt-a');
      const b = join(dir, 'corrupt-b');
      const c = join(dir, 'corrupt-c');
      writeTree(a, 4, 'shared');
      cpSync(a, b, { recursive: true });
      writeFileSync(join(b, 'own.bin'), randomBytes(MiB));
      writeTree(c, 3, 'other');
      const ca = (await backup(bank, a, 'corrupt-a')).summary;
      const cb = (await backup(bank, b, 'corrupt-b')).summary;
      const cc = (await backup(bank, c, 'corrupt-c')).summary;
      const clean = await bank.check({ readDataPercent: 100 });
      expect(clean.problems).to.deep.equal([]);
      expect(clean.read).to.equal(clean.chunks);
      expect(clean.checkpoints).to.equal(3);

      // A chunk of a file both a and b hold (not of c), one byte flipped in the middle of its sealed
      // bytes inside its pack.
      const inA = chunkIds((await bank.readCheckpoint(ca.id)).entries);
      const inB = chunkIds((await bank.readCheckpoint(cb.id)).entries);
      const inC = chunkIds((await bank.readCheckpoint(cc.id)).entries);
      const victim = [...inA].find((id) => inB.has(id) && !inC.has(id));
      expect(victim, 'a chunk a and b share').to.be.a('string');
      const loc = (await bank.chunks().locate(victim!))!;
      const object = join(bankDir, 'packs', loc.pack.slice(0, 2), loc.pack);
      const bytes = readFileSync(object);
      bytes[loc.offset + (loc.length >> 1)] ^= 0x01;
      writeFileSync(object, bytes);

      // Existence alone does not see it; reading the data does, and says what it breaks.
      expect((await bank.check({})).problems).to.deep.equal([]);
      const found = await bank.check({ readDataPercent: 100 });
      expect(found.problems).to.deep.equal([{ chunk: victim, problem: 'corrupt', checkpoints: [ca.id, cb.id].sort() }]);
      expect(found.read).to.equal(found.chunks);
      const restoreErr = await rejection(restore(bank, ca.id, join(dir, 'corrupt-out')));
      expect(restoreErr.code).to.equal('BANK_CORRUPT');
      expect(restoreErr.message).to.include(victim!);
      // The checkpoint that does not use it still restores.
      expect(treeDigest(await restore(bank, cc.id, join(dir, 'corrupt-c-out')))).to.deep.equal(treeDigest(c));
    });

    it('gc waits while a backup holds its lock, then removes only unused chunks; every checkpoint restores byte for byte', async function () {
      mkdirSync(join(dir, 'gc-bank'));
      const gcBank = await Bank.create(openStore({ url: `file://${join(dir, 'gc-bank')}` }), key);
      const t0 = join(dir, 'gc-0');
      const t1 = join(dir, 'gc-1');
      const t2 = join(dir, 'gc-2');
      writeTree(t0, 4, 'zero');
      writeTree(t1, 4, 'one');
      writeTree(t2, 4, 'two');
      const c0 = (await backup(gcBank, t0, 'gc-0')).summary;
      const c1 = (await backup(gcBank, t1, 'gc-1')).summary;
      const garbage = chunkIds((await gcBank.readCheckpoint(c0.id)).entries);
      await gcBank.removeCheckpoint(c0.id);

      // A backup in flight: lock held, its chunks uploaded, its manifest not yet written.
      const lock = await gcBank.lock('backup', 'backup-host');
      const chunks = gcBank.chunks({ trusted: await gcBank.knownChunks() });
      const r = await backupTree(t2, { cutter: gcBank.cutter(), chunks, stableInodes: false });
      // Its packs are stored as it goes; the last, partly filled one too (as writeCheckpoint would).
      await chunks.flush();
      const inFlight = new Set(r.entries.flatMap((e) => (e.extents ?? []).map((x) => x.id)));
      let settled = false;
      const waits: string[] = [];
      const gc = gcBank.gc({ host: 'gc-host', onWait: (m) => waits.push(m) }).finally(() => (settled = true));
      // gc sees the backup's lock and waits, saying for whom; three rounds of it (a poll every ~2 s),
      // and each time the in-flight chunks are all still there.
      for (let round = 1; round <= 3; round++) {
        await waitFor(`gc's wait number ${round}`, () => settled || waits.length >= round, 30_000, 20);
        expect(settled, 'gc finished while a backup held its lock').to.equal(false);
        expect(waits[round - 1]).to.match(/waiting for backup on host backup-host/);
        const known = await gcBank.knownChunks();
        expect([...inFlight].filter((id) => !known.has(id)), 'in-flight chunks gc removed').to.deep.equal([]);
      }
      const c2 = await gcBank.writeCheckpoint(
        { volume: 'gc-2', time: new Date().toISOString(), host: 'backup-host', backend: 'directory', dataBytes: r.dataBytes, files: r.files, origin: 'manual' },
        r.entries,
        chunks,
      );
      await lock.release();
      const result = await gc;

      const known = await gcBank.knownChunks();
      const used = new Set([...chunkIds((await gcBank.readCheckpoint(c1.id)).entries), ...inFlight]);
      // c0's own chunks are gone; nothing a checkpoint uses is.
      expect([...garbage].filter((id) => known.has(id) && !used.has(id))).to.deep.equal([]);
      expect(result.removed).to.be.at.least([...garbage].filter((id) => !used.has(id)).length);
      expect([...used].filter((id) => !known.has(id))).to.deep.equal([]);
      expect(treeDigest(await restore(gcBank, c1.id, join(dir, 'gc-out-1')))).to.deep.equal(treeDigest(t1));
      expect(treeDigest(await restore(gcBank, c2.id, join(dir, 'gc-out-2')))).to.deep.equal(treeDigest(t2));
      expect((await gcBank.check({ readDataPercent: 100 })).problems).to.deep.equal([]);
    });
  });
});
