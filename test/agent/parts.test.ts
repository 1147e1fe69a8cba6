import { expect } from 'chai';
import { agentParts } from '../support/agent-parts';

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('the agent in parts (no root: an in-memory backend and control)', function () {
  it('creates idempotently, mounts once for several IDs, and unmounts with the last lease', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    await a.volumes.create('db', {});
    const mp = await a.mounts.mount('db', 'c1');
    expect(mp).to.equal('/mnt/ferry-test/db');
    await a.mounts.mount('db', 'c1');
    await a.mounts.mount('db', 'c2');
    expect(a.mounts.path('db')).to.equal(mp);
    await a.mounts.unmount('db', 'c2');
    await a.mounts.unmount('db', 'c1');
    expect(a.mounts.path('db'), 'c1 was counted twice').to.equal(mp);
    await a.mounts.unmount('db', 'c1');
    expect(a.mounts.path('db')).to.equal('');
    expect(a.backend.calls).to.deep.equal(['create db', 'mount db', 'unmount db']);
  });

  it('refuses a Mount of a volume primary elsewhere on a single host, saying cluster mode is needed', async function () {
    const a = agentParts();
    await a.control.reserveVolume({ name: 'far', backend: 'directory', options: {}, primaryNode: 'h2' });
    await a.control.confirmVolume('far', 'h2');
    try {
      await a.mounts.mount('far', 'c1');
      expect.fail('mounted a volume primary on h2');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('NOT_PRIMARY');
      expect((err as Error).message).to.match(/lives on host h2, not h1: moving volumes between hosts needs ferry control/);
    }
    expect(a.backend.calls).to.deep.equal([]);
  });

  it('removes a volume only when no lease holds it, destroying its copy and its record', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    await a.mounts.mount('db', 'c1');
    expect(await codeOf(a.volumes.remove('db'))).to.equal('VOLUME_IN_USE');
    expect(await codeOf(a.source.releaseForMove('db')), 'a move cannot take it either').to.equal('VOLUME_IN_USE');
    await a.mounts.unmount('db', 'c1');
    expect(await a.volumes.remove('db')).to.deep.equal([]);
    expect(await a.backend.exists('db')).to.equal(false);
    expect(await codeOf(a.volumes.get('db'))).to.equal('VOLUME_NOT_FOUND');
    expect(await a.volumes.remove('db'), 'removing it again is fine').to.deep.equal([]);
  });

  it('upkeep unmounts a filesystem no lease holds, and status reports what is mounted', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    await a.mounts.mount('db', 'c1');
    // A lease that control dropped (a lost Unmount): the filesystem stays mounted until upkeep.
    await a.control.releaseLease('db', 'c1');
    expect((await a.status.report()).mounted).to.deep.equal(['db']);
    await a.upkeep.maintain();
    expect(a.mounts.path('db')).to.equal('');
    const s = await a.status.report();
    expect(s.mounted).to.deep.equal([]);
    expect(s.volumes).to.equal(1);
    expect(s.backends).to.deep.equal([{ kind: 'directory', ok: true, totalBytes: 1 << 30, freeBytes: 1 << 30, abilities: ['snapshots', 'clones', 'streams', 'usage'] }]);
  });
});
