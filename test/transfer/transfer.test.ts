import { expect } from 'chai';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'ssh2';
import { TransferClient } from '../../src/transfer/client';
import { loadOrCreateKey, type TransferKey } from '../../src/transfer/keys';
import { parseRequest, encodeRequest, type TransferRequest } from '../../src/transfer/protocol';
import { TransferServer } from '../../src/transfer/server';
import { FerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { cleanupDir, makeTempDir } from '../support/host';

describe('transfer protocol', function () {
  const good: TransferRequest[] = [
    { op: 'snapshots', volume: 'db' },
    { op: 'send', volume: 'db', snapshot: 'm1-1' },
    { op: 'send', volume: 'db', snapshot: 'm1-2', base: 'm1-1' },
    { op: 'send-final', volume: 'db', snapshot: 'm1-final', base: 'm1-2' },
    { op: 'prune', volume: 'db', keep: 'm1-final' },
    { op: 'drop', volume: 'db' },
    { op: 'wake', volume: 'db' },
    { op: 'prune-replication', volume: 'db', oldest: '_replication.20261202T070005Z' },
    { op: 'send-snapshot', volume: 'db', snapshot: 'before-upgrade' },
    { op: 'send-snapshot', volume: 'db', snapshot: '_schedule.nightly.20261202T070000Z', base: 'before-upgrade' },
  ];
  for (const r of good) {
    it(`round-trips ${encodeRequest(r)}`, function () {
      expect(parseRequest(encodeRequest(r))).to.deep.equal(r);
    });
  }
  for (const line of ['sh', 'bash -c id', 'send ../etc snap', 'send db ../../x', 'send db', 'snapshots db extra', 'prune db', '', 'send db s1 s2 s3', 'drop', 'drop db now', 'prune-replication db', 'prune-replication db ../x', 'send-snapshot db', 'send-snapshot db ../x', 'wake', 'wake db now', 'wake ../db']) {
    it(`refuses ${JSON.stringify(line)}`, function () {
      expect(() => parseRequest(line)).to.throw(FerryError);
    });
  }
});

describe('transfer service over ssh2', function () {
  let dir: string;
  let server: TransferServer;
  let port: number;
  let serverKey: TransferKey;
  let peerKey: TransferKey;
  let strangerKey: TransferKey;
  const payload = randomBytes(8 * 1024 * 1024);
  const asked: string[] = [];

  before(async function () {
    dir = makeTempDir('transfer');
    serverKey = loadOrCreateKey(join(dir, 'server', 'id_ed25519'));
    peerKey = loadOrCreateKey(join(dir, 'peer', 'id_ed25519'));
    strangerKey = loadOrCreateKey(join(dir, 'stranger', 'id_ed25519'));
    server = new TransferServer(
      serverKey,
      async () => new Map([['h2', peerKey.publicKey]]),
      {
        async handle(req, peer) {
          asked.push(`${peer}:${encodeRequest(req)}`);
          if (req.op === 'send' && req.volume === 'broken') throw new FerryError('NOT_PRIMARY', 'host h1 is not primary for broken');
          return req.op === 'send' ? Readable.from([payload.subarray(0, 4e6), payload.subarray(4e6)]) : Readable.from(['[]']);
        },
      },
      silentLogger(),
    );
    port = await server.listen(0, '127.0.0.1');
  });
  after(async function () {
    await server?.close();
    cleanupDir(dir);
  });

  const peer = () => ({ name: 'h1', address: `127.0.0.1:${port}`, hostKey: serverKey.publicKey });

  it('keeps its key across restarts (made once, 0600)', function () {
    const again = loadOrCreateKey(join(dir, 'server', 'id_ed25519'));
    expect(again.publicKey).to.equal(serverKey.publicKey);
    expect(serverKey.publicKey).to.match(/^ssh-ed25519 /);
  });

  it('streams a dataset to a known peer, byte for byte, naming the peer to the handler', async function () {
    const c = await TransferClient.connect(peer(), peerKey.privateKey);
    const parts: Buffer[] = [];
    for await (const chunk of c.request({ op: 'send', volume: 'db', snapshot: 's1' })) parts.push(chunk as Buffer);
    c.close();
    const got = Buffer.concat(parts);
    expect(createHash('sha256').update(got).digest('hex')).to.equal(createHash('sha256').update(payload).digest('hex'));
    expect(asked).to.include('h2:send db s1');
  });

  it("carries the source's error code and message to the target", async function () {
    const c = await TransferClient.connect(peer(), peerKey.privateKey);
    try {
      await c.ask({ op: 'send', volume: 'broken', snapshot: 's1' });
      expect.fail('an error answer was taken as data');
    } catch (err) {
      expect((err as FerryError).code).to.equal('NOT_PRIMARY');
      expect((err as Error).message).to.match(/h1: host h1 is not primary for broken/);
    } finally {
      c.close();
    }
  });

  it('says which peer went away when its connection is gone, not "Not connected"', async function () {
    const c = await TransferClient.connect(peer(), peerKey.privateKey);
    c.close();
    await new Promise((r) => setTimeout(r, 100));
    try {
      await c.ask({ op: 'snapshots', volume: 'db' });
      expect.fail('a request on a closed connection succeeded');
    } catch (err) {
      expect((err as FerryError).code).to.equal('NODE_UNREACHABLE');
      expect((err as Error).message).to.match(/transfer with h1 failed/);
    }
  });

  it('refuses a key that is not a cluster node', async function () {
    try {
      const c = await TransferClient.connect(peer(), strangerKey.privateKey);
      c.close();
      expect.fail('an unknown key got in');
    } catch (err) {
      expect((err as FerryError).code).to.equal('NODE_UNREACHABLE');
      expect((err as Error).message).to.match(/authentication/i);
    }
  });

  it('refuses to talk to a host whose host key is not the registered one', async function () {
    try {
      const c = await TransferClient.connect({ ...peer(), hostKey: strangerKey.publicKey }, peerKey.privateKey);
      c.close();
      expect.fail('connected to an impostor');
    } catch (err) {
      expect((err as FerryError).code).to.equal('NODE_UNREACHABLE');
    }
  });

  it('gives no shell and runs no command that is not a dataset request', async function () {
    const conn = new Client();
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', resolve).once('error', reject);
      conn.connect({ host: '127.0.0.1', port, username: 'ferry', privateKey: peerKey.privateKey });
    });
    const shell = await new Promise<Error | undefined>((resolve) => conn.shell((err) => resolve(err)));
    expect(shell, 'shell was granted').to.be.instanceOf(Error);
    const exec = await new Promise<{ code: number; stderr: string; stdout: string }>((resolve, reject) =>
      conn.exec('cat /etc/shadow', (err, ch) => {
        if (err) return reject(err);
        let stderr = '';
        let stdout = '';
        let code = -1;
        ch.on('data', (b: Buffer) => (stdout += b.toString()));
        ch.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        ch.on('exit', (c: number) => (code = c));
        ch.on('close', () => resolve({ code, stderr, stdout }));
      }),
    );
    conn.end();
    expect(exec.code).to.equal(1);
    expect(exec.stdout).to.equal('');
    expect(exec.stderr).to.match(/INVALID_REQUEST transfer accepts only dataset requests/);
  });
});
