import { expect } from 'chai';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import type { DatasetSpec, FullBackend } from '../../src/agent/backends/backend';
import { isFerryError } from '../../src/errors';
import { isMountPoint } from '../../src/agent/mount-table';
import { cleanupDir, fillFilesystem, makeTempDir } from '../support/host';
import { treeDigest, writeSampleTree } from '../support/tree';

/** One backend under test: how to make a fresh pool of it in an empty temp dir. */
export interface BackendFixture {
  label: string;
  /** The spec volumes get in these tests (a size the backend enforces, if it enforces one). */
  spec: DatasetSpec;
  make(dir: string): Promise<{ backend: FullBackend; fillPath: string }>;
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

/** The one contract every backend meets, run for real against each (Flocker's make_iblockdeviceapi_tests). */
export function backendContract(fx: BackendFixture): void {
  describe(`backend contract: ${fx.label}`, function () {
    let dir: string;
    let b: FullBackend;
    let fillPath: string;
    let mnt: string;

    beforeEach(async function () {
      dir = makeTempDir(fx.label.replace(/\W+/g, '-'));
      ({ backend: b, fillPath } = await fx.make(join(dir, 'a')));
      mnt = join(dir, 'mnt');
      mkdirSync(mnt);
    });
    afterEach(function () {
      cleanupDir(dir);
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
      try {
        await b.destroy('busy');
        expect.fail('destroy of a mounted dataset succeeded');
      } catch (err) {
        expect(isFerryError(err, 'VOLUME_BUSY'), String(err)).to.equal(true);
      }
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

    it('takes snapshots, rolls back to them, clones and deletes them', async function () {
      await b.create('snap', fx.spec);
      await b.mount('snap', mnt);
      writeFileSync(join(mnt, 'v'), 'one');
      await b.snapshot('snap', 's1');
      writeFileSync(join(mnt, 'v'), 'two');
      await b.snapshot('snap', 's2');
      expect(await b.listSnapshots('snap')).to.deep.equal(['s1', 's2']);
      try {
        await b.snapshot('snap', 's1');
        expect.fail('a second snapshot with the same name succeeded');
      } catch (err) {
        expect(isFerryError(err, 'VOLUME_EXISTS'), String(err)).to.equal(true);
      }
      await b.unmount('snap', mnt);
      await b.rollback('snap', 's1', fx.spec);
      await b.mount('snap', mnt);
      expect(readFileSync(join(mnt, 'v'), 'utf8')).to.equal('one');
      await b.unmount('snap', mnt);
      await b.clone('snap', 's2', 'snapclone', fx.spec);
      await b.mount('snapclone', mnt);
      expect(readFileSync(join(mnt, 'v'), 'utf8')).to.equal('two');
      await b.unmount('snapclone', mnt);
      await b.deleteSnapshot('snap', 's1');
      await b.deleteSnapshot('snap', 's1');
      expect(await b.listSnapshots('snap')).to.deep.equal(['s2']);
      await b.destroy('snap');
      expect(await b.exists('snap')).to.equal(false);
    });

    it('round-trips full and incremental streams between two pools byte for byte', async function () {
      const other = await fx.make(join(dir, 'b'));
      const b2 = other.backend;
      await b.create('mv', fx.spec);
      await b.mount('mv', mnt);
      writeSampleTree(mnt);
      await b.snapshot('mv', 's1');
      const full = await collect(b.send('mv', 's1'));
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
      await b.snapshot('mv', 's2');
      const incr = await collect(b.send('mv', 's2', 's1'));
      expect(incr.length, 'incremental stream size').to.be.below(full.length / 4);
      await b2.receive('mv', 's2', Readable.from([incr]));
      await b2.rollback('mv', 's2', fx.spec);
      await b2.mount('mv', mnt2);
      expect(treeDigest(mnt2)).to.deep.equal(treeDigest(mnt));
      await b2.unmount('mv', mnt2);
      await b.unmount('mv', mnt);
    });

    it('leaves nothing behind when a stream is cut short or corrupted', async function () {
      const other = await fx.make(join(dir, 'b'));
      const b2 = other.backend;
      await b.create('cut', fx.spec);
      await b.mount('cut', mnt);
      writeSampleTree(mnt);
      await b.unmount('cut', mnt);
      await b.snapshot('cut', 's1');
      const full = await collect(b.send('cut', 's1'));

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

    it('fails Create on a full pool with POOL_FULL and leaves nothing behind', async function () {
      await b.create('before', fx.spec);
      const listBefore = await b.list();
      fillFilesystem(fillPath);
      try {
        await b.create('after', fx.spec);
        expect.fail('create on a full pool succeeded');
      } catch (err) {
        expect(isFerryError(err, 'POOL_FULL'), String(err)).to.equal(true);
      }
      expect(await b.exists('after')).to.equal(false);
      expect(await b.list()).to.deep.equal(listBefore);
      // Freeing space makes Create work again.
      unlinkSync(fillPath);
      await b.create('after', fx.spec);
      expect(await b.exists('after')).to.equal(true);
    });

    it('reports capacity and usage in bytes', async function () {
      const cap = await b.capacity();
      expect(cap.totalBytes).to.be.above(0);
      expect(cap.freeBytes).to.be.at.most(cap.totalBytes);
      await b.create('used', fx.spec);
      await b.mount('used', mnt);
      writeFileSync(join(mnt, 'two-mib'), Buffer.alloc(2 * 1024 * 1024, 1));
      await b.unmount('used', mnt);
      const usage = await b.usage();
      expect(usage.get('used')).to.be.at.least(2 * 1024 * 1024);
    });
  });
}

async function expectRejected(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch {
    return;
  }
  expect.fail('receive of a bad stream succeeded');
}

