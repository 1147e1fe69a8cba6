import { expect } from 'chai';
import { LocalControl } from '../../src/control/control';
import { openDb, type Db } from '../../src/control/db';
import { replicationOf } from '../../src/control/replication-settings';
import { AGENT_CALLS } from '../../src/wire/agent-calls';
import type { PolicySpec } from '../../src/wire/control-client';

/*
 * replicate: control's side of replication on a real SQLite (in memory): standbys chosen from the
 * volume's policy, the duties a standby host gets, what a round reports, lag events under a given clock.
 */

const POLICY: PolicySpec = {
  name: 'rep',
  schedule: null,
  keep: null,
  replicateTo: ['h2'],
  replicas: null,
  rpoSeconds: 10,
  bandwidthBytes: 50 * 2 ** 20,
  failover: 'manual',
  reclaim: 'delete',
  retainRemovedSeconds: null,
};

async function cluster(policy: Partial<PolicySpec> = {}): Promise<{ c: LocalControl; db: Db }> {
  const db = openDb(':memory:');
  const c = new LocalControl(db);
  for (const n of ['h1', 'h2', 'h3']) await c.registerNode({ name: n, address: `10.0.0.${n.slice(1)}:7401`, transferKey: 'k'.repeat(32), bootId: `boot-${n}` });
  await c.createPolicy({ ...POLICY, ...policy });
  expect(await c.reserveVolume({ name: 'db', backend: 'btrfs', options: { policy: 'rep' }, primaryNode: 'h1' })).to.equal(true);
  await c.confirmVolume('db', 'h1');
  return { c, db };
}

const kinds = async (c: LocalControl): Promise<string[]> => (await c.eventsOf('db')).map((e) => `${e.kind}:${e.node}`).filter((k) => /standby|replication/.test(k));

describe('control: replication', function () {
  it('reads replication from a policy only when it names hosts or a count', function () {
    const p = { backupTo: null, backupSchedule: null, backupKeep: null, verifyEverySeconds: null, verifyWith: null, ...POLICY, createdAt: '', updatedAt: '' };
    expect(replicationOf(undefined)).to.equal(undefined);
    expect(replicationOf({ ...p, replicateTo: [], replicas: null })).to.equal(undefined);
    expect(replicationOf(p)).to.deep.equal({ replicateTo: ['h2'], replicas: null, rpoSeconds: 10, bandwidthBytes: 50 * 2 ** 20 });
    expect(replicationOf({ ...p, replicateTo: [], replicas: 2, rpoSeconds: null })).to.deep.equal({ replicateTo: [], replicas: 2, rpoSeconds: 60, bandwidthBytes: 50 * 2 ** 20 });
  });

  it('chooses the standby, gives its host the duty, and records its rounds as a replica with a lag', async function () {
    const { c } = await cluster();
    const t0 = Date.now();
    c.superviseReplication(t0);
    expect(await kinds(c)).to.deep.equal(['standby-chosen:h2']);
    expect(await c.replicationDuties('h3')).to.deep.equal([]);
    expect(await c.replicationDuties('h2')).to.deep.equal([
      { volume: 'db', backend: 'btrfs', sizeBytes: null, fs: null, primary: 'h1', generation: 1, rpoSeconds: 10, bandwidthBytes: 50 * 2 ** 20, oldestBase: null },
    ]);
    const before = (await c.getVolume('db'))!;
    expect(before.replicas).to.deep.equal([]);
    expect(before.standbys?.map((s) => [s.node, s.snapshot, s.late])).to.deep.equal([['h2', null, false]]);

    const snap = '_replication.20261202T070005Z';
    const answer = await c.standbyReplicated({ volume: 'db', node: 'h2', snapshot: snap, bytes: 1234, takenAt: '2026-12-02T07:00:05.250Z' });
    expect(answer).to.deep.equal({ oldestBase: snap });
    const v = (await c.getVolume('db'))!;
    expect(v.replicas).to.deep.equal(['h2']);
    expect(v.standbys?.[0]).to.include({ node: 'h2', snapshot: snap, snapshotAt: '2026-12-02T07:00:05.250Z', lastBytes: 1234, rpoSeconds: 10 });
    expect((await c.replicationDuties('h2'))[0].oldestBase).to.equal(snap);
    // A time outside the name's second is not believed: the name's second is.
    await c.standbyReplicated({ volume: 'db', node: 'h2', snapshot: '_replication.20261202T070006Z', bytes: 1, takenAt: '2026-12-02T07:09:00.000Z' });
    expect((await c.getVolume('db'))!.standbys?.[0].snapshotAt).to.equal('2026-12-02T07:00:06.000Z');
  });

  it('records late and caught-up once each, by the clock it is given', async function () {
    const { c } = await cluster();
    c.superviseReplication(Date.parse('2026-12-02T07:00:00Z'));
    await c.standbyReplicated({ volume: 'db', node: 'h2', snapshot: '_replication.20261202T070000Z', bytes: 1 });
    c.superviseReplication(Date.parse('2026-12-02T07:00:09Z'));
    expect(c.superviseReplication(Date.parse('2026-12-02T07:00:11Z')).map((t) => t.kind)).to.deep.equal(['replication-late']);
    expect(c.superviseReplication(Date.parse('2026-12-02T07:00:30Z'))).to.deep.equal([]);
    expect((await c.getVolume('db'))!.standbys?.[0].late).to.equal(true);
    await c.standbyReplicated({ volume: 'db', node: 'h2', snapshot: '_replication.20261202T070028Z', bytes: 1 });
    expect(c.superviseReplication(Date.parse('2026-12-02T07:00:30Z')).map((t) => t.kind)).to.deep.equal(['replication-caught-up']);
    expect(await kinds(c)).to.deep.equal(['standby-chosen:h2', 'standby-synced:h2', 'replication-late:h2', 'replication-caught-up:h2']);
  });

  it('gives no duty while the volume moves, or while its primary is down', async function () {
    const { c, db } = await cluster();
    c.superviseReplication();
    await c.requestMove('db', 'h3');
    expect(await c.replicationDuties('h2')).to.deep.equal([]);
    db.prepare(`UPDATE moves SET state = 'failed'`).run();
    expect(await c.replicationDuties('h2')).to.have.length(1);
    db.prepare(`UPDATE nodes SET state = 'down' WHERE name = 'h1'`).run();
    expect(await c.replicationDuties('h2')).to.deep.equal([]);
  });

  it('with --replicas chooses hosts itself, and drops standbys when the policy stops replicating (their copies stay replicas)', async function () {
    const { c } = await cluster({ replicateTo: [], replicas: 2 });
    c.superviseReplication();
    expect((await c.getVolume('db'))!.standbys?.map((s) => s.node)).to.deep.equal(['h2', 'h3']);
    await c.standbyReplicated({ volume: 'db', node: 'h3', snapshot: '_replication.20261202T070000Z', bytes: 1 });
    await c.updatePolicy('rep', { replicas: null, rpoSeconds: null, bandwidthBytes: null });
    c.superviseReplication();
    const v = (await c.getVolume('db'))!;
    expect(v.standbys).to.equal(undefined);
    expect(v.replicas).to.deep.equal(['h3']);
    expect(await kinds(c)).to.include.members(['standby-dropped:h2', 'standby-dropped:h3']);
  });

  it('refuses a round report of a name replication does not own', async function () {
    const { c } = await cluster();
    c.superviseReplication();
    try {
      await c.standbyReplicated({ volume: 'db', node: 'h2', snapshot: '_move.1.final', bytes: 0 });
      expect.fail('accepted');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('INVALID_REQUEST');
    }
  });

  it('validates the agent calls it adds', function () {
    expect(() => AGENT_CALLS.replicationDuties.parse(['h2'])).not.to.throw();
    expect(() => AGENT_CALLS.standbyReplicated.parse([{ volume: 'db', node: 'h2', snapshot: 's', bytes: -1 }])).to.throw();
  });
});
