import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, openSync, closeSync, writeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backupTree, restoreTree } from '../../src/bank/tree-archive';
import { Bank } from '../../src/bank/bank';
import { openStore } from '../../src/bank/open-store';
import { FerryError } from '../../src/errors';
import type { ChunkStore, TreeEntry } from '../../src/bank/types';
import { missingNeeds } from '../contract/backend-contract';
import { MemoryChunks, TestCutter } from '../support/bank-doubles';
import { MemoryBankStore } from '../support/memory-bank-store';
import { READ_AHEAD_BYTES } from '../../src/bank/bank-chunks';
import { cleanupDir, makeLoopFs, makeTempDir, sh } from '../support/host';
import { describeTree, expectSameTree, writeRichTree, xattrDump, type MetaEntry } from '../support/tree-meta';

const MiB = 1024 * 1024;
const TOOLS = ['getfattr', 'setfattr', 'setfacl', 'mknod', 'python3'];

/** A loop-mounted filesystem of `kind` at `mnt` (image in `dir`). */
function makeFs(kind: 'ext4' | 'xfs' | 'btrfs', dir: string): string {
  const mnt = join(dir, 'fs');
  if (kind === 'btrfs') {
    sh(['truncate', '-s', String(512 * MiB), join(dir, 'fs.img')]);
    sh(['mkfs.btrfs', '-q', '-f', join(dir, 'fs.img')]);
    mkdirSync(mnt);
    sh(['mount', '-o', 'loop', join(dir, 'fs.img'), mnt]);
  } else makeLoopFs(join(dir, 'fs.img'), mnt, 512 * MiB, kind);
  return mnt;
}


/** The subtree of a description under `prefix`, its paths unchanged. */
function subtree(m: Map<string, MetaEntry>, prefix: string): Map<string, MetaEntry> {
  return new Map([...m].filter(([p]) => p === prefix || p.startsWith(`${prefix}/`)));
}

const byPath = (entries: TreeEntry[]): Map<string, TreeEntry> => new Map(entries.map((e) => [e.path, e]));

for (const kind of ['ext4', 'xfs', 'btrfs'] as const) {
  describe(`bank tree archive on ${kind}: round trips`, function () {
    let dir: string;
    let mnt: string;
    before(function () {
      const missing = missingNeeds({ tools: [`mkfs.${kind}`, ...TOOLS], filesystems: [kind] });
      if (missing.length > 0) {
        console.log(`    SKIPPED bank tree archive on ${kind}: this machine lacks ${missing.join(', ')} (scripts/install-deps.sh installs them)`);
        this.skip();
      }
      dir = makeTempDir(`bank-tree-${kind}`);
      mnt = makeFs(kind, dir);
    });
    after(() => {
      if (dir) cleanupDir(dir);
    });

    it('restores every kind of entry byte for byte with owners, modes, mtimes, xattrs, ACLs, holes and links', async () => {
      const src = join(mnt, 'rich');
      mkdirSync(src);
      const { sparse, socket } = writeRichTree(src);
      const chunks = new MemoryChunks();
      const progress: number[] = [];
      const b = await backupTree(src, { cutter: new TestCutter(), chunks, stableInodes: true, progress: (p) => progress.push(p.doneBytes) });

      const before = describeTree(src);
      const types = new Set(b.entries.map((e) => e.type));
      expect([...types].sort()).to.deep.equal(['chardev', 'dir', 'fifo', 'file', 'hardlink', 'symlink']);
      expect(b.entries.map((e) => e.path)).to.not.include(socket);
      expect(b.entries.find((e) => e.path === 'other/linked-3')).to.include({ type: 'hardlink', target: 'data/linked' });
      // Every file's bytes once (hard links once), holes included; progress ends at the total.
      const fileSizes = [...before.entries()].filter(([p, e]) => e.desc.startsWith('file') && b.entries.find((x) => x.path === p)?.type === 'file');
      expect(b.files).to.equal(fileSizes.length);
      expect(progress[progress.length - 1]).to.equal(b.dataBytes);
      // The holes of the sparse file never entered the stream.
      const sp = b.entries.find((e) => e.path === sparse)!;
      expect(sp.extents!.reduce((n, x) => n + x.length, 0)).to.be.below(64 * 1024);

      const dst = join(mnt, 'restored');
      mkdirSync(dst);
      const r = await restoreTree(b.entries, dst, { chunks });
      expect(r.files).to.equal(b.files);
      expectSameTree(before, describeTree(dst), [socket]);
      expect(xattrDump(dst)).to.deep.equal(xattrDump(src));
      expect(xattrDump(dst).join('\n')).to.include('system.posix_acl_access').and.include('system.posix_acl_default').and.include('user.note');
      expect(sh(['getfacl', '-c', join(dst, 'data/small-004')])).to.equal(sh(['getfacl', '-c', join(src, 'data/small-004')]));
      // Holes stay holes: a 16 MiB file with about 10 KiB of data takes little room.
      expect(lstatSync(join(dst, sparse)).blocks * 512).to.be.below(1 * MiB);
      // Hard links share one inode again.
      expect(lstatSync(join(dst, 'other/linked-3')).ino).to.equal(lstatSync(join(dst, 'data/linked')).ino);
      // Exact where the double allows: whole seconds and sub-second to the microsecond.
      expect(lstatSync(join(dst, 'data/small-005'), { bigint: true }).mtimeNs).to.equal(1600000000123456000n);
      // One get per chunk: the cache serves the many small files of a chunk.
      const used = new Set(b.entries.flatMap((e) => (e.extents ?? []).map((x) => x.id)));
      expect(chunks.gets).to.equal(used.size);
      // Each chunk's memory given back once its last extent is written (scribbled over then: the
      // byte-for-byte check above proves nothing read it after).
      await new Promise((r) => setImmediate(r));
      expect(chunks.released).to.equal(used.size);
      expect(chunks.unreleased).to.equal(0);
    });

    it('an incremental backup after a 1% change reads only the changed file and reuses the others', async () => {
      const src = join(mnt, 'incr');
      mkdirSync(src);
      for (let i = 0; i < 100; i++) writeFileSync(join(src, `f${String(i).padStart(3, '0')}`), randomBytes(100 * 1024));
      const chunks = new MemoryChunks();
      const first = await backupTree(src, { cutter: new TestCutter(), chunks, stableInodes: true });
      expect(first.readFiles).to.equal(100);
      const afterFirst = chunks.uploadedBytes();

      // 1%: rewrite 100 KiB in one file of 10 MiB (mtime and ctime move).
      const fd = openSync(join(src, 'f042'), 'r+');
      writeSync(fd, randomBytes(100 * 1024), 0, 100 * 1024, 0);
      closeSync(fd);
      const second = await backupTree(src, { cutter: new TestCutter(), chunks, parent: first.entries, stableInodes: true });
      expect(second.readFiles).to.equal(1);
      expect(second.reusedFiles).to.equal(99);
      const parent = byPath(first.entries);
      for (const e of second.entries.filter((x) => x.type === 'file' && x.path !== 'f042')) expect(e.extents, e.path).to.deep.equal(parent.get(e.path)!.extents);
      expect(second.entries.find((e) => e.path === 'f042')!.extents).to.not.deep.equal(parent.get('f042')!.extents);
      // About 1% uploaded: the changed file's chunks and the one its neighbour shares with it.
      const added = chunks.uploadedBytes() - afterFirst;
      expect(added).to.be.above(50 * 1024).and.below(afterFirst * 0.05);

      // Without stable inodes everything is read and hashed; only the chunks where the whole
      // stream differs from the last one's pieces are new (around f042, cut alone last time).
      const third = await backupTree(src, { cutter: new TestCutter(), chunks, parent: second.entries, stableInodes: false });
      expect(third.readFiles).to.equal(100);
      const addedThird = chunks.uploadedBytes() - afterFirst - added;
      expect(addedThird).to.be.below(afterFirst * 0.05);
      const fourth = await backupTree(src, { cutter: new TestCutter(), chunks, parent: third.entries, stableInodes: false });
      expect(fourth.readFiles).to.equal(100);
      expect(chunks.uploadedBytes(), 'nothing changed, nothing uploads').to.equal(afterFirst + added + addedThird);
      expect(fourth.entries).to.deep.equal(third.entries);

      const dst = join(mnt, 'incr-restored');
      mkdirSync(dst);
      await restoreTree(second.entries, dst, { chunks });
      expectSameTree(describeTree(src), describeTree(dst));
    });

    // --path does not depend on the filesystem: once is enough.
    if (kind === 'ext4') it('restores one subtree or one file with --path, its parents made', async () => {
      const src = join(mnt, 'rich-for-path');
      mkdirSync(src);
      writeRichTree(src, { smallFiles: 10, bigBytes: MiB });
      const chunks = new MemoryChunks();
      const b = await backupTree(src, { cutter: new TestCutter(), chunks, stableInodes: true });
      const all = describeTree(src);

      const one = join(mnt, 'path-sub');
      mkdirSync(one);
      await restoreTree(b.entries, one, { chunks, path: 'data/sub' });
      expect(describeTree(one).has('other')).to.equal(false);
      const got = describeTree(join(one, 'data/sub'));
      const want = describeTree(join(src, 'data/sub'));
      expectSameTree(want, got);

      // A hard link whose first path is outside: it carries the data itself.
      const other = join(mnt, 'path-other');
      mkdirSync(other);
      await restoreTree(b.entries, other, { chunks, path: '/other/' });
      expect(readFileSync(join(other, 'other/linked-3'))).to.deep.equal(readFileSync(join(src, 'data/linked')));
      expect(lstatSync(join(other, 'other/fifo-linked')).isFIFO(), 'a linked fifo whose first name is outside').to.equal(true);
      expect(existsSync(join(other, 'data'))).to.equal(false);
      expect(describeTree(join(other, 'other')).get('with space')!.desc).to.equal(subtree(all, 'other').get('other/with space')!.desc);

      const file = join(mnt, 'path-file');
      mkdirSync(file);
      await restoreTree(b.entries, file, { chunks, path: 'data/sub/deep/big.bin' });
      expect(readFileSync(join(file, 'data/sub/deep/big.bin'))).to.deep.equal(readFileSync(join(src, 'data/sub/deep/big.bin')));
    });

    // What stableInodes stands on: a btrfs snapshot keeps every unchanged file's inode and ctime.
    if (kind === 'btrfs') it('reuses unchanged files between two snapshots of a subvolume', async () => {
      const vol = join(mnt, 'vol');
      sh(['btrfs', 'subvolume', 'create', vol]);
      for (let i = 0; i < 50; i++) writeFileSync(join(vol, `f${i}`), randomBytes(20 * 1024));
      sh(['btrfs', 'subvolume', 'snapshot', '-r', vol, join(mnt, 'snap1')]);
      const chunks = new MemoryChunks();
      const first = await backupTree(join(mnt, 'snap1'), { cutter: new TestCutter(), chunks, stableInodes: true });
      writeFileSync(join(vol, 'f7'), randomBytes(20 * 1024));
      sh(['btrfs', 'subvolume', 'snapshot', '-r', vol, join(mnt, 'snap2')]);
      const second = await backupTree(join(mnt, 'snap2'), { cutter: new TestCutter(), chunks, parent: first.entries, stableInodes: true });
      expect(second.readFiles).to.equal(1);
      expect(second.reusedFiles).to.equal(49);
      const dst = join(mnt, 'snap2-restored');
      mkdirSync(dst);
      await restoreTree(second.entries, dst, { chunks });
      expectSameTree(describeTree(join(mnt, 'snap2')), describeTree(dst));
    });
  });
}

describe('bank tree archive through a real bank (its FastCDC chunker, sealed chunks) on ext4', function () {
  let dir: string;
  let mnt: string;
  before(function () {
    const missing = missingNeeds({ tools: ['mkfs.ext4', ...TOOLS], filesystems: ['ext4'] });
    if (missing.length > 0) {
      console.log(`    SKIPPED bank tree archive through a real bank (round trip, pack order): this machine lacks ${missing.join(', ')}`);
      this.skip();
    }
    dir = makeTempDir('bank-tree-real');
    mnt = makeFs('ext4', dir);
  });
  after(() => {
    if (dir) cleanupDir(dir);
  });

  it('a checkpoint written and read back restores the same tree', async () => {
    const src = join(mnt, 'src');
    mkdirSync(src);
    const { socket } = writeRichTree(src, { bigBytes: 9 * MiB });
    mkdirSync(join(dir, 'bank'));
    const key = randomBytes(32);
    const bank = await Bank.create(openStore({ url: `file://${join(dir, 'bank')}` }), key);
    try {
      const chunks = bank.chunks({ trusted: await bank.knownChunks() });
      const b = await backupTree(src, { cutter: bank.cutter(), chunks, stableInodes: true });
      // The 9 MiB file is more than the largest chunk (4 MiB): several extents.
      expect(b.entries.find((e) => e.path === 'data/sub/deep/big.bin')!.extents!.length).to.be.above(2);
      const summary = await bank.writeCheckpoint({ volume: 'v', time: new Date().toISOString(), host: 'h', backend: 'loop', dataBytes: b.dataBytes, files: b.files, origin: 'manual' }, b.entries, chunks);

      const reopened = await Bank.open(openStore({ url: `file://${join(dir, 'bank')}` }), key);
      try {
        const { entries } = await reopened.readCheckpoint(summary.id);
        expect(entries).to.deep.equal(b.entries);
        const dst = join(mnt, 'dst');
        mkdirSync(dst);
        await restoreTree(entries, dst, { chunks: reopened.chunks() });
        expectSameTree(describeTree(src), describeTree(dst), [socket]);
        expect(xattrDump(dst)).to.deep.equal(xattrDump(src));
      } finally {
        await reopened.close();
      }
    } finally {
      await bank.close();
    }
  });

  it('asks for every chunk once, in pack and offset order, whatever files share it; every stored byte read at most once', async () => {
    const src = join(mnt, 'order-src');
    mkdirSync(src);
    // A first backup stores files a… and z… (and a copy of one: its chunks serve two files, and
    // small files sharing chunks); a second stores m… anew. The second checkpoint's walk order is
    // a…, m…, z…: it goes back to the first backup's packs after the second's, where a restore in
    // pack order visits each pack once.
    const big = [0, 1, 2, 3].map(() => randomBytes(3 * MiB));
    writeFileSync(join(src, 'a0'), big[0]);
    writeFileSync(join(src, 'a1'), big[1]);
    writeFileSync(join(src, 'z0'), big[2]);
    writeFileSync(join(src, 'z0-again'), big[2]);
    mkdirSync(join(src, 'small'));
    for (let i = 0; i < 200; i++) writeFileSync(join(src, 'small', `f${i}`), randomBytes(2000 + i));
    const store = new MemoryBankStore();
    const key = randomBytes(32);
    const bank = await Bank.create(store, key, { packBytes: 4 * MiB });
    try {
      const first = bank.chunks({ trusted: await bank.knownChunks() });
      const b1 = await backupTree(src, { cutter: bank.cutter(), chunks: first, stableInodes: true });
      await first.flush();
      writeFileSync(join(src, 'm0'), big[3]);
      const second = bank.chunks({ trusted: await bank.knownChunks() });
      const b = await backupTree(src, { cutter: bank.cutter(), chunks: second, parent: Promise.resolve(b1.entries), stableInodes: true });
      await second.flush();
      const reader = bank.chunks();
      const asked: string[] = [];
      const spy: ChunkStore = {
        put: (p, id) => reader.put(p, id),
        idOf: (p) => reader.idOf(p),
        holds: (id) => reader.holds(id),
        get: (id) => {
          asked.push(id);
          return reader.get(id);
        },
        readOrder: (ids) => reader.readOrder(ids),
        release: (p) => reader.release(p),
        uploadedBytes: () => reader.uploadedBytes(),
        flush: () => reader.flush(),
        close: () => reader.close(),
      };
      const where = new Map<string, { pack: string; offset: number; length: number }>();
      const walkOrder: string[] = [];
      for (const e of b.entries) for (const x of e.extents ?? []) {
        if (!where.has(x.id)) walkOrder.push(x.id);
        where.set(x.id, (await reader.locate(x.id))!);
      }
      const visitsOf = (ids: string[]): string[] => ids.map((id) => where.get(id)!.pack).filter((p, i, all) => i === 0 || all[i - 1] !== p);
      const packs = new Set([...where.values()].map((w) => w.pack));
      expect(packs.size, 'the tree spans several packs').to.be.above(3);
      expect(visitsOf(walkOrder).length, 'walk order goes back to a pack it left').to.be.above(packs.size);
      // The ranged reads a restore in pack order makes: per pack, runs of back-to-back chunks of at
      // most READ_AHEAD_BYTES from a run's first byte (BankChunks.following's rule).
      let ranges = 0;
      for (const p of packs) {
        const inPack = [...where.values()].filter((w) => w.pack === p).sort((x, y) => x.offset - y.offset);
        let start = -1;
        let end = -1;
        for (const w of inPack) {
          if (start < 0 || w.offset !== end || w.offset + w.length - start > READ_AHEAD_BYTES) {
            ranges++;
            start = w.offset;
          }
          end = w.offset + w.length;
        }
      }
      const before = store.calls.getRange;
      let rangeBytes = 0;
      const getRange = store.getRange.bind(store);
      store.getRange = (k, offset, length, into) => {
        rangeBytes += length;
        return getRange(k, offset, length, into);
      };
      const dst = join(mnt, 'order-dst');
      mkdirSync(dst);
      await restoreTree(b.entries, dst, { chunks: spy });
      expectSameTree(describeTree(src), describeTree(dst));
      expect(asked.length, 'each chunk asked for once').to.equal(new Set(asked).size);
      expect(new Set(asked)).to.deep.equal(new Set(walkOrder));
      // Pack by pack: once a pack is left, it is never come back to; within a pack, by offset.
      expect(visitsOf(asked).length, `packs visited in turn: ${visitsOf(asked).join(' ')}`).to.equal(packs.size);
      for (let i = 1; i < asked.length; i++) {
        const [x, y] = [where.get(asked[i - 1])!, where.get(asked[i])!];
        if (x.pack === y.pack) expect(y.offset, 'by offset in a pack').to.be.above(x.offset);
      }
      const needed = [...where.values()].reduce((n, w) => n + w.length, 0);
      expect(rangeBytes, 'no byte read twice, none not needed').to.equal(needed);
      expect(store.calls.getRange - before, 'a ranged read per run of chunks').to.equal(ranges);
    } finally {
      await bank.close();
    }
  });
});

describe('bank tree archive: restore refuses what could escape or overwrite', function () {
  let dir: string;
  const chunks = new MemoryChunks();
  const t = { mode: 0o755, uid: 0, gid: 0, mtimeNs: '1000000000000000000' };
  before(function () {
    const missing = missingNeeds({ tools: TOOLS, filesystems: [] });
    if (missing.length > 0) {
      console.log(`    SKIPPED bank tree archive restore checks: this machine lacks ${missing.join(', ')}`);
      this.skip();
    }
    dir = makeTempDir('bank-tree-refuse');
  });
  after(() => {
    if (dir) cleanupDir(dir);
  });
  const target = (name: string): string => {
    const p = join(dir, name);
    mkdirSync(p);
    return p;
  };
  const code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      expect(err).to.be.instanceOf(FerryError);
      return (err as FerryError).code;
    }
    return 'no error';
  };

  it('refuses an entry with .. or an absolute path, writing nothing', async () => {
    for (const path of ['../escaped', '/etc/escaped', 'a/../../escaped']) {
      const into = target(`dotdot-${path.length}`);
      const entries: TreeEntry[] = [{ ...t, path: '', type: 'dir' }, { ...t, path, type: 'file', size: 0, extents: [] }];
      expect(await code(restoreTree(entries, into, { chunks }))).to.equal('BANK_CORRUPT');
    }
    expect(existsSync(join(dir, 'escaped'))).to.equal(false);
  });

  it('refuses an entry under a symlink of the tree (never writes through it)', async () => {
    const into = target('through-link');
    const outside = target('outside');
    const entries: TreeEntry[] = [
      { ...t, path: '', type: 'dir' },
      { ...t, path: 'a', type: 'symlink', target: outside },
      { ...t, path: 'a/evil', type: 'file', size: 0, extents: [] },
    ];
    expect(await code(restoreTree(entries, into, { chunks }))).to.equal('BANK_CORRUPT');
    expect(existsSync(join(outside, 'evil'))).to.equal(false);
  });

  it('refuses a --path with .., and a path the checkpoint lacks', async () => {
    const entries: TreeEntry[] = [{ ...t, path: '', type: 'dir' }];
    expect(await code(restoreTree(entries, target('p1'), { chunks, path: '../x' }))).to.equal('INVALID_OPTION');
    expect(await code(restoreTree(entries, target('p2'), { chunks, path: 'nope' }))).to.equal('INVALID_OPTION');
  });

  it('refuses a directory that is not empty, accepts one holding only lost+found', async () => {
    const entries: TreeEntry[] = [{ ...t, path: '', type: 'dir' }, { ...t, path: 'lost+found', type: 'dir', mode: 0o700 }, { ...t, path: 'x', type: 'dir' }];
    const full = target('full');
    mkdirSync(join(full, 'something'));
    let message = '';
    await restoreTree(entries, full, { chunks }).catch((err: Error) => (message = err.message));
    expect(message).to.match(/not empty \(it holds something\)/);
    const fresh = target('fresh');
    mkdirSync(join(fresh, 'lost+found'));
    await restoreTree(entries, fresh, { chunks });
    expect(existsSync(join(fresh, 'x'))).to.equal(true);
    expect(await code(restoreTree(entries, join(dir, 'missing'), { chunks }))).to.equal('INVALID_OPTION');
  });
});
