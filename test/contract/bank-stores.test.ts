import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FerryError, isFerryError } from '../../src/errors';
import { FileStore } from '../../src/bank/file-store';
import { openStore, parseBankUrl } from '../../src/bank/open-store';
import type { BankStore } from '../../src/bank/types';
import { S3Store } from '../../src/bank/s3-store';
import { cleanupDir, makeTempDir, requireRootAndTools, sh } from '../support/host';
import { stagedFds } from '../support/staged-fds';
import { swiftAio, type SwiftAio } from '../support/swift';

/* bank: the object stores' contract, the same cases on every kind of store, then each kind's faults. */

/** A kind of store under test: `fresh()` gives an empty store of its own. */
interface StoreKind {
  name: string;
  fresh(): Promise<BankStore>;
}

async function rejection(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof FerryError) return err;
    throw err;
  }
  throw new Error('expected a FerryError, got success');
}

/** Runs `fn` over `items`, `n` at a time. */
async function inParallel<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Every byte value, then random bytes: a body no text handling survives. */
function binaryBody(size: number): Buffer {
  const b = randomBytes(size);
  for (let i = 0; i < 256 && i < size; i++) b[i] = i;
  return b;
}

export function storeContract(kind: StoreKind): void {
  describe(`bank store contract: ${kind.name}`, function () {
    let store: BankStore;
    beforeEach(async function () {
      store = await kind.fresh();
    });

    it('answers null / false / [] for what is not there', async function () {
      expect(await store.get('config')).to.equal(null);
      expect(await store.has('config')).to.equal(false);
      expect(await store.get('chunks/ab/abcd')).to.equal(null);
      expect(await store.list('')).to.deep.equal([]);
      expect(await store.list('chunks/')).to.deep.equal([]);
    });

    it('puts and gets binary bodies byte for byte (empty, small, 5 MiB)', async function () {
      const bodies = { 'chunks/00/empty': Buffer.alloc(0), 'chunks/01/small': binaryBody(300), 'chunks/02/big': binaryBody(5 * 1024 * 1024) };
      for (const [k, b] of Object.entries(bodies)) await store.put(k, b);
      for (const [k, b] of Object.entries(bodies)) {
        const got = await store.get(k);
        expect(got, k).to.not.equal(null);
        expect(got!.equals(b), k).to.equal(true);
        expect(await store.has(k), k).to.equal(true);
      }
      expect(await store.has('chunks/02')).to.equal(false); // a "directory" is no object
    });

    it('reads ranges of an object (a chunk inside a pack): first, middle, last byte, whole; null when missing; BANK_CORRUPT past the end', async function () {
      const body = binaryBody(3 * 1024 * 1024 + 17);
      const key = `packs/ab/${'ab'.repeat(32)}`;
      await store.put(key, body);
      for (const [offset, length] of [[0, 1], [0, 300], [1024 * 1024 - 5, 2 * 1024 * 1024], [body.length - 1, 1], [0, body.length]]) {
        const got = await store.getRange(key, offset, length);
        expect(got, `${offset}+${length}`).to.not.equal(null);
        expect(got!.equals(body.subarray(offset, offset + length)), `${offset}+${length}`).to.equal(true);
      }
      // Into a buffer of the caller's (a restore's pooled range buffers): the same bytes, read into it.
      const into = Buffer.alloc(3 * 1024 * 1024, 0xee);
      for (const [offset, length] of [[0, 300], [1024 * 1024 - 5, 2 * 1024 * 1024], [body.length - 1, 1]]) {
        const got = await store.getRange(key, offset, length, into);
        expect(got!.length, `${offset}+${length} into`).to.equal(length);
        expect(got!.equals(body.subarray(offset, offset + length)), `${offset}+${length} into`).to.equal(true);
        expect(got!.buffer, `${offset}+${length}: read into the given buffer`).to.equal(into.buffer);
      }
      // One too short for the range is not written past: the store reads into a buffer of its own.
      const small = Buffer.alloc(10);
      const whole = await store.getRange(key, 0, 300, small);
      expect(whole!.equals(body.subarray(0, 300))).to.equal(true);
      expect(small.equals(Buffer.alloc(10))).to.equal(true);
      expect(await store.getRange(`packs/cd/${'cd'.repeat(32)}`, 0, 10)).to.equal(null);
      for (const [offset, length] of [[body.length - 10, 11], [body.length, 1], [body.length + 100, 5]]) {
        const err = await rejection(store.getRange(key, offset, length));
        expect(err.code, `${offset}+${length}: ${err.message}`).to.equal('BANK_CORRUPT');
        expect(err.message).to.include(key);
      }
      for (const [offset, length] of [[-1, 5], [0, 0], [1.5, 2]]) {
        expect((await rejection(store.getRange(key, offset, length))).code).to.equal('INVALID_REQUEST');
      }
    });

    it('overwrites: the new body replaces the old, size and all', async function () {
      await store.put('locks/backup-1', Buffer.from('a much longer first body'));
      await store.put('locks/backup-1', Buffer.from('short'));
      expect((await store.get('locks/backup-1'))!.toString()).to.equal('short');
      const [obj] = await store.list('locks/');
      expect(obj.key).to.equal('locks/backup-1');
      expect(obj.size).to.equal(5);
    });

    it('lists by prefix, in key order, with sizes and times', async function () {
      const before = Date.now();
      const keys = ['config', 'chunks/cd/cd56', 'chunks/ab/ab34', 'chunks/ab/ab12', 'checkpoints/20261202T101010Z-0a0b0c0d', 'locks/backup-00ff'];
      for (const k of keys) await store.put(k, Buffer.alloc(k.length, 7));
      const all = await store.list('');
      expect(all.map((o) => o.key)).to.deep.equal([...keys].sort());
      for (const o of all) {
        expect(o.size, o.key).to.equal(o.key.length);
        // Store clocks (S3 LastModified: whole seconds) may be a little behind ours.
        expect(o.modifiedMs, o.key).to.be.within(before - 5000, Date.now() + 5000);
      }
      expect((await store.list('chunks/')).map((o) => o.key)).to.deep.equal(['chunks/ab/ab12', 'chunks/ab/ab34', 'chunks/cd/cd56']);
      expect((await store.list('chunks/ab')).map((o) => o.key)).to.deep.equal(['chunks/ab/ab12', 'chunks/ab/ab34']);
      expect((await store.list('chunks/ab/ab3')).map((o) => o.key)).to.deep.equal(['chunks/ab/ab34']);
      expect((await store.list('check')).map((o) => o.key)).to.deep.equal(['checkpoints/20261202T101010Z-0a0b0c0d']);
      expect(await store.list('nothing/')).to.deep.equal([]);
    });

    it('lists and deletes across pages and batches (s3: 7 keys a page and a batch here)', async function () {
      const keys = Array.from({ length: 45 }, (_, i) => `chunks/${(i % 7).toString(16).padStart(2, '0')}/k${String(i).padStart(5, '0')}`);
      await inParallel(keys, 8, (k) => store.put(k, Buffer.from(k)));
      await store.put('config', Buffer.from('{}'));
      const listed = (await store.list('chunks/')).map((o) => o.key);
      expect(listed).to.have.length(45);
      expect(listed).to.deep.equal([...keys].sort());
      await store.delete(keys);
      expect(await store.list('chunks/')).to.deep.equal([]);
      expect(await store.has('config')).to.equal(true);
    });

    it('deletes a batch where some keys are missing, and deletes nothing on []', async function () {
      await store.put('chunks/aa/a1', Buffer.from('1'));
      await store.put('chunks/aa/a2', Buffer.from('2'));
      await store.delete([]);
      await store.delete(['chunks/aa/a1', 'chunks/aa/never', 'checkpoints/never']);
      expect((await store.list('')).map((o) => o.key)).to.deep.equal(['chunks/aa/a2']);
      await store.delete(['chunks/aa/a1']); // twice is fine
    });

    it('shows a reader the old body or all of the new one while a put overwrites it', async function () {
      const old = Buffer.alloc(1024, 1);
      const next = binaryBody(8 * 1024 * 1024);
      await store.put('checkpoints/c1', old);
      let done = false;
      const writing = store.put('checkpoints/c1', next).finally(() => {
        done = true;
      });
      let reads = 0;
      while (!done) {
        const got = await store.get('checkpoints/c1');
        expect(got, 'never missing').to.not.equal(null);
        expect(got!.equals(old) || got!.equals(next), `read ${reads}: ${got!.length} bytes, neither body`).to.equal(true);
        reads++;
      }
      await writing;
      expect((await store.get('checkpoints/c1'))!.equals(next)).to.equal(true);
    });

    it('takes concurrent puts of one key (two backups uploading the same chunk): one whole object', async function () {
      const body = binaryBody(1024 * 1024);
      await Promise.all(Array.from({ length: 6 }, () => store.put('chunks/ee/ee01', body)));
      expect((await store.get('chunks/ee/ee01'))!.equals(body)).to.equal(true);
      expect((await store.list('')).map((o) => o.key)).to.deep.equal(['chunks/ee/ee01']);
    });

    it('writes an object in pieces (a pack as its chunks come): out of order and at once, unseen until committed, nothing left when aborted', async function () {
      const whole = binaryBody(3 * 1024 * 1024 + 123);
      const cuts = [0, 700_000, 1_500_000, 1_500_001, 2_900_000, whole.length];
      const w = store.create('packs/ab/piecewise');
      // The pieces in reverse order, all started before any settles; each caller's buffer is reused once its write settles.
      await Promise.all(cuts.slice(0, -1).map((at, i) => {
        const piece = Buffer.from(whole.subarray(at, cuts[i + 1]));
        return w.write(piece, at).then(() => piece.fill(0));
      }).reverse());
      expect(await store.get('packs/ab/piecewise'), 'not there before commit').to.equal(null);
      expect((await store.list('packs/')).map((o) => o.key), 'not listed before commit').to.deep.equal([]);
      await w.commit(whole.length);
      expect((await store.get('packs/ab/piecewise'))!.equals(whole)).to.equal(true);
      expect((await store.getRange('packs/ab/piecewise', 1_499_999, 3))!.equals(whole.subarray(1_499_999, 1_500_002))).to.equal(true);

      const dropped = store.create('packs/ab/dropped');
      await dropped.write(Buffer.from('half a pack'), 0);
      await dropped.abort();
      expect(await store.get('packs/ab/dropped')).to.equal(null);
      expect((await store.list('packs/')).map((o) => o.key)).to.deep.equal(['packs/ab/piecewise']);
      // Committing a size other than what was written is refused, and stores nothing.
      const short = store.create('packs/ab/short');
      await short.write(Buffer.from('12345'), 0);
      expect((await rejection(short.commit(9))).code).to.equal('INTERNAL');
      expect(await store.get('packs/ab/short')).to.equal(null);
      // On disk: no temporary file left behind by the abort or the refused commit, no staged copy held open.
      if (store instanceof FileStore) expect(readdirSync(join(store.root, 'packs/ab'))).to.deep.equal(['piecewise']);
      expect(stagedFds()).to.deep.equal([]);
    });

    it('refuses keys that could leave the bank: INVALID_REQUEST', async function () {
      for (const k of ['', '/config', 'chunks//x', '../config', 'chunks/../../etc', 'a b', 'chunks/x/']) {
        const err = await rejection(store.put(k, Buffer.from('x')));
        expect(err.code, k).to.equal('INVALID_REQUEST');
      }
    });
  });
}

describe('bank: file:// store', function () {
  let dir: string;
  before(function () {
    dir = makeTempDir('bank-file');
  });
  after(function () {
    cleanupDir(dir);
  });

  let n = 0;
  storeContract({
    name: 'file://',
    async fresh() {
      const root = join(dir, `bank-${n++}`);
      mkdirSync(root);
      return openStore({ url: `file://${root}` });
    },
  });

  describe('file:// faults and atomicity', function () {
    before(function () {
      requireRootAndTools('mount', 'umount'); // read-only bind mounts and a small tmpfs
    });

    it('leaves no partial object when the writing process is killed mid-put', async function () {
      const root = join(dir, 'killed');
      mkdirSync(root);
      const store = new FileStore(root);
      const old = Buffer.from('the old manifest');
      await store.put('checkpoints/c1', old);
      // A child process overwrites the key with 256 MiB; it is killed once its temp file shows.
      const module = resolve(__dirname, '../../src/bank/file-store.js');
      const child = spawn(process.execPath, ['-e', `new (require(${JSON.stringify(module)}).FileStore)(${JSON.stringify(root)}).put('checkpoints/c1', Buffer.allocUnsafe(256 * 1024 * 1024))`], { stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      const deadline = Date.now() + 20_000;
      while (!readdirSync(join(root, 'checkpoints')).some((f) => f.includes('.tmp-'))) {
        if (Date.now() > deadline) throw new Error('the child never started writing');
        await new Promise((r) => setTimeout(r, 2));
      }
      child.kill('SIGKILL');
      await exited;
      const got = await store.get('checkpoints/c1');
      // The kill lands while the temp file is written: the old body stays (or, were the child that fast, all of the new).
      expect(got!.equals(old) || got!.length === 256 * 1024 * 1024, `${got?.length} bytes`).to.equal(true);
      // The leftover temp file is never listed as an object.
      expect((await store.list('')).map((o) => o.key)).to.deep.equal(['checkpoints/c1']);
    });

    it('names a missing root: BANK_UNAVAILABLE for get, has, list and put; never creates it', async function () {
      const gone = join(dir, 'not-mounted');
      const store = openStore({ url: `file://${gone}` });
      for (const call of [() => store.get('config'), () => store.has('config'), () => store.list('chunks/'), () => store.put('config', Buffer.from('{}'))]) {
        const err = await rejection(call());
        expect(err.code).to.equal('BANK_UNAVAILABLE');
        expect(err.message).to.include(`file://${gone}`).and.include('does not exist').and.include('mounted');
      }
      expect(existsSync(gone)).to.equal(false);
    });

    it('refuses writes on a read-only directory: BANK_READ_ONLY, reads still work', async function () {
      const root = join(dir, 'ro');
      mkdirSync(root);
      const rw = new FileStore(root);
      await rw.put('config', Buffer.from('{"format":"ferry-bank"}'));
      // As root, permission bits do not stop writes: a read-only bind mount does.
      sh(['mount', '--bind', root, root]);
      try {
        sh(['mount', '-o', 'remount,ro,bind', root]);
        const store = openStore({ url: `file://${root}` });
        for (const call of [() => store.put('chunks/ab/ab12', Buffer.from('x')), () => store.put('config', Buffer.from('{}')), () => store.delete(['config'])]) {
          const err = await rejection(call());
          expect(err.code).to.equal('BANK_READ_ONLY');
          expect(err.message).to.include(`file://${root}`).and.include('--read-only');
        }
        expect((await store.get('config'))!.toString()).to.equal('{"format":"ferry-bank"}');
        expect((await store.list('')).map((o) => o.key)).to.deep.equal(['config']);
      } finally {
        sh(['umount', root]);
      }
    });

    it('says "full" when the filesystem is (ENOSPC), leaving neither object nor temp file', async function () {
      const root = join(dir, 'small');
      mkdirSync(root);
      sh(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'ferry-test-bank', root]);
      try {
        const store = openStore({ url: `file://${root}` });
        const err = await rejection(store.put('chunks/ab/ab12', Buffer.alloc(2 * 1024 * 1024, 1)));
        expect(err.code).to.equal('BANK_UNAVAILABLE');
        expect(err.message).to.include(`bank file://${root} is full`);
        expect(await store.has('chunks/ab/ab12')).to.equal(false);
        expect(readdirSync(join(root, 'chunks/ab'))).to.deep.equal([]);
      } finally {
        sh(['umount', root]);
      }
    });
  });
});

describe('bank: s3:// store on OpenStack Swift (s3api)', function () {
  let swift: SwiftAio;
  before(async function () {
    swift = await swiftAio(this);
    console.log(`    (Swift all-in-one ready in ${swift.startSeconds.toFixed(1)} s at ${swift.endpoint})`);
  });

  storeContract({
    name: 's3:// (Swift s3api)',
    // Small pages and delete batches, so that paging and batching run on a few dozen keys: the
    // store follows the server's continuation tokens whatever the page size (S3's limit is 1000).
    fresh: async () => {
      const loc = await swift.bank();
      const parsed = parseBankUrl(loc.url) as { bucket: string; prefix: string; url: string };
      return new S3Store({ ...loc, ...parsed, listPageSize: 7, deleteBatch: 7 });
    },
  });

  describe('s3:// faults', function () {
    it('keeps banks under different prefixes of one bucket apart', async function () {
      const loc = await swift.bank('one');
      const one = openStore(loc);
      const two = openStore({ ...loc, url: loc.url.replace(/one$/, 'two') });
      await one.put('config', Buffer.from('1'));
      await two.put('config', Buffer.from('2'));
      expect((await one.list('')).map((o) => o.key)).to.deep.equal(['config']);
      expect((await two.get('config'))!.toString()).to.equal('2');
      await one.delete(['config']);
      expect(await two.has('config')).to.equal(true);
    });

    it('refuses a wrong secret with the credentials message, never showing a key', async function () {
      const loc = await swift.bank();
      const store = openStore({ ...loc, secretKey: 'not-the-secret' });
      for (const call of [() => store.get('config'), () => store.put('config', Buffer.from('{}')), () => store.list('')]) {
        const err = await rejection(call());
        expect(err.code).to.equal('BANK_UNAVAILABLE');
        expect(err.message).to.include(loc.url).and.include('refused the credentials').and.include('--secret-key-file');
        expect(err.message).to.not.include('not-the-secret').and.not.include(loc.accessKey!);
      }
    });

    it('names a bucket that does not exist', async function () {
      const loc = await swift.bank();
      const store = openStore({ ...loc, url: 's3://ferry-no-such-bucket/bank' });
      for (const call of [() => store.get('config'), () => store.has('config'), () => store.put('config', Buffer.from('{}'))]) {
        const err = await rejection(call());
        expect(err.code).to.equal('BANK_UNAVAILABLE');
        expect(err.message).to.include('the bucket ferry-no-such-bucket does not exist');
      }
    });

    it('fails within seconds, naming the bank and endpoint, while Swift is stopped; works again once it is back', async function () {
      const loc = await swift.bank();
      const store = openStore(loc);
      await store.put('config', Buffer.from('kept'));
      await swift.stop(['proxy']);
      try {
        for (const call of [() => store.get('config'), () => store.put('chunks/ab/ab12', Buffer.from('x')), () => store.list('chunks/')]) {
          const began = Date.now();
          const err = await rejection(call());
          expect(Date.now() - began, 'ms to fail').to.be.below(10_000);
          expect(err.code).to.equal('BANK_UNAVAILABLE');
          expect(err.message).to.equal(`cannot reach bank ${loc.url} at ${loc.endpoint} (ECONNREFUSED): check the endpoint and that the store is up`);
        }
      } finally {
        await swift.start();
      }
      console.log(`    (Swift restarted in ${swift.startSeconds.toFixed(1)} s)`);
      expect((await store.get('config'))!.toString()).to.equal('kept');
    });
  });
});

describe('bank: s3:// store timeouts', function () {
  it('gives up on a store that accepts connections and never answers (BANK_UNAVAILABLE, bounded retries)', async function () {
    const sockets: Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const store = new S3Store({ bucket: 'b', prefix: 'p', url: 's3://b/p', endpoint: `http://127.0.0.1:${port}`, accessKey: 'a', secretKey: 's', idleTimeoutMs: 300, requestTimeoutMs: 300 });
      const began = Date.now();
      const err = await rejection(store.get('config'));
      expect(err.code).to.equal('BANK_UNAVAILABLE');
      expect(err.message).to.include('cannot reach bank s3://b/p at http://127.0.0.1:').and.include('check the endpoint');
      expect(Date.now() - began).to.be.below(10_000);
      // Three attempts, each on its own connection: the SDK's retries, no more.
      expect(sockets.length).to.be.within(1, 3);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe('bank: s3:// store error messages (a scripted S3 endpoint)', function () {
  // What real stores answer that Swift here cannot be made to: each row, one status and S3 error code.
  const rows: Array<{ status: number; code: string; op: 'get' | 'put' | 'delete'; want: string; says: string }> = [
    { status: 507, code: 'InsufficientStorage', op: 'put', want: 'BANK_UNAVAILABLE', says: 'is full (InsufficientStorage on put config)' },
    { status: 403, code: 'QuotaExceeded', op: 'put', want: 'BANK_UNAVAILABLE', says: 'is full' },
    { status: 400, code: 'EntityTooLarge', op: 'put', want: 'BANK_UNAVAILABLE', says: 'is full' },
    { status: 403, code: 'AccessDenied', op: 'put', want: 'BANK_READ_ONLY', says: 'refuses writes (AccessDenied on put config)' },
    { status: 403, code: 'AccessDenied', op: 'delete', want: 'BANK_READ_ONLY', says: 'or add the bank with --read-only' },
    { status: 403, code: 'AccessDenied', op: 'get', want: 'BANK_UNAVAILABLE', says: 'refused the credentials (AccessDenied on get config)' },
    { status: 403, code: 'InvalidAccessKeyId', op: 'put', want: 'BANK_UNAVAILABLE', says: '--access-key-file and --secret-key-file' },
    { status: 404, code: 'NoSuchBucket', op: 'get', want: 'BANK_UNAVAILABLE', says: 'the bucket bucket does not exist' },
    { status: 500, code: 'InternalError', op: 'get', want: 'BANK_UNAVAILABLE', says: 'failed get config (HTTP 500: InternalError' },
  ];
  for (const r of rows) {
    it(`${r.op} answered ${r.status} ${r.code} → ${r.want}: "${r.says}"`, async function () {
      let requests = 0;
      const server = createHttpServer((req, res) => {
        requests++;
        req.resume();
        req.on('end', () => {
          res.writeHead(r.status, { 'content-type': 'application/xml' });
          res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${r.code}</Code><Message>scripted</Message><RequestId>1</RequestId></Error>`);
        });
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      const port = (server.address() as { port: number }).port;
      try {
        const store = openStore({ url: 's3://bucket/p', endpoint: `http://127.0.0.1:${port}`, accessKey: 'AKIDEXAMPLE', secretKey: 'scripted-secret' });
        const call = r.op === 'get' ? store.get('config') : r.op === 'put' ? store.put('config', Buffer.from('{}')) : store.delete(['config']);
        const err = await rejection(call);
        expect(err.code).to.equal(r.want);
        expect(err.message).to.include(r.says).and.include(`http://127.0.0.1:${port}`);
        expect(err.message).to.not.include('scripted-secret').and.not.include('AKIDEXAMPLE');
        expect(requests, 'attempts').to.be.within(1, 3);
      } finally {
        server.close();
      }
    });
  }
});

describe('bank: s3:// packs staged on disk and streamed (a scripted S3 endpoint)', function () {
  /** An endpoint that answers each PUT with the next status of `script` (200 once it runs out), keeping the bodies. */
  async function scripted(script: Array<{ status: number; code: string }>): Promise<{ port: number; bodies: Buffer[]; close(): void }> {
    const bodies: Buffer[] = [];
    const server = createHttpServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        bodies.push(Buffer.concat(parts));
        const next = script.shift();
        if (!next) {
          res.writeHead(200, { etag: '"x"' });
          res.end();
          return;
        }
        res.writeHead(next.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${next.code}</Code><Message>scripted</Message><RequestId>1</RequestId></Error>`);
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    return { port: (server.address() as { port: number }).port, bodies, close: () => server.close() };
  }

  let spool: string;
  before(function () {
    spool = makeTempDir('bank-spool');
  });
  after(function () {
    cleanupDir(spool);
  });

  const pack = (n: number): Buffer => randomBytes(n);
  /** Writes `whole` in three pieces, last first, and commits it. */
  async function writePack(store: BankStore, whole: Buffer): Promise<void> {
    const w = store.create('packs/ab/staged');
    const cuts = [0, 1000, 2 * 1024 * 1024, whole.length];
    for (let i = cuts.length - 2; i >= 0; i--) await w.write(whole.subarray(cuts[i], cuts[i + 1]), cuts[i]);
    await w.commit(whole.length);
  }

  it('sends a pack again, whole, after a 503 (the SDK retries no streamed body): the staged copy is read afresh', async function () {
    const ep = await scripted([{ status: 503, code: 'SlowDown' }, { status: 500, code: 'InternalError' }]);
    try {
      const store = openStore({ url: 's3://bucket/p', endpoint: `http://127.0.0.1:${ep.port}`, accessKey: 'AKIDEXAMPLE', secretKey: 'scripted-secret' }, { spoolDir: spool });
      const whole = pack(5 * 1024 * 1024 + 17);
      await writePack(store, whole);
      expect(ep.bodies.length, 'attempts').to.equal(3);
      for (const b of ep.bodies) expect(b.equals(whole), 'each attempt sent the whole pack').to.equal(true);
      expect(readdirSync(spool), 'the staged file is unlinked as soon as it is open').to.deep.equal([]);
      expect(stagedFds()).to.deep.equal([]);
    } finally {
      ep.close();
    }
  });

  it('gives up after 3 attempts (BANK_UNAVAILABLE naming the bank), and at once on a refusal (BANK_READ_ONLY): nothing staged is left', async function () {
    const busy = await scripted([0, 1, 2, 3].map(() => ({ status: 503, code: 'ServiceUnavailable' })));
    const refused = await scripted([{ status: 403, code: 'AccessDenied' }]);
    try {
      const open = (port: number): BankStore => openStore({ url: 's3://bucket/p', endpoint: `http://127.0.0.1:${port}`, accessKey: 'AKIDEXAMPLE', secretKey: 'scripted-secret' }, { spoolDir: spool });
      const err = await rejection(writePack(open(busy.port), pack(3 * 1024 * 1024)));
      expect(err.code).to.equal('BANK_UNAVAILABLE');
      expect(err.message).to.include('bank s3://bucket/p at http://127.0.0.1:').and.include('failed put packs/ab/staged (HTTP 503');
      expect(busy.bodies.length, 'attempts').to.equal(3);
      const ro = await rejection(writePack(open(refused.port), pack(3 * 1024 * 1024)));
      expect(ro.code).to.equal('BANK_READ_ONLY');
      expect(refused.bodies.length, 'attempts').to.equal(1);
      expect(stagedFds()).to.deep.equal([]);
    } finally {
      busy.close();
      refused.close();
    }
  });

  it('says where it could not stage a pack, and what to do', async function () {
    const file = join(spool, 'not-a-dir');
    mkdirSync(spool, { recursive: true });
    writeFileSync(file, 'x');
    const store = openStore({ url: 's3://bucket/p', endpoint: 'http://127.0.0.1:9', accessKey: 'a', secretKey: 's' }, { spoolDir: join(file, 'spool') });
    const err = await rejection(store.create('packs/ab/x').write(Buffer.from('x'), 0));
    expect(err.code).to.equal('BACKEND_UNAVAILABLE');
    expect(err.message).to.include(`cannot stage object packs/ab/x of bank s3://bucket/p in ${join(file, 'spool')} (ENOTDIR)`).and.include('free space there or make it writable');
  });
});

describe('bank: openStore URLs', function () {
  const good: Array<[string, string]> = [
    ['file:///srv/bank', 'file:///srv/bank'],
    ['file:///srv/bank/', 'file:///srv/bank'],
    ['file://localhost/srv/x/../bank', 'file:///srv/bank'],
  ];
  for (const [url, want] of good) {
    it(`opens ${url} as ${want}`, function () {
      expect(openStore({ url }).url).to.equal(want);
    });
  }
  const bad: Array<[string, string]> = [
    ['/srv/bank', 'is not a URL'],
    ['file://nas/srv/bank', 'names host nas'],
    ['file:///', 'root directory'],
    ['file:///srv/bank?x=1', 'query'],
    ['http://example.com/bank', 'scheme http'],
    ['s3:///prefix', 'no bucket'],
    ['s3://bu cket/x', 'not a URL'],
    ['s3://bucket:9000/x', 'has a port'],
    ['s3://bucket/a b', 'prefix'],
    ['s3://AKIAXXXX:hunter2@bucket/x', 'holds credentials'],
  ];
  for (const [url, why] of bad) {
    it(`refuses ${url}: INVALID_REQUEST (${why})`, function () {
      let err: unknown;
      try {
        openStore({ url });
      } catch (e) {
        err = e;
      }
      expect(isFerryError(err, 'INVALID_REQUEST'), String(err)).to.equal(true);
      expect((err as Error).message).to.include(why).and.include('file:///absolute/path');
      expect((err as Error).message).to.not.include('hunter2');
    });
  }
  it('opens s3://bucket/prefix with an endpoint, normalising the prefix', function () {
    expect(openStore({ url: 's3://bucket//a/b/', endpoint: 'http://127.0.0.1:8080' }).url).to.equal('s3://bucket/a/b');
    expect(openStore({ url: 's3://bucket' }).url).to.equal('s3://bucket');
  });
  it('refuses an endpoint that is not http(s), and one key file without the other', function () {
    expect(() => openStore({ url: 's3://bucket/p', endpoint: 'ftp://x' })).to.throw(/not an http/);
    let message = '';
    try {
      openStore({ url: 's3://bucket/p', endpoint: 'http://u:secretpw@x' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.include('not an http').and.not.include('secretpw');
    expect(() => openStore({ url: 's3://bucket/p', accessKey: 'a' })).to.throw(/only one of/);
  });
  it('refuses an endpoint or key files on a file:// bank', function () {
    expect(() => openStore({ url: 'file:///srv/bank', endpoint: 'http://127.0.0.1:9000' })).to.throw(/s3:\/\/ banks only/);
  });
});
