/**
 * The loop backend's stream format: the blocks of an image that differ from a base image (or from
 * zeros, for a full stream). It travels inside the stream envelope, which checks the whole body.
 *
 *   header:  "FBLKDIF1" | u64 image bytes | u32 page bytes | u32 0
 *   records: u8 kind | u64 offset | u32 length | data (DATA only)
 *            DATA: these bytes at offset; ZERO: zeros at offset; END (offset 0, length 0): last record
 *
 * All integers big-endian. Images are read in CHUNK_BYTES pieces and compared page by page, so
 * memory stays bounded whatever the image size and a small change costs a few pages, not a chunk.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { FerryError } from '../../../errors';

const MAGIC = Buffer.from('FBLKDIF1');
const HEADER_BYTES = MAGIC.length + 8 + 4 + 4;
const RECORD_HEAD_BYTES = 1 + 8 + 4;

/** Record kinds (see the format above). */
export const KIND_DATA = 1;
export const KIND_ZERO = 2;
export const KIND_END = 0xff;

/** Unit of comparison: a changed byte costs one page in the stream. */
export const DEFAULT_PAGE_BYTES = 4096;
/** Unit of reading: memory use is a few of these. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Largest buffer the encoder yields (see encodeBlockDiff). */
const YIELD_BYTES = 128 * 1024;
/** Largest record a decoder accepts (the encoder never makes one above its chunk size). */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** Tuning of the encoder, in bytes. */
export interface BlockDiffOptions {
  pageBytes?: number;
  chunkBytes?: number;
  /**
   * The only [start, end) byte ranges that can differ (sorted, disjoint, page-aligned), from the
   * files' extent maps; outside them both sides are known equal. Default: the whole image.
   */
  ranges?: readonly (readonly [number, number])[];
  /** The image's size, for a block device (whose stat size is 0); default: the file's size. */
  imageBytes?: number;
  /** The base's size, likewise. */
  baseBytes?: number;
}

/** What a decoder reads, in stream order. */
export type BlockEvent =
  | { type: 'header'; imageBytes: number; pageBytes: number }
  | { type: 'data'; offset: number; data: Buffer }
  | { type: 'zero'; offset: number; length: number };

function corrupt(why: string): FerryError {
  return new FerryError('STREAM_CORRUPT', `loop image stream is damaged: ${why}; the transfer must be retried`);
}

/** Reads up to `length` bytes at `position` into `buf`, looping over short reads; returns bytes read. */
async function readFull(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** The stream header for an image of `imageBytes` compared in pages of `pageBytes`. */
export function encodeHeader(imageBytes: number, pageBytes: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h.writeBigUInt64BE(BigInt(imageBytes), MAGIC.length);
  h.writeUInt32BE(pageBytes, MAGIC.length + 8);
  return h;
}

/** A record's head (a DATA record's bytes follow it). Offsets and lengths in bytes. */
export function encodeRecordHead(kind: number, offset: number, length: number): Buffer {
  const r = Buffer.alloc(RECORD_HEAD_BYTES);
  r.writeUInt8(kind, 0);
  r.writeBigUInt64BE(BigInt(offset), 1);
  r.writeUInt32BE(length, 9);
  return r;
}

/**
 * The changed runs of one chunk: pages of `next` that differ from `prev`, grouped into runs of the
 * same kind (ZERO when the new bytes are all zero, DATA otherwise). `length` may be below the buffers'
 * size (the image's last chunk). Pure.
 */
export function diffChunk(next: Buffer, prev: Buffer, length: number, pageBytes: number): { kind: number; start: number; end: number }[] {
  const runs: { kind: number; start: number; end: number }[] = [];
  const zero = Buffer.alloc(pageBytes);
  let cur: { kind: number; start: number; end: number } | undefined;
  for (let p = 0; p < length; p += pageBytes) {
    const e = Math.min(p + pageBytes, length);
    const page = next.subarray(p, e);
    let kind = 0;
    if (!page.equals(prev.subarray(p, e))) kind = page.equals(zero.subarray(0, e - p)) ? KIND_ZERO : KIND_DATA;
    if (cur && cur.kind === kind) {
      cur.end = e;
      continue;
    }
    if (cur) runs.push(cur);
    cur = kind ? { kind, start: p, end: e } : undefined;
  }
  if (cur) runs.push(cur);
  return runs;
}

/** [offset, length] pieces of at most `chunkBytes` covering `ranges`, clipped to `size`. Pure. */
export function* chunksOf(ranges: readonly (readonly [number, number])[], size: number, chunkBytes: number): Generator<[number, number]> {
  for (const [start, end] of ranges) {
    const stop = Math.min(end, size);
    for (let off = start; off < stop; off += chunkBytes) yield [off, Math.min(chunkBytes, stop - off)];
  }
}

/**
 * Encodes `image` against `base` (an older copy of it), or against zeros when there is no base.
 * Yields buffers of at most YIELD_BYTES. Throws (rejects the iteration) on read errors.
 */
export async function* encodeBlockDiff(image: string, base: string | undefined, opts: BlockDiffOptions = {}): AsyncGenerator<Buffer> {
  const pageBytes = opts.pageBytes ?? DEFAULT_PAGE_BYTES;
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (chunkBytes % pageBytes !== 0) throw new FerryError('INTERNAL', 'chunk size must be a multiple of the page size');
  const fh = await open(image, 'r');
  const bh = base === undefined ? undefined : await open(base, 'r').catch(async (err: unknown) => {
    await fh.close();
    throw err;
  });
  try {
    const imageBytes = opts.imageBytes ?? (await fh.stat()).size;
    const baseBytes = bh ? (opts.baseBytes ?? (await bh.stat()).size) : 0;
    yield encodeHeader(imageBytes, pageBytes);
    const next = Buffer.alloc(chunkBytes);
    const prev = Buffer.alloc(chunkBytes);
    for (const [off, n] of chunksOf(opts.ranges ?? [[0, imageBytes]], imageBytes, chunkBytes)) {
      const got = await readFull(fh, next, n, off);
      if (got < n) throw new FerryError('INTERNAL', `image ${image} shrank while it was being read`);
      // Beyond the base's end (or with no base) the receiver's file reads as zeros.
      const baseGot = bh && off < baseBytes ? await readFull(bh, prev, n, off) : 0;
      prev.fill(0, baseGot, n);
      if (next.subarray(0, n).equals(prev.subarray(0, n))) continue;
      const parts: Buffer[] = [];
      for (const run of diffChunk(next, prev, n, pageBytes)) {
        parts.push(encodeRecordHead(run.kind, off + run.start, run.end - run.start));
        if (run.kind === KIND_DATA) parts.push(next.subarray(run.start, run.end));
      }
      // concat copies out of `next`, which the next chunk reuses. Pieces of at most YIELD_BYTES:
      // each becomes one envelope frame, and the receiver re-buffers a frame until it is whole.
      const out = Buffer.concat(parts);
      for (let i = 0; i < out.length; i += YIELD_BYTES) yield out.subarray(i, i + YIELD_BYTES);
    }
    yield encodeRecordHead(KIND_END, 0, 0);
  } finally {
    await fh.close();
    await bh?.close();
  }
}

/** A FIFO of buffers that hands out exact byte counts without re-concatenating everything. */
class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length) {
      this.parts.push(b);
      this.length += b.length;
    }
  }

  take(n: number): Buffer {
    const first = this.parts[0];
    if (first.length >= n) {
      this.parts[0] = first.subarray(n);
      if (this.parts[0].length === 0) this.parts.shift();
      this.length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const p = this.parts[0];
      const k = Math.min(p.length, n - filled);
      p.copy(out, filled, 0, k);
      filled += k;
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
    }
    this.length -= n;
    return out;
  }
}

/**
 * Decodes a block stream. Every record is checked against the header (in range, in order, not
 * oversized). The iteration ends only after the END record and the end of `source` with nothing
 * between them, so a consumer that finishes its loop has seen the whole, clean stream.
 * Throws STREAM_CORRUPT on anything else.
 */
export async function* decodeBlockDiff(source: AsyncIterable<Buffer>): AsyncGenerator<BlockEvent> {
  const it = source[Symbol.asyncIterator]();
  const q = new ByteQueue();
  const need = async (n: number): Promise<boolean> => {
    while (q.length < n) {
      const r = await it.next();
      if (r.done) return false;
      q.push(r.value);
    }
    return true;
  };
  if (!(await need(HEADER_BYTES))) throw corrupt('it ended before its header');
  const h = q.take(HEADER_BYTES);
  if (!h.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('it is not a loop image stream');
  const imageBytes = Number(h.readBigUInt64BE(MAGIC.length));
  const pageBytes = h.readUInt32BE(MAGIC.length + 8);
  if (!Number.isSafeInteger(imageBytes) || pageBytes === 0) throw corrupt('bad header');
  yield { type: 'header', imageBytes, pageBytes };
  let lastEnd = 0;
  for (;;) {
    if (!(await need(RECORD_HEAD_BYTES))) throw corrupt('it ended early');
    const r = q.take(RECORD_HEAD_BYTES);
    const kind = r.readUInt8(0);
    const offset = Number(r.readBigUInt64BE(1));
    const length = r.readUInt32BE(9);
    if (kind === KIND_END) {
      if (offset !== 0 || length !== 0) throw corrupt('bad end record');
      break;
    }
    if (kind !== KIND_DATA && kind !== KIND_ZERO) throw corrupt(`unknown record kind ${kind}`);
    if (length === 0 || length > MAX_RECORD_BYTES) throw corrupt('bad record length');
    if (offset < lastEnd || offset + length > imageBytes) throw corrupt('record out of range');
    lastEnd = offset + length;
    if (kind === KIND_ZERO) {
      yield { type: 'zero', offset, length };
      continue;
    }
    if (!(await need(length))) throw corrupt('it ended inside a record');
    yield { type: 'data', offset, data: q.take(length) };
  }
  if (q.length > 0) throw corrupt('data after the end record');
  // Drain the source: its end is where the envelope's trailer is checked.
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    if (r.value.length > 0) throw corrupt('data after the end record');
  }
}

/**
 * Applies a decoded block stream to `target` (a copy of the base image, or an empty file): sets the
 * image size, writes every record, and syncs. Returns the header. Throws STREAM_CORRUPT or I/O errors.
 * A block device cannot be resized: with `deviceBytes` the target is one of that size, and a stream
 * of another size is refused.
 */
export async function applyBlockDiff(target: FileHandle, source: AsyncIterable<Buffer>, deviceBytes?: number): Promise<{ imageBytes: number }> {
  let imageBytes = -1;
  const zeros = Buffer.alloc(DEFAULT_CHUNK_BYTES);
  for await (const ev of decodeBlockDiff(source)) {
    if (ev.type === 'header') {
      imageBytes = ev.imageBytes;
      if (deviceBytes === undefined) await target.truncate(imageBytes);
      else if (deviceBytes !== imageBytes) throw corrupt(`it holds ${imageBytes} bytes for a device of ${deviceBytes}`);
    } else if (ev.type === 'data') {
      await writeFull(target, ev.data, ev.offset);
    } else {
      for (let done = 0; done < ev.length; done += zeros.length) {
        await writeFull(target, zeros.subarray(0, Math.min(zeros.length, ev.length - done)), ev.offset + done);
      }
    }
  }
  await target.sync();
  return { imageBytes };
}

async function writeFull(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
