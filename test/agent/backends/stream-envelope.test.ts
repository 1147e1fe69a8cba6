import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { unwrapStream, wrapStream } from '../../../src/agent/backends/stream-envelope';
import { isFerryError } from '../../../src/errors';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('stream envelope', function () {
  const data = [randomBytes(100_000), randomBytes(1), randomBytes(70_000)];
  const header = { backend: 'loop', snapshot: 's2', base: 's1' };

  async function wrapped(): Promise<Buffer> {
    return collect(wrapStream(Readable.from(data), header));
  }

  it('round-trips the body and the header, whatever the chunking', async function () {
    const w = await wrapped();
    for (const size of [1, 7, 4096, w.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < w.length; i += size) chunks.push(w.subarray(i, i + size));
      const { header: h, body } = unwrapStream(Readable.from(chunks));
      expect(await collect(body)).to.deep.equal(Buffer.concat(data));
      expect(await h).to.deep.equal(header);
    }
  });

  it('gathers small chunks into frames of about 512 KiB and still round-trips them', async function () {
    const chunks = Array.from({ length: 40 }, () => randomBytes(64 * 1024));
    const w = await collect(wrapStream(Readable.from(chunks), header));
    // Walk the frames: magic, header, then u32-length frames up to a zero length.
    let off = 8 + 4 + w.readUInt32BE(8);
    const frames: number[] = [];
    for (let n = w.readUInt32BE(off); n !== 0; n = w.readUInt32BE(off)) {
      frames.push(n);
      off += 4 + n;
    }
    expect(frames.length).to.be.within(5, 6);
    expect(frames.reduce((a, b) => a + b, 0)).to.equal(40 * 64 * 1024);
    const { body } = unwrapStream(Readable.from([w]));
    expect((await collect(body)).equals(Buffer.concat(chunks))).to.equal(true);
  });

  it('refuses at once a stream that failed before it was read (its error already emitted)', async function () {
    const gone = new Readable({ read() {} });
    gone.on('error', () => undefined);
    gone.destroy(new Error('the peer went away'));
    await new Promise((r) => setImmediate(r));
    const { header, body } = unwrapStream(gone);
    body.on('error', () => undefined);
    const err = await header.then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'STREAM_CORRUPT')).to.equal(true);
    expect(String(err)).to.match(/the peer went away/);
    expect(body.destroyed).to.equal(true);
  });

  const damage: [string, (b: Buffer) => Buffer][] = [
    ['cut short', (b) => b.subarray(0, b.length - 10)],
    ['cut in the middle', (b) => b.subarray(0, Math.floor(b.length / 2))],
    ['a flipped byte', (b) => { const c = Buffer.from(b); c[Math.floor(c.length / 2)] ^= 1; return c; }],
    ['not an envelope', () => Buffer.from('hello world, this is not a stream')],
    ['data after the end', (b) => Buffer.concat([b, Buffer.from('x')])],
  ];
  for (const [label, fn] of damage) {
    it(`refuses a stream with ${label} as STREAM_CORRUPT`, async function () {
      const { body } = unwrapStream(Readable.from([fn(await wrapped())]));
      try {
        await collect(body);
        expect.fail('damaged stream was accepted');
      } catch (err) {
        expect(isFerryError(err, 'STREAM_CORRUPT'), String(err)).to.equal(true);
      }
    });
  }
  it('refuses a stream whose source errors', async function () {
    const src = new Readable({ read() {} });
    const { body } = unwrapStream(src);
    src.push((await wrapped()).subarray(0, 1000));
    setImmediate(() => src.destroy(new Error('reset')));
    try {
      await collect(body);
      expect.fail('broken stream was accepted');
    } catch (err) {
      expect(String(err)).to.match(/broke off: reset/);
    }
  });
});
