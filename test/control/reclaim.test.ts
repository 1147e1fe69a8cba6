import { expect } from 'chai';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import type { PolicySpec } from '../../src/wire/control-client';

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a failure');
}

const POLICY: PolicySpec = {
  name: 'gold',
  schedule: null,
  keep: null,
  replicateTo: [],
  replicas: null,
  rpoSeconds: null,
  bandwidthBytes: null,
  failover: 'manual',
  reclaim: 'retain',
  retainRemovedSeconds: 60,
};

async function create(c: LocalControl, name: string, node: string, options: Record<string, string> = {}): Promise<void> {
  expect(await c.reserveVolume({ name, backend: 'btrfs', options, primaryNode: node })).to.equal(true);
  await c.confirmVolume(name, node);
}

const keptFor = (r: { removedAt: string; expiresAt: string }): number => (Date.parse(r.expiresAt) - Date.parse(r.removedAt)) / 1000;

describe('control: reclaim decided at the remove (options, policy, cluster default)', function () {
  it('a policy with reclaim retain keeps the data for its time; ferry volume set reclaim=... changes it; the cluster default applies to the rest', async function () {
    const c = new LocalControl(openDb(':memory:'), { keepReplica: true, reclaim: { reclaim: 'delete', retainSeconds: 600 } });
    await c.createPolicy(POLICY);
    await create(c, 'a', 'h1', { policy: 'gold' });
    await create(c, 'b', 'h1');
    await create(c, 'c', 'h1', { policy: 'gold' });
    const a = await c.beginRemove('a', 'h1');
    expect(a.retained).to.include({ name: 'a', node: 'h1', state: 'retaining', dataset: `_removed.${a.retained!.id}` });
    expect(keptFor(a.retained!)).to.equal(60);
    expect((await c.beginRemove('b', 'h1')).retained, 'the cluster default: delete').to.equal(null);
    await c.setVolumeOptions('c', { reclaim: 'delete' }, 'h1');
    expect((await c.beginRemove('c', 'h1')).retained, "the volume's own option wins over its policy").to.equal(null);
    await create(c, 'd', 'h1');
    expect((await failure(c.setVolumeOptions('d', { 'retain-removed': 'forever' }, 'h1'))).code).to.equal('INVALID_OPTION');
    await c.setVolumeOptions('d', { reclaim: 'retain', 'retain-removed': '2h' }, 'h1');
    expect(keptFor((await c.beginRemove('d', 'h1')).retained!)).to.equal(7200);
  });

  it('removed on another host: replicas drop, the primary keeps it, and a repeated remove answers the same retain', async function () {
    const c = new LocalControl(openDb(':memory:'), { keepReplica: true, reclaim: { reclaim: 'retain', retainSeconds: 600 } });
    await create(c, 'db', 'h1');
    await c.registerNode({ name: 'h1', address: '10.0.0.1:7401', transferKey: 'k'.repeat(32), bootId: 'b1' });
    await c.registerNode({ name: 'h2', address: '10.0.0.2:7401', transferKey: 'k'.repeat(32), bootId: 'b2' });
    const m = await c.requestMove('db', 'h2');
    await c.updateMove(m.id, { state: 'releasing' });
    await c.updateMove(m.id, { state: 'final' });
    await c.switchMove(m.id);
    await c.finishMove(m.id);
    // Now primary h2, replica on h1; removed on h1.
    const first = await c.beginRemove('db', 'h1');
    expect(first.hosts, 'only the replica is dropped').to.deep.equal(['h1']);
    expect(first.retained).to.include({ node: 'h2', state: 'retaining' });
    expect((await c.heartbeat('h2', 'b2')).destroy, 'the primary is never asked to destroy a copy it keeps').to.deep.equal([]);
    const again = await c.beginRemove('db', 'h2');
    expect(again.retained?.id).to.equal(first.retained!.id);
    await c.copyDestroyed('db', 'h1');
    expect((await c.getVolume('db'))?.state, 'the record stays while the live copy is kept').to.equal('deleting');
    await c.retainedCopyMade(first.retained!.id, 'h2');
    expect((await c.heartbeat('h2', 'b2')).destroy.map((d) => d.volume), 'then the live copy goes').to.deep.equal(['db']);
    await c.copyDestroyed('db', 'h2');
    expect(await c.getVolume('db')).to.equal(undefined);
    const wrongHost = await failure(c.beginUndelete(first.retained!.id, 'db', 'h1'));
    expect(wrongHost.code).to.equal('INVALID_REQUEST');
    expect(wrongHost.message).to.match(/kept on h2: run ferry volume undelete db there/);
  });

  it('expiry and undelete of one removal: whichever control records first wins, never both', async function () {
    const c = new LocalControl(openDb(':memory:'), { keepReplica: true, reclaim: { reclaim: 'retain', retainSeconds: 600 } });
    await create(c, 'db', 'h1');
    const { retained } = await c.beginRemove('db', 'h1');
    await c.retainedCopyMade(retained!.id, 'h1');
    await c.copyDestroyed('db', 'h1');
    await c.beginUndelete(retained!.id, 'db', 'h1');
    expect(await c.expireRemoved(retained!.id, 'h1')).to.equal(true);
    const late = await failure(c.finishUndelete(retained!.id, 'db', 'h1'));
    expect(late.code).to.equal('VOLUME_NOT_FOUND');
    expect(late.message).to.match(/expired during its undelete/);
    expect(await c.expireRemoved(retained!.id, 'h1'), 'once').to.equal(false);
    await c.forgetRemoved(retained!.id, 'h1');
    expect(await c.listRemoved()).to.deep.equal([]);
  });
});
