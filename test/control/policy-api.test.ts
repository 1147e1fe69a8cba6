import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpControl } from '../../src/agent/http-control';
import { loadConfig } from '../../src/config/config';
import { startControl, type ControlService } from '../../src/control/service';
import { isFerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import type { PolicySpec } from '../../src/wire/control-client';
import { policyInspectShape, policyListShape } from '../../src/wire/shapes';
import { cleanupDir, makeTempDir } from '../support/host';
import { requestJson } from '../support/unix-http';

/* Policies over control's REST API: agents' calls (HttpControl) and the reads for people and tools. */

const TOKEN = 'a-long-test-token-0123456789abcdef';
const GOLD: PolicySpec = {
  name: 'gold',
  schedule: '*/15 * * * *',
  keep: '10',
  replicateTo: ['h2', 'h3'],
  replicas: null,
  rpoSeconds: 30,
  bandwidthBytes: 50 * 2 ** 20,
  failover: 'auto',
  reclaim: 'retain',
  retainRemovedSeconds: 7 * 86400,
};

describe('control REST API: policies', function () {
  let dir: string;
  let svc: ControlService;
  before(async function () {
    dir = makeTempDir('policy-api');
    writeFileSync(join(dir, 'token'), TOKEN);
    const config = loadConfig({ overrides: { dataDir: join(dir, 'data'), logLevel: 'silent', control: { listen: '127.0.0.1:0', tokenFile: join(dir, 'token') } } });
    svc = await startControl(config, silentLogger());
  });
  after(async function () {
    await svc?.stop();
    cleanupDir(dir);
  });
  const get = (path: string, token = TOKEN) => requestJson({ host: '127.0.0.1', port: svc.port, path, method: 'GET', headers: { Authorization: `Bearer ${token}` } }, '');

  it('an agent creates, reads and changes policies over HTTP, every field intact; errors keep their codes', async function () {
    const c = httpControl({ url: `http://127.0.0.1:${svc.port}`, token: TOKEN });
    const made = await c.createPolicy(GOLD);
    expect(made).to.deep.include(GOLD);
    expect(await c.getPolicy('gold')).to.deep.equal(made);
    expect(await c.getPolicy('none')).to.equal(undefined);
    expect((await c.updatePolicy('gold', { rpoSeconds: null, keep: '48h 14d' })).keep).to.equal('48h 14d');
    expect(await c.reserveVolume({ name: 'db', backend: 'btrfs', options: { policy: 'gold' }, primaryNode: 'h1' })).to.equal(true);
    await c.confirmVolume('db', 'h1');
    try {
      await c.deletePolicy('gold');
      expect.fail('removed a policy in use');
    } catch (err) {
      expect(isFerryError(err, 'POLICY_IN_USE'), String(err)).to.equal(true);
      expect((err as Error).message).to.match(/used by volume db/);
    }
    try {
      await c.setVolumeOptions('db', { policy: 'silver' }, 'h1');
      expect.fail('set a policy that does not exist');
    } catch (err) {
      expect(isFerryError(err, 'POLICY_NOT_FOUND'), String(err)).to.equal(true);
    }
    expect((await c.setVolumeOptions('db', { policy: null }, 'h2')).options).to.deep.equal({});
  });

  it('answers GET /v1/policies and /v1/policies/NAME (with the volumes that have it) behind the token', async function () {
    const c = httpControl({ url: `http://127.0.0.1:${svc.port}`, token: TOKEN });
    await c.setVolumeOptions('db', { policy: 'gold' }, 'h1');
    const list = await get('/v1/policies');
    expect(list.status).to.equal(200);
    expect(policyListShape.parse(list.json.policies).map((p) => p.name)).to.deep.equal(['gold']);
    const one = await get('/v1/policies/gold');
    expect(policyInspectShape.parse(one.json).volumes).to.deep.equal(['db']);
    expect((await get('/v1/policies/silver')).status).to.equal(404);
    expect((await get('/v1/policies', 'wrong-token')).status).to.equal(401);
  });
});
