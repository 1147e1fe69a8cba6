import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config';
import { startControl, type ControlService } from '../../src/control/service';
import { httpControl } from '../../src/agent/http-control';
import { isFerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { cleanupDir, makeTempDir } from '../support/host';

const TOKEN = 'a-long-test-token-0123456789abcdef';

function post(port: number, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('control REST API over TCP', function () {
  let dir: string;
  let svc: ControlService;

  before(async function () {
    dir = makeTempDir('control');
    writeFileSync(join(dir, 'token'), TOKEN);
    const config = loadConfig({
      overrides: { dataDir: join(dir, 'data'), logLevel: 'silent', control: { listen: '127.0.0.1:0', tokenFile: join(dir, 'token'), downAfterSeconds: 1 } },
    });
    svc = await startControl(config, silentLogger());
  });
  after(async function () {
    await svc?.stop();
    cleanupDir(dir);
  });

  it('answers 401 without the token or with a wrong one, and changes nothing', async function () {
    const body = JSON.stringify({ args: [{ name: 'h9', address: '10.0.0.9:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', bootId: 'b' }] });
    for (const headers of [{}, { Authorization: "Bearer wrong" }, { Authorization: TOKEN }] as Record<string, string>[]) {
      const r = await post(svc.port, '/v1/agent/registerNode', body, headers);
      expect(r.status).to.equal(401);
      expect((r.json.error as { message: string }).message).to.match(/missing or wrong cluster token/);
    }
    expect(await svc.control.listNodes()).to.deep.equal([]);
  });

  it('answers 400 to malformed JSON, unknown calls and bad arguments, naming what is wrong', async function () {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const bad = await post(svc.port, '/v1/agent/listVolumes', '{"args": [', auth);
    expect(bad.status).to.equal(400);
    const unknown = await post(svc.port, '/v1/agent/dropDatabase', '{"args": []}', auth);
    expect(unknown.status).to.equal(400);
    expect(JSON.stringify(unknown.json)).to.match(/no such call: dropDatabase/);
    const args = await post(svc.port, '/v1/agent/getVolume', '{"args": [42]}', auth);
    expect(args.status).to.equal(400);
    expect(JSON.stringify(args.json)).to.match(/bad arguments for getVolume/);
  });

  it('serves agents through the HTTP client: names unique, leases fenced by generation', async function () {
    const c = httpControl({ url: `http://127.0.0.1:${svc.port}`, token: TOKEN });
    expect(await c.reserveVolume({ name: 'db', backend: 'btrfs', options: {}, primaryNode: 'h1' })).to.equal(true);
    expect(await c.reserveVolume({ name: 'db', backend: 'btrfs', options: {}, primaryNode: 'h2' })).to.equal(false);
    await c.confirmVolume('db', 'h1');
    expect((await c.getVolume('db'))?.primaryNode).to.equal('h1');
    try {
      await c.acquireLease({ volume: 'db', mountId: 'x', node: 'h1', mountpoint: '/m', generation: 0 });
      expect.fail('a lease at an old generation was granted');
    } catch (err) {
      expect(isFerryError(err, 'NOT_PRIMARY'), String(err)).to.equal(true);
    }
    try {
      await c.acquireLease({ volume: 'db', mountId: 'x', node: 'h2', mountpoint: '/m', generation: 1 });
      expect.fail('a lease on a host that is not primary was granted');
    } catch (err) {
      expect(isFerryError(err, 'NOT_PRIMARY'), String(err)).to.equal(true);
    }
    await c.acquireLease({ volume: 'db', mountId: 'x', node: 'h1', mountpoint: '/m', generation: 1 });
    expect((await c.getVolume('db'))?.mounts).to.equal(1);
    expect(await c.recordUsage(new Map([['db', 1234]]))).to.equal(undefined);
    expect((await c.getVolume('db'))?.usedBytes).to.equal(1234);
  });

  it('marks a node that stops heartbeating down', async function () {
    const c = httpControl({ url: `http://127.0.0.1:${svc.port}`, token: TOKEN });
    await c.registerNode({ name: 'h5', address: '10.0.0.5:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIxx', bootId: 'boot1' });
    expect((await c.heartbeat('h5', 'boot1')).known).to.equal(true);
    expect((await c.heartbeat('h5', 'another-boot')).known).to.equal(false);
    const deadline = Date.now() + 5000;
    while ((await c.listNodes()).find((n) => n.name === 'h5')?.state !== 'down') {
      if (Date.now() > deadline) expect.fail('h5 was never marked down');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await c.heartbeat('h5', 'boot1')).known).to.equal(true);
    expect((await c.listNodes()).find((n) => n.name === 'h5')?.state).to.equal('up');
  });

  it('refuses a move to an unknown host and a second move elsewhere, clearly', async function () {
    const c = httpControl({ url: `http://127.0.0.1:${svc.port}`, token: TOKEN });
    await c.registerNode({ name: 'h1', address: '10.0.0.1:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIyy', bootId: 'b1' });
    await c.registerNode({ name: 'h2', address: '10.0.0.2:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIzz', bootId: 'b2' });
    await c.registerNode({ name: 'h3', address: '10.0.0.3:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIww', bootId: 'b3' });
    await c.releaseLease('db', 'x');
    await expectCode(c.requestMove('db', 'nowhere'), 'NODE_NOT_FOUND');
    const m = await c.requestMove('db', 'h2');
    expect((await c.requestMove('db', 'h2')).id, 'the same target joins the move').to.equal(m.id);
    await expectCode(c.requestMove('db', 'h3'), 'MOVE_CONFLICT');
    // The switch refuses a lease held on the source, and a move that has not reached its final step.
    await expectCode(c.switchMove(m.id), 'MOVE_CONFLICT');
    await c.updateMove(m.id, { state: 'releasing' });
    await c.updateMove(m.id, { state: 'final' });
    await expectCode(c.acquireLease({ volume: 'db', mountId: 'late', node: 'h1', mountpoint: '/m', generation: 1 }), 'VOLUME_BUSY');
    const v = await c.switchMove(m.id);
    expect(v).to.include({ primaryNode: 'h2', generation: 2 });
    await expectCode(c.acquireLease({ volume: 'db', mountId: 'stale', node: 'h1', mountpoint: '/m', generation: 1 }), 'NOT_PRIMARY');
    await c.finishMove(m.id);
    expect((await c.moveOf('db'))?.state).to.equal('done');
  });

  it('speaks mutual TLS when configured, refusing clients without a certificate', async function () {
    const tls = join(dir, 'tls');
    const script = [
      `set -e; mkdir -p ${tls}; cd ${tls}`,
      'openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=ferry-test-ca 2>/dev/null',
      'for n in server client; do',
      '  openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null',
      '  printf "subjectAltName=IP:127.0.0.1\\n" > $n.ext',
      '  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 1 -extfile $n.ext 2>/dev/null',
      'done',
    ].join('\n');
    execFileSync('sh', ['-c', script]);
    const config = loadConfig({
      overrides: {
        dataDir: join(dir, 'tlsdata'),
        logLevel: 'silent',
        control: { listen: '127.0.0.1:0', tokenFile: join(dir, 'token'), tls: { ca: join(tls, 'ca.crt'), cert: join(tls, 'server.crt'), key: join(tls, 'server.key') } },
      },
    });
    const secure = await startControl(config, silentLogger());
    try {
      const good = httpControl({ url: `https://127.0.0.1:${secure.port}`, token: TOKEN, tls: { ca: join(tls, 'ca.crt'), cert: join(tls, 'client.crt'), key: join(tls, 'client.key') } });
      expect(await good.listVolumes()).to.deep.equal([]);
      const noCert = httpControl({ url: `https://127.0.0.1:${secure.port}`, token: TOKEN });
      await expectCode(noCert.listVolumes(), 'NODE_UNREACHABLE');
    } finally {
      await secure.stop();
    }
  });
});

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as { code?: string }).code, String(err)).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}, but it succeeded`);
}
