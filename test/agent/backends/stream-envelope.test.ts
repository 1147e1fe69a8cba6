import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { crc32Portable, ENVELOPE_FORMATS, envelopeFormat, unwrapStream, wrapStream } from '../../../src/agent/backends/stream-envelope';
import { CURRENT_ENVELOPE, ENVELOPE_VERSIONS, envelopeFor, envelopeScope } from '../../../src/stream/envelope-version';
import { isFerryError } from '../../../src/errors';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('stream envelope', function () {
  const data = [randomBytes(100_000), randomBytes(1), randomBytes(70_000)];
  const header = { backend: 'loop', snapshot: 's2', base: 's1' };

  async function wrapped(version = CURRENT_ENVELOPE): Promise<Buffer> {
    return collect(wrapStream(Readable.from(data), header, version));
  }

  it('writes format 2 (CRC-32 trailer) and reads formats 1 and 2', async function () {
    expect(CURRENT_ENVELOPE).to.equal(2);
    expect([...ENVELOPE_FORMATS.keys()]).to.deep.equal([...ENVELOPE_VERSIONS]);
    for (const v of [1, 2]) {
      const w = await wrapped(v);
      expect(w.subarray(0, 8).toString()).to.equal(`FERRYST${v}`);
      // magic, u32 header length, header, frames (u32 + bytes each), u32 0, checksum, u64 total
      const frames = w.length - 8 - 4 - w.readUInt32BE(8) - 4 - ENVELOPE_FORMATS.get(v)!.digestBytes - 8;
      expect(frames - 170_001).to.be.within(4, 4 * 3);
      const { header: h, body } = unwrapStream(Readable.from([w]));
      expect(await collect(body)).to.deep.equal(Buffer.concat(data));
      expect(await h).to.deep.equal(header);
    }
  });

  it("computes zlib's CRC-32 without zlib.crc32 too (Node 20 before 20.15), also carried across pieces", function () {
    expect(crc32Portable(Buffer.from('123456789'))).to.equal(0xcbf43926); // the check value of CRC-32/ISO-HDLC
    expect(crc32Portable(Buffer.alloc(0))).to.equal(0);
    for (const n of [1, 3, 1000, 70_001]) {
      const b = randomBytes(n);
      expect(crc32Portable(b)).to.equal(crc32(b));
      const cut = Math.floor(n / 3);
      expect(crc32Portable(b.subarray(cut), crc32Portable(b.subarray(0, cut)))).to.equal(crc32(b));
    }
  });

  const announced: [string | undefined, number | undefined][] = [
    [undefined, 1], // a ferry from before versions were named
    ['1', 1],
    ['1,2', 2],
    ['2,1', 2],
    ['1,2,3', 2], // a newer reader
    [' 2 ', 2],
    ['3,4', undefined],
    ['', undefined],
  ];
  for (const [a, want] of announced) {
    it(`writes version ${String(want)} for a reader that announced ${JSON.stringify(a)}`, function () {
      expect(envelopeFor(a)).to.equal(want);
    });
  }

  it('writes the version of the transfer under way (envelopeScope), else the newest', async function () {
    const magic = async (): Promise<string> => (await collect(wrapStream(Readable.from([Buffer.from('x')]), header))).subarray(0, 8).toString();
    expect(await magic()).to.equal('FERRYST2');
    expect(await envelopeScope.run(1, magic)).to.equal('FERRYST1');
  });

  const magics: [string, string | RegExp][] = [
    ['FERRYST1', 'sha256'],
    ['FERRYST2', 'crc32'],
    ['FERRYST3', /INVALID_REQUEST.*envelope format 3, and this host reads formats 1-2 only: upgrade ferry on this host/],
    ['FERRYSTx', /INVALID_REQUEST.*envelope format "x"/],
    ['FERRYS T', /STREAM_CORRUPT.*not a ferry dataset stream/],
    ['HTTP/1.1', /STREAM_CORRUPT.*not a ferry dataset stream/],
  ];
  for (const [magic, want] of magics) {
    it(`takes magic ${JSON.stringify(magic)} as ${String(want)}`, function () {
      if (typeof want === 'string') {
        expect(envelopeFormat(Buffer.from(magic)).checksum).to.equal(want);
        return;
      }
      try {
        envelopeFormat(Buffer.from(magic));
        expect.fail('accepted');
      } catch (err) {
        expect(`${(err as { code?: string }).code} ${(err as Error).message}`).to.match(want);
      }
    });
  }

  it('refuses a stream from a newer ferry with INVALID_REQUEST that says what to do, not as damage', async function () {
    const w = await wrapped();
    w.write('3', 7);
    const { header: h, body } = unwrapStream(Readable.from([w]));
    const err = await collect(body).then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'INVALID_REQUEST'), String(err)).to.equal(true);
    expect(String(err)).to.match(/upgrade ferry on this host/);
    expect(await h.then(() => undefined, (e: unknown) => e)).to.equal(err);
  });

  it('passes the body on in runs of at least 256 KiB until the frames end', async function () {
    const chunks = Array.from({ length: 64 }, () => randomBytes(32 * 1024));
    const w = await collect(wrapStream(Readable.from(chunks), header));
    // Fed as a transport does, 32 KiB per turn of the event loop: what comes out is gathered.
    const feed = new Readable({ read() {} });
    const { body } = unwrapStream(feed);
    const runs: number[] = [];
    let run = 0;
    body.on('data', (c: Buffer) => (run += c.length));
    for (let i = 0; i < w.length; i += 32 * 1024) {
      feed.push(w.subarray(i, i + 32 * 1024));
      await new Promise((r) => setImmediate(r));
      if (run > 0) runs.push(run);
      run = 0;
    }
    feed.push(null);
    await new Promise((r) => body.once('end', r));
    if (run > 0) runs.push(run);
    expect(runs.reduce((a, b) => a + b, 0)).to.equal(64 * 32 * 1024);
    for (const r of runs.slice(0, -1)) expect(r).to.be.at.least(256 * 1024);
  });

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
  for (const [label, fn] of damage) for (const v of [1, 2]) {
    it(`refuses a format ${v} stream with ${label} as STREAM_CORRUPT`, async function () {
      const { body } = unwrapStream(Readable.from([fn(await wrapped(v))]));
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
