import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KIND_DATA,
  KIND_END,
  KIND_ZERO,
  applyBlockDiff,
  chunksOf,
  decodeBlockDiff,
  diffChunk,
  encodeBlockDiff,
  encodeHeader,
  encodeRecordHead,
} from '../../../../src/agent/backends/loop/block-stream';
import { isFerryError } from '../../../../src/errors';

const PAGE = 4096;
const CHUNK = 64 * 1024;

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of gen) parts.push(b);
  return Buffer.concat(parts);
}

async function* chunks(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** A sparse file of `size` bytes. */
function sparseFile(file: string, size: number): void {
  writeFileSync(file, '');
  truncateSync(file, size);
}

/** Writes `data` at `offset` into the existing `file`. */
function writeAt(file: string, offset: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

async function receiveInto(target: string, stream: Buffer, chunkSize = 1000): Promise<void> {
  const fh = await open(target, 'r+');
  try {
    await applyBlockDiff(fh, chunks(stream, chunkSize));
  } finally {
    await fh.close();
  }
}

describe('loop block stream', function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'ferry-unit-blocks-'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('diffChunk', function () {
    const cases: [string, (a: Buffer) => void, { kind: number; start: number; end: number }[]][] = [
      ['nothing changed', () => undefined, []],
      ['one byte in page 1', (a) => (a[PAGE + 5] = 1), [{ kind: KIND_DATA, start: PAGE, end: 2 * PAGE }]],
      ['pages 0 and 1 join in one run', (a) => ((a[0] = 1), (a[PAGE] = 1)), [{ kind: KIND_DATA, start: 0, end: 2 * PAGE }]],
      ['pages 0 and 2 are two runs', (a) => ((a[0] = 1), (a[2 * PAGE] = 1)), [
        { kind: KIND_DATA, start: 0, end: PAGE },
        { kind: KIND_DATA, start: 2 * PAGE, end: 3 * PAGE },
      ]],
    ];
    for (const [label, change, want] of cases) {
      it(label, function () {
        const prev = Buffer.alloc(4 * PAGE, 0);
        const next = Buffer.from(prev);
        change(next);
        expect(diffChunk(next, prev, next.length, PAGE)).to.deep.equal(want);
      });
    }

    it('marks a page that became zero as ZERO, and handles a short last chunk', function () {
      const prev = Buffer.alloc(4 * PAGE, 9);
      const next = Buffer.from(prev);
      next.fill(0, PAGE, 2 * PAGE);
      next[2 * PAGE] = 1;
      expect(diffChunk(next, prev, 2 * PAGE + 10, PAGE)).to.deep.equal([
        { kind: KIND_ZERO, start: PAGE, end: 2 * PAGE },
        { kind: KIND_DATA, start: 2 * PAGE, end: 2 * PAGE + 10 },
      ]);
    });
  });

  it('cuts ranges into chunks, clipped to the image size', function () {
    expect([...chunksOf([[0, 10], [20, 45]], 40, 8)]).to.deep.equal([[0, 8], [8, 2], [20, 8], [28, 8], [36, 4]]);
  });

  it('reads only the given ranges', async function () {
    const image = join(dir, 'a.img');
    sparseFile(image, 8 * CHUNK);
    writeAt(image, CHUNK, randomBytes(PAGE));
    writeAt(image, 5 * CHUNK, randomBytes(PAGE));
    const events = [];
    const stream = await collect(encodeBlockDiff(image, undefined, { chunkBytes: CHUNK, ranges: [[5 * CHUNK, 6 * CHUNK]] }));
    for await (const ev of decodeBlockDiff(chunks(stream, 4096))) if (ev.type !== 'header') events.push(ev.offset);
    expect(events).to.deep.equal([5 * CHUNK]);
  });

  it('reads sizes it is given (a block device stats as 0 bytes) and writes into a fixed-size target', async function () {
    const image = join(dir, 'a.img');
    sparseFile(image, 4 * CHUNK);
    writeAt(image, 3 * CHUNK, randomBytes(PAGE));
    // Told the image is 2 chunks: the data beyond is not read.
    const short = await collect(encodeBlockDiff(image, undefined, { chunkBytes: CHUNK, imageBytes: 2 * CHUNK }));
    let header: { imageBytes: number } | undefined;
    const offsets: number[] = [];
    for await (const ev of decodeBlockDiff(chunks(short, 4096))) if (ev.type === 'header') header = ev; else offsets.push(ev.offset);
    expect(header?.imageBytes).to.equal(2 * CHUNK);
    expect(offsets).to.deep.equal([]);
    // A target of a fixed size (deviceBytes): not resized; a stream of another size is refused.
    const full = await collect(encodeBlockDiff(image, undefined, { chunkBytes: CHUNK, imageBytes: 4 * CHUNK }));
    const target = join(dir, 'dev.img');
    sparseFile(target, 4 * CHUNK);
    const fh = await open(target, 'r+');
    try {
      await applyBlockDiff(fh, chunks(full, 1000), 4 * CHUNK);
      const err = await applyBlockDiff(fh, chunks(short, 1000), 4 * CHUNK).catch((e: unknown) => e);
      expect(isFerryError(err, 'STREAM_CORRUPT'), String(err)).to.equal(true);
    } finally {
      await fh.close();
    }
    expect(readFileSync(target).equals(readFileSync(image))).to.equal(true);
  });

  it('sends only non-zero pages of a sparse image and rebuilds it exactly', async function () {
    const image = join(dir, 'a.img');
    const size = 10 * CHUNK + 123; // not a multiple of anything
    const data = randomBytes(3 * PAGE);
    sparseFile(image, size);
    writeAt(image, 5 * CHUNK + 100, data);
    writeAt(image, size - 50, randomBytes(50));
    const stream = await collect(encodeBlockDiff(image, undefined, { chunkBytes: CHUNK }));
    expect(stream.length).to.be.below(5 * PAGE + 200);
    const copy = join(dir, 'copy.img');
    writeFileSync(copy, '');
    await receiveInto(copy, stream);
    expect(statSync(copy).size).to.equal(size);
    expect(readFileSync(copy).equals(readFileSync(image))).to.equal(true);
  });

  it('sends only the pages that differ from the base, including pages that became zero', async function () {
    const base = join(dir, 'base.img');
    const next = join(dir, 'next.img');
    const content = randomBytes(8 * CHUNK);
    writeFileSync(base, content);
    const changed = Buffer.from(content);
    changed[3 * CHUNK + 7] ^= 0xff;
    changed.fill(0, 6 * CHUNK, 6 * CHUNK + 2 * PAGE);
    writeFileSync(next, Buffer.concat([changed, randomBytes(PAGE)])); // and it grew by a page
    const stream = await collect(encodeBlockDiff(next, base, { chunkBytes: CHUNK }));
    expect(stream.length).to.be.below(2 * PAGE + 200);
    const events = [];
    for await (const ev of decodeBlockDiff(chunks(stream, 77))) events.push(ev.type === 'data' ? { ...ev, data: ev.data.length } : ev);
    expect(events).to.deep.equal([
      { type: 'header', imageBytes: 8 * CHUNK + PAGE, pageBytes: PAGE },
      { type: 'data', offset: 3 * CHUNK, data: PAGE },
      { type: 'zero', offset: 6 * CHUNK, length: 2 * PAGE },
      { type: 'data', offset: 8 * CHUNK, data: PAGE },
    ]);
    const copy = join(dir, 'copy.img');
    writeFileSync(copy, content);
    await receiveInto(copy, stream);
    expect(readFileSync(copy).equals(readFileSync(next))).to.equal(true);
  });

  it('shrinks the target when the image is smaller than the base', async function () {
    const base = join(dir, 'base.img');
    const next = join(dir, 'next.img');
    writeFileSync(base, randomBytes(4 * PAGE));
    writeFileSync(next, readFileSync(base).subarray(0, 2 * PAGE));
    const stream = await collect(encodeBlockDiff(next, base, { chunkBytes: CHUNK }));
    const copy = join(dir, 'copy.img');
    writeFileSync(copy, readFileSync(base));
    await receiveInto(copy, stream);
    expect(readFileSync(copy).equals(readFileSync(next))).to.equal(true);
  });

  const header = encodeHeader(8 * PAGE, PAGE);
  const end = encodeRecordHead(KIND_END, 0, 0);
  const data = (offset: number, len: number) => Buffer.concat([encodeRecordHead(KIND_DATA, offset, len), Buffer.alloc(len, 1)]);
  const bad: [string, Buffer][] = [
    ['an empty stream', Buffer.alloc(0)],
    ['a foreign stream', Buffer.from('not a block stream at all, no')],
    ['no end record', Buffer.concat([header, data(0, PAGE)])],
    ['a cut record', Buffer.concat([header, data(0, PAGE)]).subarray(0, header.length + 100)],
    ['a record past the image end', Buffer.concat([header, data(8 * PAGE - 10, 20), end])],
    ['records out of order', Buffer.concat([header, data(PAGE, 10), data(0, 10), end])],
    ['an unknown record kind', Buffer.concat([header, encodeRecordHead(7, 0, 1), end])],
    ['data after the end record', Buffer.concat([header, end, Buffer.from('x')])],
  ];
  for (const [label, stream] of bad) {
    it(`refuses ${label} with STREAM_CORRUPT`, async function () {
      try {
        for await (const _ of decodeBlockDiff(chunks(stream, 5))) void _;
        expect.fail('decoded a bad stream');
      } catch (err) {
        expect(isFerryError(err, 'STREAM_CORRUPT'), String(err)).to.equal(true);
      }
    });
  }
});
