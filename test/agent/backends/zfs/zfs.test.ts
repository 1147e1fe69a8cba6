import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cmd from '../../../../src/agent/backends/zfs/commands';
import { ZfsBackend } from '../../../../src/agent/backends/zfs';
import * as parse from '../../../../src/agent/backends/zfs/parse';
import { isFerryError } from '../../../../src/errors';
import { silentLogger } from '../../../../src/log';
import { FakeRunner } from '../../../support/fake-runner';

// Captured from zfs-fuse 0.7.0 (see VERSION.txt there); the source tree, not dist/.
const FIXTURES = join(__dirname, '../../../../../test/fixtures/zfs');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

describe('zfs parse, on captured output', function () {
  it('reads zfs get -H -p lines, unset values as "-"', function () {
    const rows = parse.parseGet(fixture('get-ferry-volume-d1.txt'));
    expect(rows[0]).to.deep.equal({ name: 'zt1/ferry', property: 'ferry:volume', value: '-' });
    expect(rows).to.have.length(7);
  });

  it('finds the volumes ferry owns: not temporary datasets, not datasets without the owner property', function () {
    const rows = parse.parseGet(fixture('get-ferry-volume-d1.txt'));
    expect(parse.volumesOf(rows, 'zt1/ferry', cmd.OWNER_PROPERTY)).to.deep.equal(['v1', 'vol1', 'vol2']);
  });

  it('reads byte counts per volume and the pool root', function () {
    const rows = parse.parseGet(fixture('get-referenced-d1.txt'));
    expect([...parse.bytesByVolume(rows, 'zt1/ferry', 'referenced', ['v3', 'vol1', 'ghost'])]).to.deep.equal([
      ['v3', 21123072],
      ['vol1', 114688],
    ]);
    expect(parse.bytesOf(rows, 'zt1/ferry/vol1', 'refquota')).to.equal(67108864);
    const cap = parse.parseGet(fixture('get-capacity.txt'));
    expect(parse.bytesOf(cap, 'zt1/ferry', 'available')).to.equal(472113152);
    expect(parse.bytesOf([{ name: 'a', property: 'used', value: '-' }], 'a', 'used')).to.equal(undefined);
  });

  it('lists snapshot names oldest first, as zfs list -d 1 prints them', function () {
    expect(parse.parseSnapshotList(fixture('list-snapshots.txt'), 'zt1/ferry/vol1')).to.deep.equal(['s1', '_move.3.1']);
    expect(parse.parseSnapshotList(fixture('list-snapshots.txt'), 'zt1/ferry/vol')).to.deep.equal([]);
  });

  it('reads pool names and health', function () {
    expect(parse.parsePoolList(fixture('zpool-list.txt'))).to.deep.equal([
      { name: 'zt1', health: 'ONLINE' },
      { name: 'zt2', health: 'ONLINE' },
    ]);
  });

  describe('on OpenZFS 2.1 (captured in the VM: openzfs/VERSION.txt)', function () {
    const oz = (name: string): string => fixture(join('openzfs', name));

    it('reads zfs get, zpool list and the snapshot list as on zfs-fuse', function () {
      const rows = parse.parseGet(oz('get-ferry-volume-d1.txt'));
      expect(parse.volumesOf(rows, 'ztst/ferry', cmd.OWNER_PROPERTY)).to.deep.equal(['db']);
      expect([...parse.bytesByVolume(parse.parseGet(oz('get-referenced-d1.txt')), 'ztst/ferry', 'referenced', ['db', 'web'])]).to.deep.equal([
        ['db', 4224000],
        ['web', 24576],
      ]);
      expect(parse.bytesOf(parse.parseGet(oz('get-capacity.txt')), 'ztst/ferry', 'available')).to.equal(121344000);
      expect(parse.parsePoolList(oz('zpool-list.txt'))).to.deep.equal([{ name: 'ztst', health: 'ONLINE' }]);
      expect(parse.parseStatusPaths(oz('zpool-status.txt'))).to.deep.equal(['/tmp/zcap/ztst.img']);
      expect(parse.parseSnapshotList(oz('list-snapshots.txt'), 'ztst/ferry/db')).to.deep.equal(['s1', 's2']);
    });

    it('tells its missing dataset, held snapshot and quota errors', function () {
      expect(parse.isNotFound(oz('get-not-exist.stderr.txt'))).to.equal(true);
      expect(parse.isNotFound(oz('list-snapshots-not-exist.stderr.txt'))).to.equal(true);
      expect(parse.isBusy(oz('destroy-held.stderr.txt'))).to.equal(true);
      expect(parse.isOutOfSpace(oz('write-past-refquota.stderr.txt'))).to.equal(true);
      expect(parse.isBusy(oz('destroy-with-snapshots.stderr.txt'))).to.equal(false);
    });

    it('finds a send\'s holds among others, only when the sending process is gone', function () {
      const text = oz('holds.txt');
      expect(parse.sendHolds(text, () => false)).to.deep.equal(['.send-401-1']);
      expect(parse.sendHolds(text, (pid) => pid === 401)).to.deep.equal([]);
      // Once the send is killed OpenZFS has dropped its hold; the user's stays and is never ferry's.
      expect(parse.sendHolds(oz('holds-after-send-killed.txt'), () => false)).to.deep.equal([]);
    });
  });

  const errors: [string, string, 'notFound' | 'busy' | 'space' | 'none'][] = [
    ['a missing dataset (captured)', fixture('get-not-exist.stderr.txt'), 'notFound'],
    ['busy after an unmount', "cannot destroy 'p/ferry/db': dataset is busy", 'busy'],
    ['a busy mount', "cannot unmount '/mnt/db': Device or resource busy", 'busy'],
    ['out of space', "cannot create 'p/ferry/db': out of space", 'space'],
    ['something else', "cannot open 'p': pool I/O is currently suspended", 'none'],
  ];
  for (const [label, text, kind] of errors) {
    it(`tells ${label} from the rest`, function () {
      expect(parse.isNotFound(text)).to.equal(kind === 'notFound');
      expect(parse.isBusy(text)).to.equal(kind === 'busy');
      expect(parse.isOutOfSpace(text)).to.equal(kind === 'space');
    });
  }
});

describe('zfs commands', function () {
  it('reads properties as exact numbers without a header, to a depth when asked', function () {
    expect(cmd.get(['used', 'available'], ['p/ferry'])).to.deep.equal(['zfs', 'get', '-H', '-p', '-o', 'name,property,value', 'used,available', 'p/ferry']);
    expect(cmd.get(['referenced'], ['p/ferry'], 1)).to.deep.equal(['zfs', 'get', '-H', '-p', '-o', 'name,property,value', '-d', '1', 'referenced', 'p/ferry']);
  });
  it('sends a full stream or one increment, never -R or -I', function () {
    expect(cmd.send('p/ferry/db', 's2')).to.deep.equal(['zfs', 'send', 'p/ferry/db@s2']);
    expect(cmd.send('p/ferry/db', 's2', 's1')).to.deep.equal(['zfs', 'send', '-i', 'p/ferry/db@s1', 'p/ferry/db@s2']);
  });
  it('receives unmounted; an increment rolls back to its base first', function () {
    expect(cmd.receive('p/ferry/db', 's1', false)).to.deep.equal(['zfs', 'receive', '-u', 'p/ferry/db@s1']);
    expect(cmd.receive('p/ferry/db', 's2', true)).to.deep.equal(['zfs', 'receive', '-u', '-F', 'p/ferry/db@s2']);
  });
  it('makes pools outside any cache file with the root unmounted, and destroys without touching clones', function () {
    expect(cmd.poolCreate('ferry', '/var/lib/ferry/zfs/pool.img')).to.deep.equal(['zpool', 'create', '-o', 'cachefile=none', '-m', 'none', 'ferry', '/var/lib/ferry/zfs/pool.img']);
    expect(cmd.destroy('p/ferry/db', true)).to.deep.equal(['zfs', 'destroy', '-r', 'p/ferry/db']);
    expect(cmd.rollback('p/ferry/db', 's1')).to.deep.equal(['zfs', 'rollback', 'p/ferry/db@s1']);
  });
});

describe('zfs backend, against a scripted zfs', function () {
  let work: string;
  let run: FakeRunner;
  let b: ZfsBackend;
  const ROOT = 'tank/ferry';

  beforeEach(async function () {
    work = mkdtempSync(join(tmpdir(), 'ferry-zfs-unit-'));
    run = new FakeRunner();
    const busyRetryMs = [1, 1, 1, 1, 1, 1];
    b = new ZfsBackend({ pool: 'tank', poolName: 'ferry', poolFile: join(work, 'pool.img'), poolSizeBytes: 1 << 30, workDir: join(work, 'work'), busyRetryMs }, run, silentLogger());
    run
      .expect(cmd.poolList(), { stdout: 'tank\tONLINE\t9.94G\t9.90G\n' }, { times: 2 })
      .expect(cmd.get([cmd.OWNER_PROPERTY], [ROOT]), { stdout: `${ROOT}\tferry:volume\t-\n` })
      .expect(cmd.get(['type'], [ROOT], 1), { stdout: `${ROOT}\ttype\tfilesystem\n${ROOT}/.db.rollback\ttype\tfilesystem\n${ROOT}/db\ttype\tfilesystem\n` })
      // A temporary clone a crash left is destroyed at start.
      .expect(cmd.get([cmd.OWNER_PROPERTY], [`${ROOT}/.db.rollback`]), { stdout: `${ROOT}/.db.rollback\tferry:volume\t-\n` })
      .expect(cmd.destroy(`${ROOT}/.db.rollback`, true))
      .expect(cmd.listSnapshots(ROOT), { stdout: `${ROOT}@_ferry-sync-x-1\n` })
      .expect(cmd.destroy(`${ROOT}@_ferry-sync-x-1`, false));
    await b.init();
  });
  afterEach(function () {
    rmSync(work, { recursive: true, force: true });
  });

  it('says zfs is unavailable, and why, when zpool does not answer', async function () {
    const r = new FakeRunner().expect(cmd.poolList(), { exitCode: 1, stderr: 'connect: Connection refused\nPlease make sure that the zfs-fuse daemon is running.' });
    const z = new ZfsBackend({ poolName: 'ferry', poolFile: join(work, 'p.img'), poolSizeBytes: 1 << 30, workDir: join(work, 'w') }, r, silentLogger());
    const err = await z.init().then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'BACKEND_UNAVAILABLE'), String(err)).to.equal(true);
    expect(String(err)).to.match(/zfs-fuse daemon is running.*start-zfs-fuse/s);
    r.verify();
  });

  it('refuses a pool of its own name on another file: that is another agent\'s', async function () {
    const r = new FakeRunner()
      .expect(cmd.poolList(), { stdout: 'zt1\tONLINE\t504M\t482M\n' })
      .expect(cmd.poolStatus('zt1'), { stdout: fixture('zpool-status.txt').replace(/ztst/g, 'zt1') });
    const z = new ZfsBackend({ poolName: 'zt1', poolFile: join(work, 'pool.img'), poolSizeBytes: 1 << 30, workDir: join(work, 'w') }, r, silentLogger());
    const err = await z.init().then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'BACKEND_UNAVAILABLE'), String(err)).to.equal(true);
    expect(String(err)).to.match(/is on \/tmp\/zt\/s\.img, not on ferry's pool file .*set zfs\.poolName/);
    r.verify();
  });

  it('makes no pool until the first Create, then makes it once on a sparse file', async function () {
    const file = join(work, 'own', 'pool.img');
    const r = new FakeRunner().expect(cmd.poolList(), { stdout: '' });
    const z = new ZfsBackend({ poolName: 'ferry', poolFile: file, poolSizeBytes: 1 << 30, workDir: join(work, 'w') }, r, silentLogger());
    await z.init();
    expect(await z.list()).to.deep.equal([]);
    expect(await z.exists('db')).to.equal(false);
    expect((await z.capacity()).totalBytes).to.equal(1 << 30);
    r.verify();
    r.expect(cmd.truncateFile(file, 1 << 30))
      .expect(cmd.poolCreate('ferry', file))
      .expect(cmd.poolList(), { stdout: 'ferry\tONLINE\t1016M\t1016M\n' })
      .expect(cmd.get([cmd.OWNER_PROPERTY], ['ferry/ferry']), { exitCode: 1, stderr: "cannot open 'ferry/ferry': dataset does not exist" })
      .expect(cmd.create('ferry/ferry', { mountpoint: 'none', canmount: 'off' }))
      .expect(cmd.get(['type'], ['ferry/ferry'], 1), { stdout: 'ferry/ferry\ttype\tfilesystem\n' })
      .expect(cmd.listSnapshots('ferry/ferry'))
      .expect(cmd.get([cmd.OWNER_PROPERTY], ['ferry/ferry/db']), { exitCode: 1, stderr: "cannot open 'ferry/ferry/db': dataset does not exist" })
      .expect(cmd.get(['available'], ['ferry/ferry']), { stdout: 'ferry/ferry\tavailable\t1000000000\n' })
      .expect(cmd.create('ferry/ferry/db', { canmount: 'noauto', mountpoint: 'none', 'ferry:volume': 'db' }));
    await z.create('db', {});
    r.verify();
  });

  it('refuses a configured pool that is not imported, saying how to import it', async function () {
    const r = new FakeRunner().expect(cmd.poolList(), { stdout: 'other\tONLINE\t1G\t1G\n' });
    const z = new ZfsBackend({ pool: 'tank', poolName: 'ferry', poolFile: join(work, 'p.img'), poolSizeBytes: 1 << 30, workDir: join(work, 'w') }, r, silentLogger());
    const err = await z.init().then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'BACKEND_UNAVAILABLE')).to.equal(true);
    expect(String(err)).to.match(/zpool import tank/);
  });

  it('creates a volume in one zfs create with its owner, its limit and canmount=noauto', async function () {
    run
      .expect(cmd.get([cmd.OWNER_PROPERTY], [`${ROOT}/db`]), { exitCode: 1, stderr: fixture('get-not-exist.stderr.txt') }, { times: 2 })
      .expect(cmd.get(['available'], [ROOT]), { stdout: `${ROOT}\tavailable\t1073741824\n` })
      .expect(['zfs', 'create', '-o', 'canmount=noauto', '-o', 'mountpoint=none', '-o', 'ferry:volume=db', '-o', 'refquota=67108864', `${ROOT}/db`]);
    await b.create('db', { sizeBytes: 64 * 1024 * 1024 });
    run.verify();
  });

  it('refuses Create with POOL_FULL when the pool is still full after a commit', async function () {
    run
      .expect(cmd.get([cmd.OWNER_PROPERTY], [`${ROOT}/db`]), { exitCode: 1, stderr: fixture('get-not-exist.stderr.txt') }, { times: 2 })
      .expect(cmd.get(['available'], [ROOT]), { stdout: `${ROOT}\tavailable\t1048576\n` }, { times: 2 })
      .expect(['zfs', 'snapshot', /^tank\/ferry@_ferry-sync-/])
      .expect(['zfs', 'destroy', /^tank\/ferry@_ferry-sync-/]);
    const err = await b.create('db', {}).then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'POOL_FULL'), String(err)).to.equal(true);
    run.verify();
  });

  it('retries a snapshot delete that zfs calls busy, then succeeds', async function () {
    run
      .expect(cmd.get([cmd.OWNER_PROPERTY], [`${ROOT}/db@s1`]), { stdout: `${ROOT}/db@s1\tferry:volume\tdb\n` })
      .expect(cmd.destroy(`${ROOT}/db@s1`, false), { exitCode: 1, stderr: `cannot destroy '${ROOT}/db@s1': dataset is busy` }, { times: 2 })
      .expect(cmd.destroy(`${ROOT}/db@s1`, false));
    await b.deleteSnapshot('db', 's1');
    run.verify();
  });

  it('releases the holds an aborted send left when a snapshot stays busy, then deletes it', async function () {
    run
      .expect(cmd.get([cmd.OWNER_PROPERTY], [`${ROOT}/db@s1`]), { stdout: `${ROOT}/db@s1\tferry:volume\tdb\n` })
      .expect(cmd.destroy(`${ROOT}/db@s1`, false), { exitCode: 1, stderr: `cannot destroy snapshot ${ROOT}/db@s1: dataset is busy` }, { times: 7 })
      // Above the kernel's pid_max (2^22): no process has that pid, so that send is gone.
      .expect(cmd.holds(`${ROOT}/db@s1`), { stdout: `${ROOT}/db@s1\t.send-99999999-1\tWed Dec  2 03:30 2026\n${ROOT}/db@s1\tkeep\tWed Dec  2 03:31 2026\n` })
      .expect(cmd.release('.send-99999999-1', `${ROOT}/db@s1`))
      .expect(cmd.destroy(`${ROOT}/db@s1`, false));
    await b.deleteSnapshot('db', 's1');
    run.verify();
  });

  it('leaves a running send\'s holds alone: the snapshot stays, the delete says why', async function () {
    // This process stands for the send: its pid is alive.
    run
      .expect(cmd.get([cmd.OWNER_PROPERTY], [`${ROOT}/db@s1`]), { stdout: `${ROOT}/db@s1\tferry:volume\tdb\n` })
      .expect(cmd.destroy(`${ROOT}/db@s1`, false), { exitCode: 1, stderr: `cannot destroy snapshot ${ROOT}/db@s1: dataset is busy` }, { times: 7 })
      .expect(cmd.holds(`${ROOT}/db@s1`), { stdout: `${ROOT}/db@s1\t.send-${process.pid}-1\tWed Dec  2 03:30 2026\n` });
    const err = await b.deleteSnapshot('db', 's1').then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'COMMAND_FAILED'), String(err)).to.equal(true);
    expect(String(err)).to.match(/deleting snapshot s1 of zfs volume db failed: .*dataset is busy.*try again/);
    run.verify();
  });

  it('lists owned volumes and their referenced bytes after forcing a commit', async function () {
    run
      .expect(['zfs', 'snapshot', /^tank\/ferry@_ferry-sync-/])
      .expect(['zfs', 'destroy', /^tank\/ferry@_ferry-sync-/])
      .expect(cmd.get([cmd.OWNER_PROPERTY], [ROOT], 1), { stdout: `${ROOT}\tferry:volume\t-\n${ROOT}/db\tferry:volume\tdb\n${ROOT}/foreign\tferry:volume\t-\n` })
      .expect(cmd.get(['referenced'], [ROOT], 1), { stdout: `${ROOT}\treferenced\t100\n${ROOT}/db\treferenced\t2097152\n${ROOT}/foreign\treferenced\t5\n` });
    expect([...(await b.usage())]).to.deep.equal([['db', 2097152]]);
    run.verify();
  });

  it('reports the pool\'s size, free space and health', async function () {
    run
      .expect(cmd.get(['used', 'available'], [ROOT]), { stdout: fixture('get-capacity.txt').replace(/zt1/g, 'tank') })
      .expect(cmd.poolList(), { stdout: 'tank\tDEGRADED\t504M\t482M\n' });
    expect(await b.capacity()).to.deep.equal({ totalBytes: 21901312 + 472113152, freeBytes: 472113152, health: 'DEGRADED' });
    run.verify();
  });

  it('rolls back to the newest snapshot with zfs rollback and sets the limit', async function () {
    run
      .expect(cmd.listSnapshots(`${ROOT}/db`), { stdout: `${ROOT}/db@s1\n${ROOT}/db@s2\n` })
      .expect(cmd.rollback(`${ROOT}/db`, 's2'))
      .expect(cmd.set(`${ROOT}/db`, 'refquota', 'none'));
    await b.rollback('db', 's2', {});
    run.verify();
  });
});
