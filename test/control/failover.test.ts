import { expect } from 'chai';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';

/*
 * Control's side of failover on SQLite (no hosts): the switch, the leases refused meanwhile, the
 * heartbeat duties of the new primary and of the lost host, and what each report changes.
 */
describe('failover in control (SQLite)', function () {
  const lease = { leaseSeconds: 5, marginSeconds: 1 };
  let c: LocalControl;
  let db: ReturnType<typeof openDb>;

  beforeEach(async function () {
    db = openDb(':memory:');
    c = new LocalControl(db, { keepReplica: true, lease });
    for (const n of ['h1', 'h2']) await c.registerNode({ name: n, address: `10.0.0.${n[1]}:7401`, transferKey: 'k', bootId: n });
    expect(await c.reserveVolume({ name: 'db', backend: 'btrfs', options: { failover: 'auto' }, primaryNode: 'h1' })).to.equal(true);
    await c.confirmVolume('db', 'h1');
    // h2 keeps a standby holding one replication snapshot (as a replication round leaves it).
    db.prepare(`INSERT INTO copies (volume, node, state, created_at) VALUES ('db', 'h2', 'replica', '2026-12-02T07:00:00Z')`).run();
    // h2's copy came from h1 (a replication round): the registry records a second host's copy with `from`.
    for (const node of ['h1', 'h2']) await c.recordSnapshot({ volume: 'db', name: '_replication.20261202T070000Z', node, origin: 'replication', createdAt: '2026-12-02T07:00:00.000Z', ...(node === 'h2' ? { from: 'h1' } : {}) });
    await c.acquireLease({ volume: 'db', mountId: 'm1', node: 'h1', mountpoint: '/m/db', generation: 1 });
  });

  it('auto: waits for the lost primary lease, then promotes; leases wait for the promotion; the lost host is fenced when back', async function () {
    const silentAt = Date.parse((await c.listNodes()).find((n) => n.name === 'h1')!.lastHeartbeat!);
    c.markSilentNodesDown(0);
    await c.heartbeat('h2', 'h2');
    expect(c.superviseFailover(silentAt + 5_500).map((x) => x.decision.act)).to.deep.equal(['wait']);
    expect((await c.getVolume('db'))!.primaryNode).to.equal('h1');
    expect(c.superviseFailover(silentAt + 6_000).map((x) => x.decision.act)).to.deep.equal(['promote']);
    const v = (await c.getVolume('db'))!;
    expect([v.primaryNode, v.generation]).to.deep.equal(['h2', 2]);
    expect(await c.leasesOf('db')).to.deep.equal([]);
    const [f] = await c.failoversOf('db');
    expect(f).to.include({ from: 'h1', to: 'h2', generation: 2, snapshot: '_replication.20261202T070000Z', lostFrom: '2026-12-02T07:00:00.000Z', promoted: false });
    expect(f.lostTo).to.equal(new Date(silentAt).toISOString());
    expect((await c.eventsOf('db')).map((e) => e.kind)).to.include('failover');

    // The new primary is told to promote; until it has, no lease.
    const hb = await c.heartbeat('h2', 'h2');
    expect(hb.failovers).to.deep.equal([{ volume: 'db', backend: 'btrfs', sizeBytes: null, fs: null, role: 'promote', snapshot: '_replication.20261202T070000Z', generation: 2 }]);
    expect(hb.primaries).to.deep.equal([{ volume: 'db', generation: 2 }]);
    await expectCode(c.acquireLease({ volume: 'db', mountId: 'm2', node: 'h2', mountpoint: '/m/db', generation: 2 }), 'VOLUME_BUSY');
    await c.failoverPromoted('db', 'h2', 2);
    await c.acquireLease({ volume: 'db', mountId: 'm2', node: 'h2', mountpoint: '/m/db', generation: 2 });
    expect((await c.heartbeat('h2', 'h2')).failovers).to.deep.equal([]);

    // h1 back: its lease renewals no longer name db, its leases are refused, and it is told to fence.
    await c.registerNode({ name: 'h1', address: '10.0.0.1:7401', transferKey: 'k', bootId: 'h1b' });
    const back = await c.heartbeat('h1', 'h1b');
    expect(back.primaries).to.deep.equal([]);
    expect(back.failovers!.map((d) => d.role)).to.deep.equal(['fence']);
    await expectCode(c.acquireLease({ volume: 'db', mountId: 'm3', node: 'h1', mountpoint: '/m/db', generation: 1 }), 'NOT_PRIMARY');
    await c.recordSnapshot({ volume: 'db', name: 'lost-gen1-h1', node: 'h1', origin: 'fenced', createdAt: '2026-12-02T07:01:00.000Z' });
    await c.failoverFenced('db', 'h1', 2, 'lost-gen1-h1');
    expect((await c.heartbeat('h1', 'h1b')).failovers).to.deep.equal([]);
    expect((await c.getVolume('db'))!.replicas).to.deep.equal(['h1']);
    expect((await c.failoversOf('db'))[0]).to.include({ fenced: true, keptAs: 'lost-gen1-h1' });
    expect((await c.snapshotsOf('db')).find((s) => s.name === 'lost-gen1-h1')).to.include({ origin: 'fenced' });
  });

  it('by hand: refused while the primary is up; --force fences it (generation + 1, its leases go)', async function () {
    await expectCode(c.failoverVolume('db', 'h2', { force: false, node: 'h2' }), 'VOLUME_BUSY', /primary h1 is up.*--force/);
    const f = await c.failoverVolume('db', 'h2', { force: true, node: 'h2' });
    expect(f).to.include({ from: 'h1', to: 'h2', generation: 2, forced: true });
    expect(await c.leasesOf('db')).to.deep.equal([]);
    await expectCode(c.acquireLease({ volume: 'db', mountId: 'm9', node: 'h1', mountpoint: '/m/db', generation: 1 }), 'NOT_PRIMARY');
    expect((await c.heartbeat('h1', 'h1')).primaries).to.deep.equal([]);
  });

  it('failover=manual volumes never fail over by themselves', async function () {
    db.prepare(`UPDATE volumes SET options = '{"failover":"manual"}' WHERE name = 'db'`).run();
    c.markSilentNodesDown(0);
    expect(c.superviseFailover(Date.now() + 3_600_000).filter((x) => x.decision.act === 'promote')).to.deep.equal([]);
    expect((await c.getVolume('db'))!.primaryNode).to.equal('h1');
  });
});

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
