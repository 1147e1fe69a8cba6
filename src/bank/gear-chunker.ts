/**
 * FastCDC with normalized chunking (Xia et al. 2016/2020): a content-defined chunker over one stream.
 * A boundary is cut after byte i (i counted from the chunk's start, i >= min) when the gear hash's
 * top bits are all zero: 22 bits (harder) before `avg`, 18 bits (easier) after it, so chunk sizes
 * gather around `avg`; a chunk never passes `max`. The gear table comes from the bank's gear key, so
 * boundaries differ per bank and reveal nothing to one without the key. Pure: no I/O.
 *
 * The gear hash `h = (h << 1) + G[byte]` on 32 bits depends on the last 32 bytes only, so after an
 * insert or a deletion the boundaries resync within one chunk.
 */
import { hkdfSync } from 'node:crypto';
import { FerryError } from '../errors';
import type { ChunkCutter } from './types';

/** The chunker's sizes in bytes, as a bank's config records them. */
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = { min: 262144, avg: 1048576, max: 4194304 };

/** The 256-entry gear table from the bank's gear key: HKDF-SHA256(gear key, '', 'ferry-bank gear table'), little-endian uint32s. */
export function gearTable(gearKey: Buffer): Int32Array {
  const bytes = Buffer.from(hkdfSync('sha256', gearKey, Buffer.alloc(0), Buffer.from('ferry-bank gear table', 'utf8'), 1024));
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = bytes.readInt32LE(i * 4);
  return table;
}

/** Masks of the top `bits` bits of a 32-bit hash (the bits that saw the most bytes). */
function topMask(bits: number): number {
  return (~0 << (32 - bits)) | 0;
}

/** INVALID_CONFIG unless min <= avg <= max, avg a power of two (its log2 sets the masks). */
export function checkChunkerParams(p: ChunkerParams): void {
  const ok = Number.isInteger(p.min) && Number.isInteger(p.avg) && Number.isInteger(p.max)
    && p.min >= 64 && p.min <= p.avg && p.avg <= p.max && (p.avg & (p.avg - 1)) === 0 && p.max <= 1 << 30;
  if (!ok) throw new FerryError('INVALID_CONFIG', `bank chunker sizes ${JSON.stringify(p)} are not usable: min <= avg <= max, avg a power of two`);
}

/**
 * A streaming FastCDC cutter. Bytes land once in a buffer of twice `max` bytes (copied by
 * pushViews, or read straight into space() and fed by commitViews); each call scans what it added
 * (never rescanning), so a cut is found at the same place however the stream is split. Chunks are
 * handed out as views of that buffer (no allocation per chunk); push copies them.
 */
export class GearChunker implements ChunkCutter {
  readonly maxChunk: number;
  private readonly gear: Int32Array;
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;
  private readonly buf: Buffer;
  /** The current chunk is buf[start, fill); views handed out lie before `start`. */
  private start = 0;
  private fill = 0;
  /** Next position of `buf` to hash; the hash starts `min` bytes into a chunk (nothing is cut before). */
  private scan: number;
  private hash = 0;

  constructor(gear: Int32Array, params: ChunkerParams = DEFAULT_CHUNKER) {
    checkChunkerParams(params);
    this.gear = gear;
    this.min = params.min;
    this.avg = params.avg;
    this.max = params.max;
    this.maxChunk = params.max;
    const bits = Math.round(Math.log2(params.avg));
    this.maskS = topMask(bits + 2);
    this.maskL = topMask(bits - 2);
    // Pending bytes stay under `max` between calls, and a call adds at most `max`.
    this.buf = Buffer.allocUnsafe(2 * params.max);
    this.scan = params.min;
  }

  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (let at = 0; at < data.length; at += this.max) {
      for (const view of this.pushViews(data.subarray(at, at + this.max))) out.push(Buffer.from(view));
    }
    return out;
  }

  end(): Buffer | null {
    const view = this.endView();
    return view && Buffer.from(view);
  }

  pushViews(data: Buffer): Buffer[] {
    if (data.length > this.max) throw new RangeError(`pushViews takes at most ${this.max} bytes at a time, not ${data.length}`);
    data.copy(this.space());
    return this.commitViews(data.length);
  }

  space(): Buffer {
    this.compact();
    // Pending bytes are fewer than `max` after compact, and buf holds 2 x max.
    return this.buf.subarray(this.fill, this.fill + this.max);
  }

  commitViews(n: number): Buffer[] {
    if (!Number.isInteger(n) || n < 0 || n > this.max || this.fill + n > this.buf.length) {
      throw new RangeError(`commitViews takes the 0..${this.max} bytes written into space(), not ${n}`);
    }
    this.fill += n;
    const out: Buffer[] = [];
    for (;;) {
      const cut = this.findCut();
      if (cut < 0) break;
      out.push(this.take(cut));
    }
    return out;
  }

  endView(): Buffer | null {
    this.compact();
    if (this.fill === 0) return null;
    // pushViews left no boundary in what is pending (it scanned all of it): the rest is one last chunk.
    return this.take(this.fill);
  }

  /** Moves the pending bytes to the front of `buf` (views handed out before are then stale). */
  private compact(): void {
    if (this.start === 0) return;
    this.buf.copyWithin(0, this.start, this.fill);
    this.fill -= this.start;
    this.scan -= this.start;
    this.start = 0;
  }

  /** Scans from `scan` on; the cut position (chunk length) or -1 when none yet. */
  private findCut(): number {
    const s = this.start;
    const len = this.fill - s;
    if (len < this.min) return -1;
    const buf = this.buf;
    const gear = this.gear;
    let h = this.hash;
    let i = this.scan;
    const endS = s + (len < this.avg ? len : this.avg);
    const maskS = this.maskS;
    for (; i < endS; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskS) === 0) return i + 1 - s;
    }
    const endL = s + (len < this.max ? len : this.max);
    const maskL = this.maskL;
    for (; i < endL; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskL) === 0) return i + 1 - s;
    }
    this.hash = h;
    this.scan = i;
    return len >= this.max ? this.max : -1;
  }

  /** The first `len` pending bytes as a chunk (a view of `buf`); the next chunk starts after them. */
  private take(len: number): Buffer {
    const chunk = this.buf.subarray(this.start, this.start + len);
    this.start += len;
    this.scan = this.start + this.min;
    this.hash = 0;
    return chunk;
  }
}

/** Cuts a whole buffer (tests, small streams): the chunks, in order. */
export function cutAll(cutter: ChunkCutter, data: Buffer): Buffer[] {
  const chunks = cutter.push(data);
  const last = cutter.end();
  if (last) chunks.push(last);
  return chunks;
}
