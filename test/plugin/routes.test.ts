import { BACKEND_KINDS } from '../../src/agent/backends/registry';
import { expect } from 'chai';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../src/config/config';
import type { Ferry } from '../../src/serve';
import { isMountPoint } from '../../src/agent/mount-table';
import { insertVolume } from '../../src/control/volume-repo';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { startTestFerry, testConfig } from '../support/ferry';
import { unixRequest } from '../support/unix-http';

describe('plugin routes over a real Unix socket', function () {
  let dir: string;
  let config: Config;
  let ferry: Ferry;
  const call = async (endpoint: string, body?: unknown): Promise<Record<string, unknown>> => {
    const r = await unixRequest(config.pluginSocket, endpoint, body);
    expect(r.status).to.equal(200);
    return r.json;
  };
  const ok = async (endpoint: string, body?: unknown): Promise<Record<string, unknown>> => {
    const j = await call(endpoint, body);
    expect(j.Err ?? '', `${endpoint} ${JSON.stringify(body)}`).to.equal('');
    return j;
  };
  const err = async (endpoint: string, body: unknown, match: RegExp): Promise<void> => {
    const j = await call(endpoint, body);
    expect(j.Err, `${endpoint} ${JSON.stringify(body)}`).to.be.a('string').and.match(match);
  };

  before(async function () {
    requireRootAndTools('btrfs', 'mkfs.btrfs');
    dir = makeTempDir('plugin');
    config = testConfig(dir);
    ferry = await startTestFerry(config);
  });
  after(async function () {
    await ferry?.stop();
    cleanupDir(dir);
  });

  it('answers Activate and Capabilities', async function () {
    expect(await call('/Plugin.Activate', {})).to.deep.equal({ Implements: ['VolumeDriver'] });
    expect(await call('/VolumeDriver.Capabilities', {})).to.deep.equal({ Capabilities: { Scope: 'global' } });
  });

  it('creates with null Opts and with a size, idempotently', async function () {
    await ok('/VolumeDriver.Create', { Name: 'plain', Opts: null });
    await ok('/VolumeDriver.Create', { Name: 'sized', Opts: { size: '64M' } });
    await ok('/VolumeDriver.Create', { Name: 'sized', Opts: { size: '64M' } });
    await ok('/VolumeDriver.Create', { Name: 'sized', Opts: null });
    await err('/VolumeDriver.Create', { Name: 'sized', Opts: { size: '128M' } }, /already exists with backend=btrfs size=64.0 MiB/);
  });

  it('refuses bad names, options and sizes with errors that say what to do', async function () {
    await err('/VolumeDriver.Create', { Name: '../x' }, /invalid volume name/);
    await err('/VolumeDriver.Create', { Name: 'a/b' }, /invalid volume name/);
    await err('/VolumeDriver.Create', { Name: '' }, /empty/);
    await err('/VolumeDriver.Create', { Name: 'x'.repeat(300) }, /at most 128/);
    await err('/VolumeDriver.Create', { Name: 'v1', Opts: { color: 'red' } }, /valid options are size, backend, fs, profile/);
    await err('/VolumeDriver.Create', { Name: 'v1', Opts: { size: '0' } }, /larger than 0|invalid size/);
    await err('/VolumeDriver.Create', { Name: 'v1', Opts: { size: '-1G' } }, /invalid size/);
    await err('/VolumeDriver.Create', { Name: 'v1', Opts: { size: 'lots' } }, /invalid size/);
    await err('/VolumeDriver.Create', { Name: 'v1', Opts: { size: '100G' } }, /larger than the btrfs pool/);
    await err('/VolumeDriver.Create', { Name: 'v1', Opts: { backend: 'nosuch' } }, new RegExp(`valid values are ${BACKEND_KINDS.join(', ')}`));
    await err('/VolumeDriver.Get', { Name: 'v1' }, /does not exist/);
  });

  it('answers malformed JSON and unknown endpoints with an error, and keeps serving', async function () {
    await err('/VolumeDriver.Create', '{"Name": "broken', /not valid JSON/);
    await err('/VolumeDriver.Create', '[1,2]', /must be a JSON object/);
    await err('/VolumeDriver.Explode', {}, /unknown plugin endpoint/);
    await ok('/VolumeDriver.List', {});
  });

  it('gets a volume with RFC 3339 CreatedAt and a useful Status, and lists it', async function () {
    const g = (await ok('/VolumeDriver.Get', { Name: 'sized' })).Volume as Record<string, unknown>;
    expect(g.Name).to.equal('sized');
    expect(new Date(g.CreatedAt as string).toISOString()).to.equal(g.CreatedAt);
    expect(g.Status).to.deep.include({ backend: 'btrfs', size: '64.0 MiB', sizeBytes: 64 * 2 ** 20, primary: 'h1', generation: 1, state: 'ready', mounts: 0 });
    const l = (await ok('/VolumeDriver.List', {})).Volumes as { Name: string }[];
    expect(l.map((v) => v.Name)).to.include.members(['plain', 'sized']);
  });

  it('counts mounts per ID, unmounts at zero, and reports Path only while mounted', async function () {
    const m1 = (await ok('/VolumeDriver.Mount', { Name: 'sized', ID: 'c1' })).Mountpoint as string;
    expect(m1).to.equal(join(config.mountRoot, 'sized'));
    expect(isMountPoint(m1)).to.equal(true);
    writeFileSync(join(m1, 'f'), 'data');
    expect((await ok('/VolumeDriver.Mount', { Name: 'sized', ID: 'c1' })).Mountpoint).to.equal(m1);
    await ok('/VolumeDriver.Mount', { Name: 'sized', ID: 'c2' });
    expect((await ok('/VolumeDriver.Path', { Name: 'sized' })).Mountpoint).to.equal(m1);
    expect(((await ok('/VolumeDriver.Get', { Name: 'sized' })).Volume as { Status: { mounts: number } }).Status.mounts).to.equal(3);
    await ok('/VolumeDriver.Unmount', { Name: 'sized', ID: 'c1' });
    await ok('/VolumeDriver.Unmount', { Name: 'sized', ID: 'c2' });
    expect(isMountPoint(m1), 'still one mount of c1').to.equal(true);
    await err('/VolumeDriver.Remove', { Name: 'sized' }, /in use: mounted on host h1 at .*sized by 1 container mount/);
    await ok('/VolumeDriver.Unmount', { Name: 'sized', ID: 'c1' });
    expect(isMountPoint(m1)).to.equal(false);
    expect((await ok('/VolumeDriver.Path', { Name: 'sized' })).Mountpoint).to.equal('');
    // An Unmount dockerd repeats is harmless.
    await ok('/VolumeDriver.Unmount', { Name: 'sized', ID: 'c1' });
    // The data is still there at the next mount.
    const again = (await ok('/VolumeDriver.Mount', { Name: 'sized', ID: 'c3' })).Mountpoint as string;
    expect(readFileSync(join(again, 'f'), 'utf8')).to.equal('data');
    await ok('/VolumeDriver.Unmount', { Name: 'sized', ID: 'c3' });
  });

  it('refuses Mount without an ID and of an unknown volume', async function () {
    await err('/VolumeDriver.Mount', { Name: 'sized' }, /need a non-empty ID/);
    await err('/VolumeDriver.Mount', { Name: 'nope', ID: 'x' }, /does not exist/);
  });

  it('removes a volume and its data', async function () {
    await ok('/VolumeDriver.Remove', { Name: 'plain' });
    await err('/VolumeDriver.Get', { Name: 'plain' }, /does not exist/);
    expect(existsSync(join(config.btrfs.poolMount, 'volumes', 'plain'))).to.equal(false);
    // Docker may remove a volume ferry no longer knows: that is fine.
    await ok('/VolumeDriver.Remove', { Name: 'plain' });
  });

  it('keeps a mounted volume usable across an agent restart (live restore)', async function () {
    await ok('/VolumeDriver.Create', { Name: 'live', Opts: { size: '32M' } });
    const mp = (await ok('/VolumeDriver.Mount', { Name: 'live', ID: 'c9' })).Mountpoint as string;
    writeFileSync(join(mp, 'before'), 'x');
    await ferry.stop();
    expect(isMountPoint(mp), 'stopping ferry leaves the filesystem mounted').to.equal(true);
    ferry = await startTestFerry(config);
    expect((await ok('/VolumeDriver.Path', { Name: 'live' })).Mountpoint).to.equal(mp);
    await ok('/VolumeDriver.Unmount', { Name: 'live', ID: 'c9' });
    expect(isMountPoint(mp)).to.equal(false);
  });

  it('rolls back a Create cut off by a crash, and reports orphans without deleting them', async function () {
    insertVolume(ferry.db!, { name: 'halfmade', backend: 'btrfs', options: {}, primaryNode: 'h1' });
    await ferry.stop();
    // A dataset that nobody records.
    const { execFileSync } = await import('node:child_process');
    execFileSync('btrfs', ['subvolume', 'create', join(config.btrfs.poolMount, 'volumes', 'stray')]);
    ferry = await startTestFerry(config);
    await err('/VolumeDriver.Get', { Name: 'halfmade' }, /does not exist/);
    const status = await ferry.agent.status.report();
    expect(status.orphans.map((o) => o.name)).to.include('stray');
    expect(existsSync(join(config.btrfs.poolMount, 'volumes', 'stray'))).to.equal(true);
  });

  it('serves the REST API with HTTP statuses and clear bodies', async function () {
    const created = await unixRequest(config.apiSocket, '/v1/volumes', { name: 'viaapi', options: { size: '32M' } });
    expect(created.status).to.equal(201);
    const bad = await unixRequest(config.apiSocket, '/v1/volumes', '{oops');
    expect(bad.status).to.equal(400);
    expect(JSON.stringify(bad.json)).to.match(/INVALID_REQUEST/);
    const missing = await unixRequest(config.apiSocket, '/v1/volumes/ghost', undefined, 'GET');
    expect(missing.status).to.equal(404);
    expect((missing.json.error as { code: string }).code).to.equal('VOLUME_NOT_FOUND');
    const dup = await unixRequest(config.apiSocket, '/v1/volumes', { name: 'viaapi', options: { size: '64M' } });
    expect(dup.status).to.equal(409);
    const inspect = await unixRequest(config.apiSocket, '/v1/volumes/viaapi', undefined, 'GET');
    expect((inspect.json.events as { kind: string }[]).map((e) => e.kind)).to.include('created');
    const rm = await unixRequest(config.apiSocket, '/v1/volumes/viaapi', undefined, 'DELETE');
    expect(rm.status).to.equal(200);
  });
});
