import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LvmBackend } from '../../../../src/agent/backends/lvm';
import * as cmd from '../../../../src/agent/backends/lvm/commands';
import { isFerryError } from '../../../../src/errors';
import { silentLogger } from '../../../../src/log';
import { FakeRunner } from '../../../support/fake-runner';

const FIXTURES = join(__dirname, '..', '..', '..', '..', '..', 'test', 'fixtures', 'lvm');
const fixture = (f: string): string => readFileSync(join(FIXTURES, f), 'utf8');
const MiB = 1024 * 1024;

/** The commands the lvm backend runs, scripted with outputs captured in the VM. */
describe('lvm backend commands (scripted runner)', function () {
  let runner: FakeRunner;
  let b: LvmBackend;
  beforeEach(function () {
    runner = new FakeRunner();
    b = new LvmBackend({ vg: 'fvg', pool: 'pool' }, runner, silentLogger());
  });
  afterEach(function () {
    runner.verify();
  });

  it('is unavailable on a kernel without device-mapper, saying so and what to do', async function () {
    if (existsSync('/dev/mapper/control')) this.skip(); // this kernel has it: the VM suites cover init
    runner.expect(cmd.loadThinPool(), { exitCode: 1, stderr: "modprobe: FATAL: Module dm-thin-pool not found in directory /lib/modules/6.18.44" });
    const err = await b.init().catch((e: unknown) => e);
    expect(isFerryError(err, 'BACKEND_UNAVAILABLE'), String(err)).to.equal(true);
    expect((err as Error).message).to.equal(
      'this kernel has no device-mapper (/dev/mapper/control is missing): load the dm-mod and dm-thin-pool modules (modprobe dm-thin-pool), or use another backend',
    );
  });

  it('creates a thin LV of whole extents, tagged, and formats it', async function () {
    runner
      .expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') })
      .expect(cmd.vgReport('fvg'), { stdout: fixture('vgs.json') })
      .expect(['lvcreate', '--type', 'thin', '--thinpool', 'pool', '--virtualsize', `${64 * MiB}b`, '--name', 'fv_new', '--addtag', 'ferry', '--addtag', 'ferry.v=new', '--addtag', 'ferry.fs=xfs', 'fvg'])
      .expect(['mkfs.xfs', '-q', '-f', '-K', '/dev/mapper/fvg-fv_new']);
    await b.create('new', { fs: 'xfs', sizeBytes: 66 * MiB });
  });

  it('leaves an existing volume alone', async function () {
    runner.expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') });
    await b.create('db', { fs: 'ext4', sizeBytes: 64 * MiB });
  });

  it('refuses a create on a full pool with POOL_FULL before lvcreate', async function () {
    runner.expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-pool-full.json') });
    const err = await b.create('new', { fs: 'ext4', sizeBytes: 64 * MiB }).catch((e: unknown) => e);
    expect(isFerryError(err, 'POOL_FULL'), String(err)).to.equal(true);
    expect(String((err as Error).message)).to.match(/thin pool fvg\/pool is full.*lvextend/);
  });

  it('turns lvcreate refusing for a full pool into POOL_FULL, and removes a half-made LV when mkfs fails', async function () {
    runner
      .expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') })
      .expect(cmd.vgReport('fvg'), { stdout: fixture('vgs.json') })
      .expect(cmd.createThin('fvg', 'pool', 'fv_new', 64 * MiB, ['ferry', 'ferry.v=new', 'ferry.fs=ext4']), { exitCode: 5, stderr: fixture('lvcreate-pool-full.stderr') });
    const err = await b.create('new', { fs: 'ext4', sizeBytes: 64 * MiB }).catch((e: unknown) => e);
    expect(isFerryError(err, 'POOL_FULL'), String(err)).to.equal(true);

    runner
      .expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') })
      .expect(cmd.createThin('fvg', 'pool', 'fv_new', 64 * MiB, ['ferry', 'ferry.v=new', 'ferry.fs=ext4']))
      .expect(cmd.mkfs('ext4', '/dev/mapper/fvg-fv_new'), { exitCode: 1, stderr: 'mkfs.ext4: Input/output error while writing out and closing file system' })
      .expect(cmd.remove('fvg', ['fv_new']))
      .expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-pool-full.json') });
    const err2 = await b.create('new', { fs: 'ext4', sizeBytes: 64 * MiB }).catch((e: unknown) => e);
    expect(isFerryError(err2, 'POOL_FULL'), String(err2)).to.equal(true);
  });

  it('lists volumes and snapshots from one lvs each', async function () {
    runner.expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') }, { times: 2 });
    expect(await b.list()).to.deep.equal(['db', 'web-1']);
    expect(await b.listSnapshots('db')).to.deep.equal(['before-1', '_move.7.final']);
  });

  it('takes a snapshot with its tags, skipped at activation', async function () {
    runner
      .expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') })
      .expect(['lvcreate', '--snapshot', '--name', 'fs_db+s2', '--setactivationskip', 'y', '--addtag', 'ferry', '--addtag', 'ferry.v=db', '--addtag', 'ferry.s=s2', '--addtag', 'ferry.fs=ext4', '--addtag', /^ferry\.t=\d+$/, 'fvg/fv_db']);
    await b.snapshot('db', 's2');
  });

  it('rolls back through a writable snapshot of the snapshot, keeping the snapshot', async function () {
    runner
      .expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') })
      .expect(['lvcreate', '--snapshot', '--name', /^ft_[0-9a-f]{16}$/, '--setactivationskip', 'n', '--activate', 'y', '--ignoreactivationskip', '--addtag', 'ferry', '--addtag', 'ferry.v=db', '--addtag', 'ferry.fs=ext4', 'fvg/fs_db+before-1'])
      // Set aside, not removed, until the copy is in place: a crash leaves one or the other.
      .expect(['lvrename', 'fvg', 'fv_db', /^fo_[0-9a-f]{16}$/])
      .expect(['lvrename', 'fvg', /^ft_[0-9a-f]{16}$/, 'fv_db'])
      .expect(['lvremove', '--yes', /^fvg\/fo_[0-9a-f]{16}$/]);
    await b.rollback('db', 'before-1', {});
  });

  it('puts the volume back when the copy cannot take its place', async function () {
    runner
      .expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') })
      .expect(['lvcreate', '--snapshot', '--name', /^ft_[0-9a-f]{16}$/, '--setactivationskip', 'n', '--activate', 'y', '--ignoreactivationskip', '--addtag', 'ferry', '--addtag', 'ferry.v=db', '--addtag', 'ferry.fs=ext4', 'fvg/fs_db+before-1'])
      .expect(['lvrename', 'fvg', 'fv_db', /^fo_[0-9a-f]{16}$/])
      .expect(['lvrename', 'fvg', /^ft_[0-9a-f]{16}$/, 'fv_db'], { exitCode: 5, stderr: 'device busy' })
      .expect(['lvrename', 'fvg', /^fo_[0-9a-f]{16}$/, 'fv_db'])
      .expect(['lvremove', '--yes', /^fvg\/ft_[0-9a-f]{16}$/]);
    const err = await b.rollback('db', 'before-1', {}).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
  });

  it('refuses an unknown snapshot and a name LVM cannot hold', async function () {
    runner.expect(cmd.lvReport('fvg'), { stdout: fixture('lvs-ferry.json') });
    const err = await b.rollback('db', 'never', {}).catch((e: unknown) => e);
    expect(isFerryError(err, 'SNAPSHOT_NOT_FOUND'), String(err)).to.equal(true);
    const bad = await b.create('a+b', { sizeBytes: 64 * MiB }).catch((e: unknown) => e);
    expect(isFerryError(bad, 'INVALID_NAME'), String(bad)).to.equal(true);
  });
});
