import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { planReconcile } from '../../src/agent/reconcile';
import { createLocalApi } from '../../src/api/local-api';
import { silentLogger } from '../../src/log';
import { removedListShape, volumeViewShape } from '../../src/wire/shapes';
import { agentParts } from '../support/agent-parts';
import { cleanupDir, makeTempDir } from '../support/host';
import { unixRequest } from '../support/unix-http';

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a failure');
}

/** reclaim=retain through the agent's parts (no root: an in-memory backend and control). */
describe('reclaim: retained removes, undelete and expiry (agent parts)', function () {
  it('deletes by default: nothing is retained', async function () {
    const a = agentParts();
    await a.volumes.create('db', {});
    a.backend.write('db', 'rows');
    await a.volumes.remove('db');
    expect(await a.backend.list()).to.deep.equal([]);
    expect(await a.control.listRemoved()).to.deep.equal([]);
  });

  it('keeps the data of a reclaim=retain volume as _removed.<id>; the name is free again; undelete refuses a taken name and brings it back --as another', async function () {
    const a = agentParts();
    await a.volumes.create('db', { reclaim: 'retain', 'retain-removed': '1h' });
    a.backend.write('db', 'rows');
    await a.volumes.remove('db');
    expect(await a.backend.list()).to.deep.equal(['_removed.1']);
    expect(a.backend.live.get('_removed.1')).to.equal('rows');
    const [r] = await a.control.listRemoved();
    expect(r).to.include({ id: 1, name: 'db', node: 'h1', dataset: '_removed.1', state: 'retained' });
    expect(Date.parse(r.expiresAt) - Date.parse(r.removedAt)).to.equal(3600_000);
    expect(await a.control.getVolume('db'), 'the record goes with the live copy').to.equal(undefined);
    // Docker may create a new volume of the same name meanwhile.
    await a.volumes.create('db', {});
    a.backend.write('db', 'new');
    const taken = await failure(a.reclaimer.undelete('db'));
    expect(taken.code).to.equal('VOLUME_EXISTS');
    expect(taken.message).to.match(/a volume named db exists again .*ferry volume undelete db --as NEW/);
    const back = await a.reclaimer.undelete('db', { as: 'db-old' });
    expect(back).to.include({ name: 'db-old', state: 'ready', primaryNode: 'h1' });
    expect(back.options).to.include({ reclaim: 'retain' });
    expect(a.backend.live.get('db-old')).to.equal('rows');
    expect(a.backend.live.get('db')).to.equal('new');
    expect(await a.backend.list(), 'the retained copy goes once undeleted').to.deep.equal(['db', 'db-old']);
    expect(await a.control.listRemoved()).to.deep.equal([]);
    expect((await a.control.eventsOf('db-old')).map((e) => e.kind)).to.include('undeleted');
    const none = await failure(a.reclaimer.undelete('db'));
    expect(none.code).to.equal('VOLUME_NOT_FOUND');
    expect(none.message).to.match(/ferry volume ls --removed/);
  });

  it('a crash before the retained copy is made leaves the live volume; upkeep finishes the retain', async function () {
    const a = agentParts();
    await a.volumes.create('db', { reclaim: 'retain' });
    a.backend.write('db', 'rows');
    const clone = a.backend.clone.bind(a.backend);
    a.backend.clone = async () => {
      throw new Error('agent killed mid-clone');
    };
    const cut = await failure(a.volumes.remove('db'));
    expect(cut.message).to.match(/its data retained, but its copy on h1 could not be kept yet: .*ferry retries by itself/);
    expect(a.backend.live.get('db'), 'the live dataset is still there').to.equal('rows');
    expect((await a.control.listRemoved())[0].state).to.equal('retaining');
    // The name stays taken while the live dataset holds it.
    expect((await failure(a.volumes.create('db', {}))).code).to.equal('VOLUME_BUSY');
    a.backend.clone = clone;
    await a.upkeep.maintain();
    expect(await a.backend.list()).to.deep.equal(['_removed.1']);
    expect(a.backend.live.get('_removed.1')).to.equal('rows');
    expect((await a.control.listRemoved())[0].state).to.equal('retained');
    expect(await a.control.getVolume('db')).to.equal(undefined);
  });

  it('a crash after the clone but before control heard of it: the clone is made again, never both lost', async function () {
    const a = agentParts();
    await a.volumes.create('db', { reclaim: 'retain' });
    a.backend.write('db', 'rows');
    const made = a.control.retainedCopyMade.bind(a.control);
    a.control.retainedCopyMade = async () => {
      throw new Error('control unreachable');
    };
    await failure(a.volumes.remove('db'));
    expect(await a.backend.list()).to.deep.equal(['_removed.1', 'db']);
    a.backend.live.set('_removed.1', 'half-made');
    a.control.retainedCopyMade = made;
    // A retried remove finishes it too (idempotent), as upkeep would.
    await a.volumes.remove('db');
    expect(await a.backend.list()).to.deep.equal(['_removed.1']);
    expect(a.backend.live.get('_removed.1')).to.equal('rows');
  });

  it('expires retained data after its time, with events, and destroys it', async function () {
    const a = agentParts();
    await a.volumes.create('db', { reclaim: 'retain', 'retain-removed': '30s' });
    await a.volumes.remove('db');
    await a.reclaimer.maintain(new Date(Date.now() + 10_000));
    expect(await a.backend.list(), 'not yet').to.deep.equal(['_removed.1']);
    await a.reclaimer.maintain(new Date(Date.now() + 31_000));
    expect(await a.backend.list()).to.deep.equal([]);
    expect(await a.control.listRemoved()).to.deep.equal([]);
    expect((await a.control.eventsOf('db')).map((e) => e.kind)).to.include.members(['deleting', 'retained', 'retained-expired', 'retained-destroyed']);
    expect((await failure(a.reclaimer.undelete('db'))).code).to.equal('VOLUME_NOT_FOUND');
  });

  it('an undelete cut off before control recorded it: the half-made volume is a cut-off create, the retained data stays', async function () {
    const a = agentParts();
    await a.volumes.create('db', { reclaim: 'retain' });
    a.backend.write('db', 'rows');
    await a.volumes.remove('db');
    const finish = a.control.finishUndelete.bind(a.control);
    a.control.finishUndelete = async () => {
      throw new Error('agent killed');
    };
    await failure(a.reclaimer.undelete('db'));
    expect((await a.control.getVolume('db'))?.state).to.equal('creating');
    expect((await a.control.listRemoved())[0].state).to.equal('retained');
    // What reconciliation at the next start decides for it:
    const actions = planReconcile({
      node: 'h1',
      volumes: await a.control.listVolumes(),
      leases: [],
      mounted: new Set(),
      datasets: new Map([['directory', new Set(await a.backend.list())]]),
      removed: await a.control.listRemoved(),
    });
    expect(actions.map((x) => x.kind)).to.deep.equal(['rollback-create']);
    await a.backend.destroy('db');
    await a.control.abandonVolume('db', 'h1', 'cut off');
    a.control.finishUndelete = finish;
    const back = await a.reclaimer.undelete('db');
    expect(back.state).to.equal('ready');
    expect(a.backend.live.get('db')).to.equal('rows');
  });

  it('reconciliation: a recorded retained dataset is no orphan; one control does not record is reported, never deleted', function () {
    const datasets = new Map([['directory', new Set(['_removed.1', '_removed.7'])]]);
    const removed = [{ dataset: '_removed.1', node: 'h1', backend: 'directory' }];
    const actions = planReconcile({ node: 'h1', volumes: [], leases: [], mounted: new Set(), datasets, removed });
    expect(actions.map((x) => `${x.kind} ${'dataset' in x ? x.dataset : ''}`)).to.deep.equal(['report-orphan-dataset _removed.7']);
    expect(actions[0].reason).to.match(/retained data of a removed volume that control no longer records; left untouched/);
  });

  it('the local REST API: DELETE says what is retained; GET /v1/removed and POST /v1/removed/:name/undelete, errors as the one translation says', async function () {
    const a = agentParts();
    const dir = makeTempDir('reclaim-api');
    const socket = join(dir, 'api.sock');
    const server: Server = createServer(createLocalApi({ volumes: a.volumes, mounts: a.mounts, status: a.status, reclaimer: a.reclaimer }, a.control, silentLogger()));
    await new Promise<void>((r) => server.listen(socket, r));
    try {
      await a.volumes.create('db', { reclaim: 'retain' });
      a.backend.write('db', 'rows');
      await a.volumes.create('plain', {});
      const plain = await unixRequest(socket, '/v1/volumes/plain', undefined, 'DELETE');
      expect([plain.status, plain.json.retained]).to.deep.equal([200, null]);
      const rm = await unixRequest(socket, '/v1/volumes/db', undefined, 'DELETE');
      expect(rm.status).to.equal(200);
      expect(rm.json.retained, 'what ferry volume rm tells the user').to.include({ name: 'db', node: 'h1', state: 'retained' });
      const list = await unixRequest(socket, '/v1/removed', undefined, 'GET');
      expect(list.status).to.equal(200);
      const removed = removedListShape.parse(list.json.removed);
      expect(removed.map((r) => [r.name, r.state])).to.deep.equal([['db', 'retained']]);
      const bad = await unixRequest(socket, '/v1/removed/db/undelete', { as: '-bad' });
      expect([bad.status, (bad.json.error as { code: string }).code]).to.deep.equal([400, 'INVALID_NAME']);
      const missing = await unixRequest(socket, '/v1/removed/other/undelete', {});
      expect(missing.status).to.equal(404);
      const back = await unixRequest(socket, '/v1/removed/db/undelete', { as: 'db2' });
      expect(back.status).to.equal(201);
      expect(volumeViewShape.parse(back.json.volume)).to.include({ name: 'db2', state: 'ready' });
      expect(a.backend.live.get('db2')).to.equal('rows');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      cleanupDir(dir);
    }
  });
});
