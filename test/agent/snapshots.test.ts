import { expect } from 'chai';
import { agentParts } from '../support/agent-parts';
import { plainBackend } from '../support/plain-backend';

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
