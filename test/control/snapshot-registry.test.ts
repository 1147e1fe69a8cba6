import { expect } from 'chai';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { AGENT_CALLS } from '../../src/wire/agent-calls';

/*
 * Control's snapshot registry (snap, issue 7 item 1): which hosts hold each snapshot of a volume,
 * oldest first, and that a snapshot's rows go with its last copy and with its volume. Pure SQLite.
 */

async function controlWithVolume(name = 'db', node = 'h1'): Promise<LocalControl> {
  const c = new LocalControl(openDb(':memory:'));
  expect(await c.reserveVolume({ name, backend: 'btrfs', options: {}, primaryNode: node })).to.equal(true);
  await c.confirmVolume(name, node);
  return c;
}

const t = (s: number) => new Date(Date.UTC(2026, 11, 2, 7, 0, s)).toISOString();

describe('control: the snapshot registry', function () {
  it('lists each snapshot once, oldest first, with every host holding it', async function () {
    const c = await controlWithVolume();
    await c.recordSnapshot({ volume: 'db', name: 'b', node: 'h1', origin: 'manual', createdAt: t(2) });
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1), sizeBytes: 4096 });
    await c.recordSnapshot({ volume: 'db', name: '_schedule.nightly.20261202T070003Z', node: 'h1', origin: 'schedule', createdAt: t(3), policy: 'nightly' });
    // A move or replication carried `a` to h2: the same snapshot, one more host (its first facts kept).
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h2', origin: 'replication', createdAt: t(9), sizeBytes: 8192, from: 'h1' });
    const list = await c.snapshotsOf('db');
    expect(list.map((s) => [s.name, s.hosts, s.origin, s.createdAt, s.sizeBytes, s.policy, s.group])).to.deep.equal([
      ['a', ['h1', 'h2'], 'manual', t(1), 4096, null, null],
      ['b', ['h1'], 'manual', t(2), null, null, null],
      ['_schedule.nightly.20261202T070003Z', ['h1'], 'schedule', t(3), null, 'nightly', null],
    ]);
  });

  it('is idempotent: a repeat keeps one row and takes a newer size', async function () {
    const c = await controlWithVolume();
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1) });
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1), sizeBytes: 10 });
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1) });
    expect((await c.snapshotsOf('db')).map((s) => [s.name, s.hosts, s.sizeBytes])).to.deep.equal([['a', ['h1'], 10]]);
  });

  it('forgets one host copy at a time; the snapshot goes with its last copy', async function () {
    const c = await controlWithVolume();
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1) });
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h2', origin: 'manual', createdAt: t(1), from: 'h1' });
    await c.forgetSnapshot('db', 'a', 'h1');
    expect((await c.snapshotsOf('db')).map((s) => s.hosts)).to.deep.equal([['h2']]);
    await c.forgetSnapshot('db', 'a', 'h1'); // idempotent
    await c.forgetSnapshot('db', 'a', 'h2');
    expect(await c.snapshotsOf('db')).to.deep.equal([]);
    expect((await c.eventsOf('db')).map((e) => e.kind)).to.include.members(['snapshot-created', 'snapshot-removed']);
  });

  it("drops a volume's snapshots with its record, so a new volume of that name starts with none", async function () {
    const c = await controlWithVolume();
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1) });
    expect(await c.beginDelete('db', 'h1')).to.deep.equal(['h1']);
    await c.copyDestroyed('db', 'h1');
    expect(await c.getVolume('db')).to.equal(undefined);
    expect(await c.snapshotsOf('db')).to.deep.equal([]);
    expect(await c.reserveVolume({ name: 'db', backend: 'btrfs', options: {}, primaryNode: 'h1' })).to.equal(true);
    expect(await c.snapshotsOf('db')).to.deep.equal([]);
  });

  it('keeps names unique per volume: a second host holds one only as received from a host that holds it', async function () {
    const c = await controlWithVolume();
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1) });
    const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);
    // Taken on h2 under a name h1 holds: the same name would not be the same data.
    expect(await codeOf(c.recordSnapshot({ volume: 'db', name: 'a', node: 'h2', origin: 'manual', createdAt: t(5) }))).to.equal('VOLUME_EXISTS');
    // Received from a host that holds no such snapshot, or of a name nobody holds.
    expect(await codeOf(c.recordSnapshot({ volume: 'db', name: 'a', node: 'h2', origin: 'manual', createdAt: t(1), from: 'h3' }))).to.equal('SNAPSHOT_NOT_FOUND');
    expect(await codeOf(c.recordSnapshot({ volume: 'db', name: 'z', node: 'h2', origin: 'manual', createdAt: t(1), from: 'h1' }))).to.equal('SNAPSHOT_NOT_FOUND');
    // A received copy keeps the snapshot's own facts, whatever the receiver says.
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h2', origin: 'replication', createdAt: t(7), from: 'h1' });
    expect((await c.snapshotsOf('db')).map((s) => [s.name, s.hosts, s.origin, s.createdAt])).to.deep.equal([['a', ['h1', 'h2'], 'manual', t(1)]]);
  });

  it("forgets a host's snapshots with its copy, and summarises each volume's for Docker's inspect", async function () {
    const c = await controlWithVolume();
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1) });
    await c.recordSnapshot({ volume: 'db', name: 'b', node: 'h1', origin: 'manual', createdAt: t(2) });
    await c.recordSnapshot({ volume: 'db', name: 'a', node: 'h2', origin: 'manual', createdAt: t(1), from: 'h1' });
    expect((await c.getVolume('db'))!.snapshots).to.deep.equal({ count: 2, newest: 'b', newestAt: t(2) });
    expect((await c.listVolumes())[0].snapshots).to.deep.equal({ count: 2, newest: 'b', newestAt: t(2) });
    // h2 keeps a replica after a move back and forth; its copy is then dropped, and its snapshots with it.
    await c.registerNode({ name: 'h2', address: '10.0.0.2:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', bootId: 'b' });
    const db = (c as unknown as { db: import('../../src/control/db').Db }).db;
    db.prepare(`INSERT INTO copies (volume, node, state, created_at) VALUES ('db', 'h2', 'dropping', ?)`).run(t(3));
    await c.copyDestroyed('db', 'h2');
    expect((await c.snapshotsOf('db')).map((s) => [s.name, s.hosts])).to.deep.equal([['a', ['h1']], ['b', ['h1']]]);
  });

  it('refuses a snapshot of a volume it does not know (VOLUME_NOT_FOUND)', async function () {
    const c = await controlWithVolume();
    try {
      await c.recordSnapshot({ volume: 'nope', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1) });
      expect.fail('recorded a snapshot of an unknown volume');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('VOLUME_NOT_FOUND');
    }
  });

  it('validates the calls agents make over HTTP (AGENT_CALLS)', function () {
    const ok = { volume: 'db', name: 'a', node: 'h1', origin: 'manual', createdAt: t(1), sizeBytes: null, group: 'proj', policy: null };
    expect(AGENT_CALLS.recordSnapshot.safeParse([ok]).success).to.equal(true);
    expect(AGENT_CALLS.recordSnapshot.safeParse([{ ...ok, origin: 'move' }]).success).to.equal(false);
    expect(AGENT_CALLS.recordSnapshot.safeParse([{ ...ok, sizeBytes: -1 }]).success).to.equal(false);
    expect(AGENT_CALLS.forgetSnapshot.safeParse(['db', 'a', 'h1']).success).to.equal(true);
    expect(AGENT_CALLS.snapshotsOf.safeParse(['db']).success).to.equal(true);
  });
});
