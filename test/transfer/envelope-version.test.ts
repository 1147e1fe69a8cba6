import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'ssh2';
import { unwrapStream, wrapStream } from '../../src/agent/backends/stream-envelope';
import { silentLogger } from '../../src/log';
import { TransferClient } from '../../src/transfer/client';
import { loadOrCreateKey, type TransferKey } from '../../src/transfer/keys';
import { TransferServer } from '../../src/transfer/server';
import { cleanupDir, makeTempDir } from '../support/host';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * A receiver names the envelope versions it reads; the sender writes the newest of them, so that a
 * ferry from before version 2 (which names none) still gets version 1 during an upgrade.
 */
describe('transfer: envelope version per receiver', function () {
  let dir: string;
  let server: TransferServer;
  let port: number;
  let serverKey: TransferKey;
  let peerKey: TransferKey;
  const body = randomBytes(3 * 1024 * 1024 + 5);
  const header = { backend: 'btrfs', snapshot: 's1' };

  before(async function () {
    dir = makeTempDir('envelope-version');
    serverKey = loadOrCreateKey(join(dir, 'server', 'id_ed25519'));
    peerKey = loadOrCreateKey(join(dir, 'peer', 'id_ed25519'));
    server = new TransferServer(
      serverKey,
      async () => new Map([['h2', peerKey.publicKey]]),
      {
        async handle(req) {
          // 'eager': wrapped inside send(), as btrfs, zfs, loop and directory do; 'lazy': wrapped only
          // when first read, from an async generator, as lvm does.
          if (req.volume === 'eager') return wrapStream(Readable.from([body]), header);
          async function* lazy(): AsyncGenerator<Buffer> {
            for await (const c of wrapStream(Readable.from([body]), header)) yield c as Buffer;
          }
          return Readable.from(lazy(), { objectMode: false });
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

  /** What a bare ssh2 client gets for `send VOLUME s1`, with `env` set (an old ferry sets none). */
  async function rawSend(volume: string, env?: Record<string, string>): Promise<{ code: number; stdout: Buffer; stderr: string }> {
    const conn = new Client();
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', resolve).once('error', reject);
      conn.connect({ host: '127.0.0.1', port, username: 'ferry', privateKey: peerKey.privateKey });
    });
    try {
      return await new Promise((resolve, reject) =>
        conn.exec(`send ${volume} s1`, env ? { env } : {}, (err, ch) => {
          if (err) return reject(err);
          const out: Buffer[] = [];
          let stderr = '';
          let code = -1;
          ch.on('data', (b: Buffer) => out.push(b));
          ch.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
          ch.on('exit', (c: number) => (code = c));
          ch.on('close', () => resolve({ code, stdout: Buffer.concat(out), stderr }));
        }),
      );
    } finally {
      conn.end();
    }
  }

  for (const volume of ['eager', 'lazy']) {
    it(`sends version 2 to a receiver of this version (${volume} stream)`, async function () {
      const c = await TransferClient.connect({ name: 'h1', address: `127.0.0.1:${port}`, hostKey: serverKey.publicKey }, peerKey.privateKey);
      try {
        const got = await collect(c.request({ op: 'send', volume, snapshot: 's1' }));
        expect(got.subarray(0, 8).toString()).to.equal('FERRYST2');
        expect((await collect(unwrapStream(Readable.from([got])).body)).equals(body)).to.equal(true);
      } finally {
        c.close();
      }
    });

    it(`sends version 1 to a receiver that names no versions, an older ferry (${volume} stream)`, async function () {
      const r = await rawSend(volume);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.subarray(0, 8).toString()).to.equal('FERRYST1');
      expect((await collect(unwrapStream(Readable.from([r.stdout])).body)).equals(body)).to.equal(true);
    });
  }

  it('refuses, saying so, a receiver that reads none of the versions this host writes', async function () {
    const r = await rawSend('eager', { FERRY_ENVELOPE: '7,8' });
    expect(r.code).to.equal(1);
    expect(r.stdout.length).to.equal(0);
    expect(r.stderr).to.match(/^INVALID_REQUEST h2 reads dataset streams of envelope versions 7,8 only, and this host writes 1, 2: run the same ferry version/);
  });

  it('ignores other environment variables', async function () {
    const r = await rawSend('eager', { PATH: '/tmp', LD_PRELOAD: '/x.so' });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.subarray(0, 8).toString()).to.equal('FERRYST1');
  });
});
