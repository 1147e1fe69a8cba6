import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import {
  abilitiesOf,
  hasClones,
  hasSnapshots,
  hasStreams,
  hasUsage,
  type Backend,
  type CloneCapable,
  type DatasetSpec,
  type SnapshotCapable,
  type StreamCapable,
  type UsageCapable,
} from '../../src/agent/backends/backend';
import { descriptorOf, type BackendKind } from '../../src/agent/backends/registry';
import { isFerryError, type ErrorCode } from '../../src/errors';
import { isMountPoint } from '../../src/agent/mount-table';
import { cleanupDir, makeTempDir } from '../support/host';
import { treeDigest, writeSampleTree } from '../support/tree';

/** What a fixture needs of the machine: commands on PATH and filesystems the kernel can mount. */
export interface FixtureNeeds {
  tools: readonly string[];
  /** Filesystem types (as in /proc/filesystems; a module is loaded if it is there to load). */
  filesystems: readonly string[];
  /** Kernel modules (as in /sys/module, e.g. dm_thin_pool; loaded if the machine has them to load). */
  modules?: readonly string[];
  /** Anything else, checked (and started, like a daemon) when the suite begins: what is missing, in words. */
  check?: () => string[];
}

/** One backend under test: how to make a fresh pool of it in an empty temp dir. */
export interface BackendFixture {
  label: string;
  /** The registered kind: the abilities under test are its descriptor's. */
  kind: BackendKind;
  needs: FixtureNeeds;
  /** The spec volumes get in these tests (a size the backend enforces, if it enforces one). */
  spec: DatasetSpec;
  make(dir: string): Promise<MadePool>;
  /** Removes what `make` made outside `dir`'s mounts and files (ZFS pools live in a daemon); before `dir` goes. */
  cleanup?(dir: string): void;
}

/** A fresh pool of a fixture. */
export interface MadePool {
  backend: Backend;
  /** Where files are written to fill the pool (fillWithFiles), unless `fill` is given. */
  fillPath: string;
  /** Fills the pool another way (a thin pool fills through a block device, not files); returns how to free it again. */
  fill?: () => Promise<() => Promise<void>>;
  /** Removes what the pool holds outside the temp dir (a volume group). */
  cleanup?: () => Promise<void>;
}

function hasFilesystem(fs: string): boolean {
  const known = (): boolean => readFileSync('/proc/filesystems', 'utf8').split('\n').some((l) => l.split('\t').pop() === fs);
  if (known()) return true;
  // Not loaded yet: load its module if the machine has one (as mount would).
  spawnSync('modprobe', ['-q', fs]);
  return known();
}

function hasModule(m: string): boolean {
  if (existsSync(`/sys/module/${m}`)) return true;
  spawnSync('modprobe', ['-q', m]);
  return existsSync(`/sys/module/${m}`);
}

/** What of `needs` this machine lacks, in words; empty when the fixture can run. */
export function missingNeeds(needs: FixtureNeeds): string[] {
  const missing: string[] = [];
  if (process.getuid && process.getuid() !== 0) missing.push('root');
  for (const t of needs.tools) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) missing.push(`the command ${t}`);
  for (const f of needs.filesystems) if (!hasFilesystem(f)) missing.push(`the ${f} filesystem in the kernel`);
  for (const m of needs.modules ?? []) if (!hasModule(m)) missing.push(`the kernel module ${m}`);
  if (missing.length === 0 && needs.check) missing.push(...needs.check());
  return missing;
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const EDQUOT = constants.errno.EDQUOT;

/** Writes to `file` in 1 MiB chunks until a write fails; returns the error code and bytes written. */
export function writeUntilFull(file: string, limit: number): { code: string | undefined; written: number } {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1024 * 1024, 7);
  let written = 0;
  try {
    while (written < limit) written += writeSync(fd, chunk);
    return { code: undefined, written };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Node 20's libuv has no name for EDQUOT (btrfs quota groups): it reports errno -122 as UNKNOWN.
    return { code: e.errno === -EDQUOT ? 'EDQUOT' : e.code, written };
  } finally {
    try {
      closeSync(fd);
    } catch {
      /* a full filesystem may also fail the close; the write error is what we test */
    }
  }
}

/**
 * Fills the filesystem holding `base` with 8 MiB files named after it until a write fails, synced;
 * returns their paths. Many files, not one: each is inactivated separately once unlinked.
 */
function fillWithFiles(base: string): string[] {
  const files: string[] = [];
  for (let i = 0; ; i++) {
    const f = `${base}-${i}`;
    files.push(f);
    if (writeUntilFull(f, 8 * 1024 * 1024).code !== undefined) break;
  }
  spawnSync('sync');
  return files;
}

/**
 * The contract every backend meets, run for real against each (Flocker's make_iblockdeviceapi_tests):
 * a core suite, then one sub-suite per optional ability its descriptor lists. A fixture whose needs
 * this machine lacks is skipped, loudly, with what is missing; the other fixtures still run.
 */
export function backendContract(fx: BackendFixture): void {
  const abilities = descriptorOf(fx.kind)?.abilities ?? [];
  describe(`backend contract: ${fx.label}`, function () {
    let dir: string;
    let b: Backend;
    let pool: MadePool;
    let fillPath: string;
    let mnt: string;
    let cleanups: (() => Promise<void>)[] = [];
    const make = async (d: string): Promise<MadePool> => {
      const made = await fx.make(d);
      if (made.cleanup) cleanups.push(made.cleanup);
      return made;
    };

    before(function () {
      const missing = missingNeeds(fx.needs);
      if (missing.length > 0) {
        console.log(`    SKIPPED backend contract: ${fx.label}: this machine lacks ${missing.join(', ')}`);
        this.skip();
      }
    });
    beforeEach(async function () {
      dir = makeTempDir(fx.label.replace(/\W+/g, '-'));
      pool = await make(join(dir, 'a'));
      ({ backend: b, fillPath } = pool);
      mnt = join(dir, 'mnt');
      mkdirSync(mnt);
    });
    afterEach(async function () {
      for (const c of cleanups.reverse()) await c();
      cleanups = [];
      if (dir) fx.cleanup?.(dir);
      if (dir) cleanupDir(dir);
    });

    it('has exactly the abilities its descriptor lists', function () {
      expect(b.kind).to.equal(fx.kind);
      expect(abilitiesOf(b)).to.deep.equal([...abilities]);
    });

    it('creates idempotently, lists, and destroys idempotently', async function () {
      await b.create('vol1', fx.spec);
      await b.create('vol1', fx.spec);
      await b.create('vol2', fx.spec);
      expect(await b.exists('vol1')).to.equal(true);
      expect(await b.list()).to.include.members(['vol1', 'vol2']);
      await b.destroy('vol1');
      await b.destroy('vol1');
      expect(await b.exists('vol1')).to.equal(false);
      expect(await b.list()).to.deep.equal(['vol2']);
    });

    it('starts empty and knows no unknown name: exists is false, destroy and unmount are no-ops', async function () {
      expect(await b.list()).to.deep.equal([]);
      expect(await b.exists('ghost')).to.equal(false);
      await b.destroy('ghost');
      await b.unmount('ghost', mnt);
      expect(await b.list()).to.deep.equal([]);
    });

    it('refuses to mount an unknown name with VOLUME_NOT_FOUND', async function () {
      await expectCode(b.mount('ghost', mnt), 'VOLUME_NOT_FOUND');
      expect(isMountPoint(mnt)).to.equal(false);
    });

    it('inits twice and keeps what the pool holds', async function () {
      await b.create('kept', fx.spec);
      await b.init();
      expect(await b.list()).to.deep.equal(['kept']);
      await b.create('second', fx.spec);
      expect(await b.list()).to.deep.equal(['kept', 'second']);
    });

    it('leaves the data of an existing dataset alone on a second create', async function () {
      await b.create('twice', fx.spec);
      await b.mount('twice', mnt);
      writeFileSync(join(mnt, 'keep.txt'), 'kept');
      await b.unmount('twice', mnt);
      await b.create('twice', fx.spec);
      await b.mount('twice', mnt);
      expect(readFileSync(join(mnt, 'keep.txt'), 'utf8')).to.equal('kept');
      await b.unmount('twice', mnt);
    });

    it('mounts and unmounts idempotently, and keeps data across mounts', async function () {
      await b.create('data', fx.spec);
      await b.mount('data', mnt);
      await b.mount('data', mnt);
      expect(isMountPoint(mnt)).to.equal(true);
      writeFileSync(join(mnt, 'hello.txt'), 'hello ferry');
      await b.unmount('data', mnt);
      await b.unmount('data', mnt);
      expect(isMountPoint(mnt)).to.equal(false);
      expect(existsSync(join(mnt, 'hello.txt'))).to.equal(false);
      await b.mount('data', mnt);
      expect(readFileSync(join(mnt, 'hello.txt'), 'utf8')).to.equal('hello ferry');
      await b.unmount('data', mnt);
    });

    it('mounts read-only when asked', async function () {
      await b.create('ro', fx.spec);
      await b.mount('ro', mnt, { readOnly: true });
      expect(() => writeFileSync(join(mnt, 'x'), 'x')).to.throw().with.property('code', 'EROFS');
      await b.unmount('ro', mnt);
    });

    it('refuses to destroy a mounted dataset with VOLUME_BUSY', async function () {
      await b.create('busy', fx.spec);
      await b.mount('busy', mnt);
      await expectCode(b.destroy('busy'), 'VOLUME_BUSY');
      expect(await b.exists('busy')).to.equal(true);
      await b.unmount('busy', mnt);
      await b.destroy('busy');
    });

    it('enforces the size limit with ENOSPC or EDQUOT and keeps the dataset usable', async function () {
      if (!b.sizeRules.enforcesSize) {
        expect(fx.spec.sizeBytes, 'a backend that cannot enforce a size gets no size').to.equal(undefined);
        return;
      }
      const size = fx.spec.sizeBytes!;
      await b.create('small', fx.spec);
      await b.mount('small', mnt);
      const r = writeUntilFull(join(mnt, 'fill'), size * 2);
      expect(r.code, `wrote ${r.written} bytes into a ${size}-byte volume`).to.be.oneOf(['ENOSPC', 'EDQUOT']);
      expect(r.written).to.be.at.most(size);
      // Freeing space makes the volume writable again.
      unlinkSync(join(mnt, 'fill'));
      writeFileSync(join(mnt, 'after'), 'still works');
      await b.unmount('small', mnt);
    });

    it('fails Create on a full pool with POOL_FULL and leaves nothing behind', async function () {
      await b.create('before', fx.spec);
      const listBefore = await b.list();
      let free: () => Promise<void>;
      if (pool.fill) free = await pool.fill();
      else {
        const files = fillWithFiles(fillPath);
        free = async () => files.forEach((f) => unlinkSync(f));
      }
      await expectCode(b.create('after', fx.spec), 'POOL_FULL');
      expect(await b.exists('after')).to.equal(false);
      expect(await b.list()).to.deep.equal(listBefore);
      // Freeing space makes Create work again, at once: the backend must not refuse on free-space
      // figures that lag the unlink. XFS (Linux 6.0+) frees unlinked files' blocks in background
      // inode inactivation and statfs does not wait for it; many files make that window wide.
      await free();
      await b.create('after', fx.spec);
      expect(await b.exists('after')).to.equal(true);
    });

    it('reports capacity in bytes', async function () {
      const cap = await b.capacity();
      expect(cap.totalBytes).to.be.above(0);
      expect(cap.freeBytes).to.be.at.most(cap.totalBytes);
    });

    const when = (ability: string, title: string, suite: () => void): void => {
      if ((abilities as readonly string[]).includes(ability)) describe(title, suite);
    };

    when('snapshots', 'snapshots', function () {
      let s: Backend & SnapshotCapable;
      beforeEach(function () {
        if (!hasSnapshots(b)) expect.fail(`${fx.label} lists snapshots but has no snapshot methods`);
        s = b;
      });

      it('takes snapshots, rolls back to them and deletes them', async function () {
        await s.create('snap', fx.spec);
        await s.mount('snap', mnt);
        writeFileSync(join(mnt, 'v'), 'one');
        await s.snapshot('snap', 's1');
        writeFileSync(join(mnt, 'v'), 'two');
        await s.snapshot('snap', 's2');
        expect(await s.listSnapshots('snap')).to.deep.equal(['s1', 's2']);
        await expectCode(s.snapshot('snap', 's1'), 'VOLUME_EXISTS');
        await s.unmount('snap', mnt);
        await s.rollback('snap', 's1', fx.spec);
        await s.mount('snap', mnt);
        expect(readFileSync(join(mnt, 'v'), 'utf8')).to.equal('one');
        await s.unmount('snap', mnt);
        await s.deleteSnapshot('snap', 's1');
        await s.deleteSnapshot('snap', 's1');
        expect(await s.listSnapshots('snap')).to.deep.equal(['s2']);
        await s.destroy('snap');
        expect(await s.exists('snap')).to.equal(false);
        expect(await s.listSnapshots('snap')).to.deep.equal([]);
      });

      it('knows no unknown name: no snapshots, deleting one is a no-op, taking one is VOLUME_NOT_FOUND', async function () {
        expect(await s.listSnapshots('ghost')).to.deep.equal([]);
        await s.deleteSnapshot('ghost', 's1');
        await expectCode(s.snapshot('ghost', 's1'), 'VOLUME_NOT_FOUND');
        await s.create('real', fx.spec);
        await s.deleteSnapshot('real', 'never-taken');
        expect(await s.listSnapshots('real')).to.deep.equal([]);
      });

      it('refuses a rollback to an unknown snapshot with SNAPSHOT_NOT_FOUND and keeps the data', async function () {
        await s.create('rb', fx.spec);
        await s.mount('rb', mnt);
        writeFileSync(join(mnt, 'v'), 'live');
        await s.unmount('rb', mnt);
        await expectCode(s.rollback('rb', 'never-taken', fx.spec), 'SNAPSHOT_NOT_FOUND');
        await s.mount('rb', mnt);
        expect(readFileSync(join(mnt, 'v'), 'utf8')).to.equal('live');
        await s.unmount('rb', mnt);
      });
    });

    when('clones', 'clones', function () {
      let c: Backend & SnapshotCapable & CloneCapable;
      beforeEach(function () {
        if (!hasSnapshots(b) || !hasClones(b)) expect.fail(`${fx.label} lists clones but has no clone method`);
        c = b;
      });

      it('clones a snapshot into a new dataset that lives on its own', async function () {
        await c.create('orig', fx.spec);
        await c.mount('orig', mnt);
        writeFileSync(join(mnt, 'v'), 'two');
        await c.snapshot('orig', 's2');
        await c.unmount('orig', mnt);
        await c.clone('orig', 's2', 'snapclone', fx.spec);
        await c.destroy('orig');
        await c.mount('snapclone', mnt);
        expect(readFileSync(join(mnt, 'v'), 'utf8')).to.equal('two');
        await c.unmount('snapclone', mnt);
      });

      it('refuses a clone onto an existing name (VOLUME_EXISTS) or from an unknown snapshot (SNAPSHOT_NOT_FOUND)', async function () {
        await c.create('orig', fx.spec);
        await c.create('taken', fx.spec);
        await c.snapshot('orig', 's1');
        await expectCode(c.clone('orig', 's1', 'taken', fx.spec), 'VOLUME_EXISTS');
        await expectCode(c.clone('orig', 'never-taken', 'fresh', fx.spec), 'SNAPSHOT_NOT_FOUND');
        expect(await c.exists('fresh')).to.equal(false);
      });
    });

    when('streams', 'streams', function () {
      let m: Backend & SnapshotCapable & StreamCapable;
      beforeEach(function () {
        if (!hasStreams(b)) expect.fail(`${fx.label} lists streams but has no send/receive`);
        m = b;
      });

      it('round-trips full and incremental streams between two pools byte for byte', async function () {
        const other = await make(join(dir, 'b'));
        const b2 = other.backend as Backend & SnapshotCapable & StreamCapable;
        await m.create('mv', fx.spec);
        await m.mount('mv', mnt);
        writeSampleTree(mnt);
        await m.snapshot('mv', 's1');
        const full = await collect(m.send('mv', 's1'));
        await b2.receive('mv', 's1', Readable.from([full]));
        expect(await b2.listSnapshots('mv')).to.deep.equal(['s1']);
        const mnt2 = join(dir, 'mnt2');
        mkdirSync(mnt2);
        await b2.rollback('mv', 's1', fx.spec);
        await b2.mount('mv', mnt2);
        expect(treeDigest(mnt2)).to.deep.equal(treeDigest(mnt));
        await b2.unmount('mv', mnt2);

        // Change a little: edit, delete, add, change a mode.
        writeFileSync(join(mnt, 'a/f3.bin'), 'edited');
        rmSync(join(mnt, 'a/f4.bin'));
        writeFileSync(join(mnt, 'a/b/new.txt'), 'new file');
        rmSync(join(mnt, 'empty'), { recursive: true });
        await m.snapshot('mv', 's2');
        const incr = await collect(m.send('mv', 's2', 's1'));
        expect(incr.length, 'incremental stream size').to.be.below(full.length / 4);
        await b2.receive('mv', 's2', Readable.from([incr]));
        await b2.rollback('mv', 's2', fx.spec);
        await b2.mount('mv', mnt2);
        expect(treeDigest(mnt2)).to.deep.equal(treeDigest(mnt));
        await b2.unmount('mv', mnt2);
        await m.unmount('mv', mnt);
      });

      it('leaves nothing behind when a stream is cut short or corrupted', async function () {
        const other = await make(join(dir, 'b'));
        const b2 = other.backend as Backend & SnapshotCapable & StreamCapable;
        await m.create('cut', fx.spec);
        await m.mount('cut', mnt);
        writeSampleTree(mnt);
        await m.unmount('cut', mnt);
        await m.snapshot('cut', 's1');
        const full = await collect(m.send('cut', 's1'));

        const short = full.subarray(0, Math.floor(full.length / 2));
        await expectRejected(b2.receive('cut', 's1', Readable.from([short])));
        expect(await b2.listSnapshots('cut')).to.deep.equal([]);

        const corrupt = Buffer.from(full);
        for (let i = Math.floor(corrupt.length / 3); i < corrupt.length * 0.6; i += 4096) corrupt[i] ^= 0xff;
        await expectRejected(b2.receive('cut', 's1', Readable.from([corrupt])));
        expect(await b2.listSnapshots('cut')).to.deep.equal([]);

        // A stream that errors midway, as a dropped connection does.
        const broken = new PassThrough();
        const p = b2.receive('cut', 's1', broken);
        broken.write(full.subarray(0, Math.floor(full.length / 3)));
        setTimeout(() => broken.destroy(new Error('connection reset')), 50);
        await expectRejected(p);
        expect(await b2.listSnapshots('cut')).to.deep.equal([]);

        // A stream of another snapshot is refused, not stored under the wrong name.
        await expectRejected(b2.receive('cut', 'other', Readable.from([full])));
        expect(await b2.listSnapshots('cut')).to.deep.equal([]);

        // And the good stream still goes through afterwards.
        await b2.receive('cut', 's1', Readable.from([full]));
        expect(await b2.listSnapshots('cut')).to.deep.equal(['s1']);
      });
    });

    when('usage', 'usage', function () {
      let u: Backend & UsageCapable;
      beforeEach(function () {
        if (!hasUsage(b)) expect.fail(`${fx.label} lists usage but has no usage method`);
        u = b;
      });

      it('reports capacity and usage in bytes', async function () {
        expect((await u.usage()).size, 'usage of an empty pool').to.equal(0);
        await u.create('used', fx.spec);
        await u.mount('used', mnt);
        writeFileSync(join(mnt, 'two-mib'), Buffer.alloc(2 * 1024 * 1024, 1));
        await u.unmount('used', mnt);
        const usage = await u.usage();
        expect(usage.get('used')).to.be.at.least(2 * 1024 * 1024);
      });

      it('measures only the datasets named, leaving out names it does not hold', async function () {
        await u.create('one', fx.spec);
        await u.create('two', fx.spec);
        const only = await u.usage(['one', 'absent']);
        expect([...only.keys()]).to.deep.equal(['one']);
        expect(only.get('one')).to.be.a('number');
        expect([...(await u.usage()).keys()].sort()).to.deep.equal(['one', 'two']);
      });
    });
  });
}

/** Awaits `p` and expects a FerryError with `code`. */
async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(isFerryError(err, code), String(err)).to.equal(true);
    return;
  }
  expect.fail(`succeeded where ${code} was expected`);
}

async function expectRejected(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch {
    return;
  }
  expect.fail('receive of a bad stream succeeded');
}

