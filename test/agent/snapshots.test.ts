import { expect } from 'chai';
import { agentParts } from '../support/agent-parts';
import { plainBackend } from '../support/plain-backend';
import { chainPlan, planChain } from '../../src/agent/snapshot-chain';
import { replicationSnapshotAt } from '../../src/volume/replication-names';

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('agent part snapshots: take and remove, recorded in control (no root)', function () {
  it('takes a snapshot on the primary and records it; removes it and forgets it', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    const s = await a.snapshots.take('db', { name: 'before', origin: 'manual' });
    expect(s).to.include({ volume: 'db', name: 'before', origin: 'manual', sizeBytes: null, group: null, policy: null });
    expect(s.hosts).to.deep.equal(['h1']);
    expect(await a.backend.listSnapshots('db')).to.deep.equal(['before']);
    const listed = await a.control.snapshotsOf('db');
    expect(listed).to.deep.equal([s]);
    const sched = await a.snapshots.take('db', { origin: 'schedule', policy: 'nightly' });
    expect(sched.name).to.match(/^_schedule\.nightly\.\d{8}T\d{6}Z$/);
    expect(sched.policy).to.equal('nightly');
    await a.snapshots.remove('db', 'before');
    expect(await a.backend.listSnapshots('db')).to.deep.equal([sched.name]);
    expect((await a.control.snapshotsOf('db')).map((x) => x.name)).to.deep.equal([sched.name]);
    await a.snapshots.remove('db', 'before'); // idempotent
  });

  it('names a manual snapshot after the UTC time by default', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    expect((await a.snapshots.take('db', { origin: 'manual' })).name).to.match(/^\d{8}T\d{6}Z$/);
  });

  it('refuses: a taken name, a volume primary elsewhere, a move snapshot, pause without a quiescer, an unknown volume', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    await a.snapshots.take('db', { name: 'x', origin: 'manual' });
    expect(await codeOf(a.snapshots.take('db', { name: 'x', origin: 'manual' }))).to.equal('VOLUME_EXISTS');
    expect(await codeOf(a.snapshots.take('db', { name: '_move.1.final', origin: 'manual' }))).to.equal('INVALID_NAME');
    expect(await codeOf(a.snapshots.remove('db', '_move.1.final'))).to.equal('INVALID_REQUEST');
    expect(await codeOf(a.snapshots.take('db', { name: 'y', origin: 'manual', quiesce: 'pause' }))).to.equal('INVALID_OPTION');
    expect(await codeOf(a.snapshots.take('nope', { origin: 'manual' }))).to.equal('VOLUME_NOT_FOUND');
    await a.control.reserveVolume({ name: 'far', backend: 'directory', options: {}, primaryNode: 'h2' });
    await a.control.confirmVolume('far', 'h2');
    try {
      await a.snapshots.take('far', { origin: 'manual' });
      expect.fail('took a snapshot of a volume primary on h2');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('NOT_PRIMARY');
      expect((err as Error).message).to.match(/run it on h2/);
    }
    expect((await a.control.snapshotsOf('db')).map((s) => s.name)).to.deep.equal(['x']);
  });

  it('refuses clearly on a backend without snapshots', async function () {
    const a = agentParts({ backend: plainBackend('directory') });
    await a.volumes.create('db', {});
    try {
      await a.snapshots.take('db', { origin: 'manual' });
      expect.fail('took a snapshot without the ability');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('INVALID_REQUEST');
      expect((err as Error).message).to.match(/backend directory has no snapshots/);
    }
  });
});

describe('snapshot chain: the plan (pure)', function () {
  const plan = (source: string[], target: string[], carry: string[], shared: string[]) =>
    planChain({ source, target: new Set(target), carry: (s) => carry.includes(s), shared: (s) => shared.includes(s) });
  const cases: [string, ReturnType<typeof plan>, ReturnType<typeof planChain>][] = [
    ['to an empty host: a full stream, then increments', plan(['a', 'b', 'c'], [], ['a', 'b', 'c'], []), {
      steps: [{ snapshot: 'a' }, { snapshot: 'b', base: 'a' }, { snapshot: 'c', base: 'b' }], base: 'c', conflicts: [] }],
    ['to a replica: only what it lacks, on the newest shared one', plan(['a', 'b', '_move.3.final', 'c'], ['a', 'b', '_move.3.final'], ['a', 'b', 'c'], ['a', 'b', '_move.3.final']), {
      steps: [{ snapshot: 'c', base: '_move.3.final' }], base: 'c', conflicts: [] }],
    ['nothing missing: the base is the newest shared', plan(['a', 'b'], ['a', 'b'], ['a', 'b'], ['a', 'b']), { steps: [], base: 'b', conflicts: [] }],
    ['a same-named snapshot that is not shared is neither sent nor a base', plan(['a', 'x', 'b'], ['a', 'x'], ['a', 'x', 'b'], ['a']), {
      steps: [{ snapshot: 'b', base: 'a' }], base: 'b', conflicts: ['x'] }],
    ["other moves' and unrecorded snapshots are not carried", plan(['_move.1.1', 'u', 'a'], [], ['a'], []), { steps: [{ snapshot: 'a' }], base: 'a', conflicts: [] }],
    ['a host holding more than the sender: its extra ones are left alone', plan(['a'], ['a', 'z'], ['a'], ['a']), { steps: [], base: 'a', conflicts: [] }],
  ];
  for (const [what, got, want] of cases) it(what, () => expect(got).to.deep.equal(want));

  // The registry's view: who holds which name; a move from h1 to h2.
  const r = (s: number) => replicationSnapshotAt(new Date(Date.UTC(2026, 11, 4, 1, 51, s)));
  const chain = (theirs: string[], ours: string[], holders: Record<string, string[]>) =>
    chainPlan({ theirs, ours, holders: (s) => holders[s] ?? [], from: 'h1', to: 'h2' });
  it('a move to a standby that has tidied its replication snapshots before the primary has: nothing sent, its newest the base', function () {
    // CI saw this: h2 dropped r(12) after its round of r(14), a move began before h1 dropped it, and
    // the chain sent r(12) in a full stream (56 MiB instead of nothing).
    expect(chain([r(12), r(14)], [r(14)], { [r(12)]: ['h1'], [r(14)]: ['h1', 'h2'] })).to.deep.equal({ steps: [], base: r(14), conflicts: [] });
  });
  it('a move to a standby still carries a replication snapshot newer than its newest, and user snapshots it lacks', function () {
    expect(chain(['daily', r(12), r(14), r(16)], [r(12)], { daily: ['h1'], [r(12)]: ['h1', 'h2'], [r(14)]: ['h1'], [r(16)]: ['h1'] })).to.deep.equal({
      steps: [{ snapshot: 'daily' }, { snapshot: r(14), base: r(12) }, { snapshot: r(16), base: r(14) }],
      base: r(16),
      conflicts: [],
    });
  });
  it('a move to a host with no replication snapshot carries them all', function () {
    expect(chain([r(12), r(14)], [], { [r(12)]: ['h1'], [r(14)]: ['h1'] }).steps).to.deep.equal([{ snapshot: r(12) }, { snapshot: r(14), base: r(12) }]);
  });
});

describe('agent part snapshots: rollback and clone (no root)', function () {
  it('rolls back on the primary, refused while mounted (naming the mount) and for a snapshot it lacks', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    a.backend.write('db', 'one');
    await a.snapshots.take('db', { name: 's1', origin: 'manual' });
    a.backend.write('db', 'two');
    await a.mounts.mount('db', 'c1');
    expect(await codeOf(a.snapshots.rollback('db', 's1'))).to.equal('VOLUME_IN_USE');
    await a.mounts.unmount('db', 'c1');
    expect(await codeOf(a.snapshots.rollback('db', 'nope'))).to.equal('SNAPSHOT_NOT_FOUND');
    await a.snapshots.rollback('db', 's1');
    expect(a.backend.live.get('db')).to.equal('one');
  });

  it('makes a volume from a snapshot with -o from=, of the same kind; clear errors for what is not there', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    a.backend.write('db', 'one');
    await a.snapshots.take('db', { name: 's1', origin: 'manual' });
    a.backend.write('db', 'two');
    const v = await a.volumes.create('copy', { from: 'db@s1' });
    expect(a.backend.live.get('copy')).to.equal('one');
    expect(v).to.include({ name: 'copy', backend: 'directory', primaryNode: 'h1', state: 'ready' });
    expect(await a.backend.exists('copy')).to.equal(true);
    expect((await a.volumes.create('copy', { from: 'db@s1' })).name, 'Docker re-sends Create').to.equal('copy');
    expect(await codeOf(a.volumes.create('c2', { from: 'nope@s1' }))).to.equal('VOLUME_NOT_FOUND');
    expect(await codeOf(a.volumes.create('c2', { from: 'db@nope' }))).to.equal('SNAPSHOT_NOT_FOUND');
    expect(await codeOf(a.volumes.create('c2', { from: 'db' }))).to.equal('INVALID_OPTION');
    expect(await codeOf(a.volumes.create('c2', { from: 'db@s1', backend: 'btrfs' }))).to.equal('INVALID_OPTION');
    expect(await a.backend.exists('c2')).to.equal(false);
  });
});
