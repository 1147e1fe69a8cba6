import { expect } from 'chai';
import { join } from 'node:path';
import { LocalControl, type ControlPolicy } from '../../src/control/control';
import { openDb, type Db } from '../../src/control/db';
import { cleanupDir, makeTempDir } from '../support/host';

/*
 * Control's record of which hosts hold a copy of each volume (primary + replicas), the replica
 * policy, and removal across the cluster: pure SQLite, no hosts.
 */

async function controlWith(policy: ControlPolicy, db: Db = openDb(':memory:')): Promise<LocalControl> {
  const c = new LocalControl(db, policy);
  for (const n of ['h1', 'h2', 'h3']) await c.registerNode({ name: n, address: `10.0.0.${n[1]}:7401`, transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', bootId: n });
  return c;
}

async function create(c: LocalControl, name: string, node: string, options: Record<string, string> = {}): Promise<void> {
  expect(await c.reserveVolume({ name, backend: 'btrfs', options, primaryNode: node })).to.equal(true);
  await c.confirmVolume(name, node);
}

/** Walks a move through its steps to done, as a target's mover does. */
async function move(c: LocalControl, name: string, target: string): Promise<void> {
  const m = await c.requestMove(name, target);
  await c.updateMove(m.id, { state: 'releasing' });
  await c.updateMove(m.id, { state: 'final' });
  await c.switchMove(m.id);
  await c.finishMove(m.id);
}

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as { code?: string }).code, String(err)).to.equal(code);
    if (message) expect((err as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected ${code}, but it succeeded`);
}

const copiesOf = async (c: LocalControl, name: string) => {
  const v = await c.getVolume(name);
  return v && { primary: v.primaryNode, replicas: v.replicas, dropping: v.dropping, state: v.state };
};
const toDestroy = async (c: LocalControl, node: string) => (await c.heartbeat(node, node)).destroy.map((d) => d.volume);

describe('control: copies of volumes, replica policy, cluster-wide removal', function () {
  it('records the old primary as a replica after a move, and forgets it when it is primary again', async function () {
    const c = await controlWith({ keepReplica: true });
    await create(c, 'db', 'h1');
    expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h1', replicas: [], dropping: [], state: 'ready' });
    await move(c, 'db', 'h2');
    expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h2', replicas: ['h1'], dropping: [], state: 'ready' });
    await move(c, 'db', 'h3');
    expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h3', replicas: ['h1', 'h2'], dropping: [], state: 'ready' });
    await move(c, 'db', 'h1');
    expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h1', replicas: ['h2', 'h3'], dropping: [], state: 'ready' });
    expect((await c.listVolumes()).map((v) => v.replicas)).to.deep.equal([['h2', 'h3']]);
    expect(await toDestroy(c, 'h2')).to.deep.equal([]);
  });

  it("drops the old copy when the cluster keeps no replicas, unless the volume says replica=keep, and the reverse", async function () {
    const c = await controlWith({ keepReplica: false });
    await create(c, 'plain', 'h1');
    await create(c, 'kept', 'h1', { replica: 'keep' });
    await move(c, 'plain', 'h2');
    await move(c, 'kept', 'h2');
    expect(await copiesOf(c, 'plain')).to.deep.equal({ primary: 'h2', replicas: [], dropping: ['h1'], state: 'ready' });
    expect(await copiesOf(c, 'kept')).to.deep.equal({ primary: 'h2', replicas: ['h1'], dropping: [], state: 'ready' });
    expect(await toDestroy(c, 'h1')).to.deep.equal(['plain']);
    // A move back into a copy that is being destroyed would race the destroy: refused until it is gone.
    await expectCode(c.requestMove('plain', 'h1'), 'VOLUME_BUSY', /host h1 is still removing its old copy of plain; retry/);
    await c.copyDestroyed('plain', 'h1');
    expect(await copiesOf(c, 'plain')).to.deep.equal({ primary: 'h2', replicas: [], dropping: [], state: 'ready' });
    expect(await toDestroy(c, 'h1')).to.deep.equal([]);
    await move(c, 'plain', 'h1');

    const keeping = await controlWith({ keepReplica: true });
    await create(keeping, 'scratch', 'h1', { replica: 'drop' });
    await move(keeping, 'scratch', 'h3');
    expect(await copiesOf(keeping, 'scratch')).to.deep.equal({ primary: 'h3', replicas: [], dropping: ['h1'], state: 'ready' });
  });

  it('never forgets a kept replica on a report meant for a dropped copy', async function () {
    const c = await controlWith({ keepReplica: true });
    await create(c, 'db', 'h1');
    await move(c, 'db', 'h2');
    await c.copyDestroyed('db', 'h1');
    expect((await c.getVolume('db'))?.replicas).to.deep.equal(['h1']);
    await c.forgetReplica('db', 'h1', 'not on disk');
    expect((await c.getVolume('db'))?.replicas).to.deep.equal([]);
  });

  it('refuses a remove while any host mounts the volume, naming the host and the containers', async function () {
    const c = await controlWith({ keepReplica: true });
    await create(c, 'db', 'h1');
    await move(c, 'db', 'h2');
    await c.acquireLease({ volume: 'db', mountId: 'm1', node: 'h2', mountpoint: '/m/db', generation: 2 });
    await c.annotateLeases('db', 'h2', ['web']);
    await expectCode(c.beginDelete('db', 'h3'), 'VOLUME_IN_USE', /volume db is in use: mounted on host h2 at \/m\/db by 1 container mount\(s\) \(containers: web\); stop the containers/);
    expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h2', replicas: ['h1'], dropping: [], state: 'ready' });
    await c.releaseLease('db', 'm1');
    expect(await c.beginDelete('db', 'h3')).to.deep.equal(['h1', 'h2']);
  });

  it('refuses a remove while the volume moves', async function () {
    const c = await controlWith({ keepReplica: true });
    await create(c, 'db', 'h1');
    await c.requestMove('db', 'h2');
    await expectCode(c.beginDelete('db', 'h3'), 'VOLUME_BUSY', /volume db is moving from h1 to h2 \(precopy\); remove it once the move has ended/);
    expect((await c.getVolume('db'))?.state).to.equal('ready');
  });

  it('removes a volume only when every holder has destroyed its copy; nothing mounts, moves or recreates it meanwhile', async function () {
    const c = await controlWith({ keepReplica: true });
    await create(c, 'db', 'h1');
    await move(c, 'db', 'h2');
    // Asked on h3, which holds nothing.
    expect(await c.beginDelete('db', 'h3')).to.deep.equal(['h1', 'h2']);
    expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h2', replicas: [], dropping: ['h1', 'h2'], state: 'deleting' });
    expect(await toDestroy(c, 'h1')).to.deep.equal(['db']);
    expect(await toDestroy(c, 'h2')).to.deep.equal(['db']);
    expect(await toDestroy(c, 'h3')).to.deep.equal([]);
    await expectCode(c.acquireLease({ volume: 'db', mountId: 'late', node: 'h2', mountpoint: '/m/db', generation: 2 }), 'VOLUME_BUSY', /being removed/);
    await expectCode(c.requestMove('db', 'h3'), 'VOLUME_BUSY', /being removed/);
    expect(await c.reserveVolume({ name: 'db', backend: 'btrfs', options: {}, primaryNode: 'h3' }), 'the name stays taken').to.equal(false);
    // A second remove (a retry, another host) answers what is left; a report from a non-holder changes nothing.
    expect(await c.beginDelete('db', 'h1')).to.deep.equal(['h1', 'h2']);
    await c.copyDestroyed('db', 'h3');
    await c.copyDestroyed('db', 'h2');
    await c.copyDestroyed('db', 'h2');
    expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h2', replicas: [], dropping: ['h1'], state: 'deleting' });
    await c.copyDestroyed('db', 'h1');
    expect(await c.getVolume('db')).to.equal(undefined);
    expect(await c.moveOf('db'), 'its moves went with it').to.equal(undefined);
    expect((await c.eventsOf('db')).map((e) => e.kind).slice(-4)).to.deep.equal(['deleting', 'copy-destroyed', 'copy-destroyed', 'deleted']);
    expect(await c.beginDelete('db', 'h1')).to.deep.equal([]);
    await create(c, 'db', 'h3');
  });

  it('survives a restart of control at any point of a removal (state is in SQLite)', async function () {
    const dir = makeTempDir('copies');
    try {
      const path = join(dir, 'control.db');
      let db = openDb(path);
      let c = await controlWith({ keepReplica: true }, db);
      await create(c, 'db', 'h1');
      await move(c, 'db', 'h2');
      await c.beginDelete('db', 'h2');
      await c.copyDestroyed('db', 'h2');
      db.close();
      db = openDb(path);
      c = new LocalControl(db, { keepReplica: true });
      expect(await copiesOf(c, 'db')).to.deep.equal({ primary: 'h2', replicas: [], dropping: ['h1'], state: 'deleting' });
      expect(await toDestroy(c, 'h1')).to.deep.equal(['db']);
      await c.copyDestroyed('db', 'h1');
      expect(await c.getVolume('db')).to.equal(undefined);
      db.close();
    } finally {
      cleanupDir(dir);
    }
  });

  it('upgrades an older database: sources of finished moves become replicas, a cut-off remove is finished by its primary', async function () {
    const dir = makeTempDir('copies');
    try {
      const path = join(dir, 'control.db');
      const db = openDb(path);
      const c = await controlWith({ keepReplica: true }, db);
      await create(c, 'db', 'h1');
      await move(c, 'db', 'h2');
      await move(c, 'db', 'h3');
      await create(c, 'gone', 'h1');
      // As the schema was before the copies table (and the host reports after it), with a remove cut off.
      db.exec(`DROP TABLE copies; DROP TABLE host_reports; DROP TABLE IF EXISTS policies; UPDATE volumes SET state = 'deleting' WHERE name = 'gone'`);
      db.pragma('user_version = 3');
      db.close();
      const upgraded = openDb(path);
      const c2 = new LocalControl(upgraded, { keepReplica: true });
      expect(await copiesOf(c2, 'db')).to.deep.equal({ primary: 'h3', replicas: ['h1', 'h2'], dropping: [], state: 'ready' });
      expect(await copiesOf(c2, 'gone')).to.deep.equal({ primary: 'h1', replicas: [], dropping: ['h1'], state: 'deleting' });
      upgraded.close();
    } finally {
      cleanupDir(dir);
    }
  });
});
