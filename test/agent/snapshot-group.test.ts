import { expect } from 'chai';
import { ContainerQuiescer } from '../../src/agent/quiesce';
import type { HostContainer } from '../../src/agent/quiesce-plan';
import { silentLogger } from '../../src/log';
import { quiesceModeOf, resolveCreateOptions } from '../../src/volume/options';
import { loadConfig } from '../../src/config/config';
import { agentParts } from '../support/agent-parts';
import { ScriptedDocker } from '../support/scripted-docker';

const shop = { 'com.docker.compose.project': 'shop' };
const ctr = (name: string, volumes: string[], labels: Record<string, string> = {}): HostContainer => ({ id: `id-${name}`, name, state: 'running', labels, volumes });

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a failure');
}

/** Parts over a memory backend whose snapshots run through a ContainerQuiescer over `docker`. */
function parts(docker: ScriptedDocker) {
  return agentParts({ quiescer: (control) => new ContainerQuiescer('h1', control, docker, silentLogger(), 1000) });
}

describe('quiesce option: -o quiesce', function () {
  const config = loadConfig({ overrides: { nodeName: 'h1', dataDir: '/nonexistent/data', logLevel: 'silent', defaults: { backend: 'directory' } } });
  it('takes pause and none, refuses anything else naming the valid values', function () {
    expect(resolveCreateOptions({ quiesce: 'pause' }, config).quiesce).to.equal('pause');
    expect(resolveCreateOptions({ quiesce: 'none' }, config).quiesce).to.equal('none');
    expect(resolveCreateOptions({}, config).quiesce).to.equal(undefined);
    expect(() => resolveCreateOptions({ quiesce: 'freeze' }, config)).to.throw(/invalid quiesce "freeze": valid values are none, pause/);
  });
  const rows: [string, Record<string, string>[], 'none' | 'pause' | undefined, 'none' | 'pause'][] = [
    ['asked wins over the volume', [{ quiesce: 'pause' }], 'none', 'none'],
    ['the volume’s option when not asked', [{ quiesce: 'pause' }], undefined, 'pause'],
    ['none by default', [{}], undefined, 'none'],
    ['a group pauses when any of its volumes says so', [{}, { quiesce: 'pause' }], undefined, 'pause'],
  ];
  for (const [title, options, asked, want] of rows) {
    it(title, function () {
      expect(quiesceModeOf(options, asked)).to.equal(want);
    });
  }
});

describe('agent part snapshots: quiesced take and group snapshots (scripted dockerd, no root)', function () {
  it('take pauses the containers of a volume created with -o quiesce=pause; --quiesce none overrides', async function () {
    const d = new ScriptedDocker([ctr('db', ['data'])]);
    const a = parts(d);
    await a.volumes.create('data', { quiesce: 'pause' });
    await a.snapshots.take('data', { name: 's1', origin: 'manual' });
    expect(d.calls).to.deep.equal(['pause db', 'unpause db']);
    await a.snapshots.take('data', { name: 's2', origin: 'manual', quiesce: 'none' });
    expect(d.calls).to.have.length(2);
    expect(await a.backend.listSnapshots('data')).to.deep.equal(['s1', 's2']);
  });

  it('a failed pre hook: no snapshot taken or recorded, the container running', async function () {
    const d = new ScriptedDocker([ctr('db', ['data'], { 'ferry.pre-snapshot': '["lock"]' })]);
    d.exits.set('db:lock', 1);
    const a = parts(d);
    await a.volumes.create('data', {});
    const err = await errorOf(a.snapshots.take('data', { name: 's1', origin: 'manual', quiesce: 'pause' }));
    expect(err.code).to.equal('QUIESCE_FAILED');
    expect(await a.backend.listSnapshots('data')).to.deep.equal([]);
    expect(await a.control.snapshotsOf('data')).to.deep.equal([]);
    expect(d.paused.size).to.equal(0);
  });

  it('a Compose project: its ferry volumes at one instant, each recorded with the group; Docker’s own volumes left out', async function () {
    const d = new ScriptedDocker([ctr('web', ['static', 'dockers-own'], shop), ctr('db', ['data'], shop), ctr('other', ['elsewhere'])]);
    const a = parts(d);
    for (const v of ['static', 'data', 'elsewhere']) await a.volumes.create(v, {});
    // Both containers paused while every snapshot is taken, released after the last.
    const snapshot = a.backend.snapshot.bind(a.backend);
    const pausedDuring: string[][] = [];
    a.backend.snapshot = async (volume: string, name: string) => {
      pausedDuring.push([...d.paused].sort());
      return snapshot(volume, name);
    };
    const g = await a.snapshots.takeGroup('shop', undefined, { name: 'g1', origin: 'manual', quiesce: 'pause' });
    expect(g.snapshots.map((s) => [s.volume, s.name, s.group])).to.deep.equal([
      ['data', 'g1', 'shop'],
      ['static', 'g1', 'shop'],
    ]);
    expect(pausedDuring).to.deep.equal([
      ['id-db', 'id-web'],
      ['id-db', 'id-web'],
    ]);
    expect(d.paused.size).to.equal(0);
    expect(g.pausedMs).to.be.a('number');
    expect((await a.control.snapshotsOf('data')).map((s) => s.group)).to.deep.equal(['shop']);
    expect(await a.control.snapshotsOf('elsewhere')).to.deep.equal([]);
  });

  it('named volumes: all or none — one snapshot failing deletes the others', async function () {
    const d = new ScriptedDocker([ctr('a', ['v1']), ctr('b', ['v2'])]);
    const a = parts(d);
    await a.volumes.create('v1', {});
    await a.volumes.create('v2', {});
    const snapshot = a.backend.snapshot.bind(a.backend);
    a.backend.snapshot = async (volume: string, name: string) => {
      if (volume === 'v2') throw new Error('the pool is full');
      return snapshot(volume, name);
    };
    const err = await errorOf(a.snapshots.takeGroup('pair', ['v2', 'v1'], { name: 'g', origin: 'manual', quiesce: 'pause' }));
    expect(err.message).to.match(/the pool is full/);
    expect(await a.backend.listSnapshots('v1')).to.deep.equal([]);
    expect(await a.control.snapshotsOf('v1')).to.deep.equal([]);
    expect(d.paused.size).to.equal(0);
  });

  it('refuses before anything is taken: a bad group name, an unknown project, a volume primary elsewhere', async function () {
    const d = new ScriptedDocker([ctr('a', ['v1'])]);
    const a = parts(d);
    await a.volumes.create('v1', {});
    expect((await errorOf(a.snapshots.takeGroup('-bad', ['v1'], { origin: 'manual' }))).code).to.equal('INVALID_NAME');
    expect((await errorOf(a.snapshots.takeGroup('nobody', undefined, { origin: 'manual' }))).code).to.equal('VOLUME_NOT_FOUND');
    await a.control.reserveVolume({ name: 'far', backend: 'directory', options: {}, primaryNode: 'h2' });
    await a.control.confirmVolume('far', 'h2');
    const far = await errorOf(a.snapshots.takeGroup('mixed', ['v1', 'far'], { name: 'x', origin: 'manual', quiesce: 'pause' }));
    expect(far.code).to.equal('NOT_PRIMARY');
    expect(d.calls).to.deep.equal([]);
    expect(await a.backend.listSnapshots('v1')).to.deep.equal([]);
  });
});
