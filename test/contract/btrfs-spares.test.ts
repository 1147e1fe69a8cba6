import { expect } from 'chai';
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BtrfsBackend } from '../../src/agent/backends/btrfs';
import { ProcessRunner } from '../../src/exec/runner';
import { silentLogger } from '../../src/log';
import { cleanupDir, makeTempDir, requireRootAndTools, sh } from '../support/host';
import { writeUntilFull } from './backend-contract';

const MiB = 1024 * 1024;
const runner = new ProcessRunner(silentLogger());

/** The qgroup limit on referenced bytes of the subvolume at `path`, or undefined for none. */
function limitOf(pool: string, path: string): number | undefined {
  const id = sh(['btrfs', 'inspect-internal', 'rootid', path]).trim();
  const line = sh(['btrfs', 'qgroup', 'show', '-r', '--raw', pool])
    .split('\n')
    .find((l) => l.trim().startsWith(`0/${id} `));
  if (!line) throw new Error(`no qgroup 0/${id} for ${path}`);
  const max = line.trim().split(/\s+/)[3];
  return max === 'none' ? undefined : Number(max);
}

/** Spares of the btrfs backend: Create renames one that already holds the limit asked for. */
describe('btrfs spare subvolumes', function () {
  let dir: string;
  let pool: string;
  let b: BtrfsBackend;
  const make = async (): Promise<BtrfsBackend> => {
    const backend = new BtrfsBackend({ poolFile: join(dir, 'pool.img'), poolSizeBytes: 512 * MiB, poolMount: pool }, runner, silentLogger());
    await backend.init();
    return backend;
  };
  const spares = (): string[] => readdirSync(join(pool, 'spares')).sort();

  before(function () {
    requireRootAndTools('btrfs', 'mkfs.btrfs', 'losetup');
  });
  beforeEach(async function () {
    dir = makeTempDir('btrfs-spares');
    pool = join(dir, 'pool');
    b = await make();
  });
  afterEach(async function () {
    await b.sparesIdle();
    cleanupDir(dir);
  });

  it('gives a second Create of a size a spare that already holds that limit, and the limit holds', async function () {
    expect(spares()).to.deep.equal([]);
    await b.create('first', { sizeBytes: 64 * MiB });
    await b.sparesIdle();
    const before = spares();
    expect(before.length).to.be.above(0);
    expect(before.every((s) => s.startsWith(`${64 * MiB}-`))).to.equal(true);

    await b.create('second', { sizeBytes: 64 * MiB });
    expect(limitOf(pool, join(pool, 'volumes', 'second'))).to.equal(64 * MiB);
    expect(before.filter((s) => !spares().includes(s)), 'the spare taken').to.have.length(1);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    await b.mount('second', mnt);
    const r = writeUntilFull(join(mnt, 'fill'), 128 * MiB);
    expect(r.code, `wrote ${r.written} bytes into a 64 MiB volume`).to.be.oneOf(['ENOSPC', 'EDQUOT']);
    expect(r.written).to.be.at.most(64 * MiB);
    unlinkSync(join(mnt, 'fill'));
    await b.unmount('second', mnt);
  });

  it('never gives a Create a spare of another size', async function () {
    await b.create('a', { sizeBytes: 64 * MiB });
    await b.sparesIdle();
    await b.create('b', { sizeBytes: 32 * MiB });
    await b.create('c', {});
    expect(limitOf(pool, join(pool, 'volumes', 'b'))).to.equal(32 * MiB);
    expect(limitOf(pool, join(pool, 'volumes', 'c'))).to.equal(undefined);
    await b.sparesIdle();
    // Spares of the two most recent sizes: none and 32 MiB; the 64 MiB ones were deleted.
    expect(spares().every((s) => s.startsWith('none-') || s.startsWith(`${32 * MiB}-`))).to.equal(true);
    await b.create('d', {});
    expect(limitOf(pool, join(pool, 'volumes', 'd'))).to.equal(undefined);
  });

  it('deletes spares and half-made spares at start, and never hands out one that was written to', async function () {
    await b.create('a', { sizeBytes: 64 * MiB });
    await b.sparesIdle();
    // What a crash while making a spare leaves: a subvolume under its temporary name.
    sh(['btrfs', 'subvolume', 'create', join(pool, 'spares', '.new-crashed')]);
    b = await make();
    expect(spares()).to.deep.equal([]);

    await b.create('b', { sizeBytes: 64 * MiB });
    await b.sparesIdle();
    for (const s of spares()) writeFileSync(join(pool, 'spares', s, 'intruder'), 'x');
    await b.create('c', { sizeBytes: 64 * MiB });
    expect(readdirSync(join(pool, 'volumes', 'c'))).to.deep.equal([]);
    expect(limitOf(pool, join(pool, 'volumes', 'c'))).to.equal(64 * MiB);
  });
});
