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
 * A streaming FastCDC cutter. Bytes are copied once into a buffer of `max` bytes; each push scans
 * what it added (never rescanning), so a cut is found at the same place however the stream is split.
 */
export class GearChunker implements ChunkCutter {
  private readonly gear: Int32Array;
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;
  private readonly buf: Buffer;
  /** Bytes pending in `buf` (the current chunk so far). */
  private fill = 0;
  /** Next position of `buf` to hash; the hash starts at `min` (nothing is cut before it). */
  private scan: number;
  private hash = 0;

  constructor(gear: Int32Array, params: ChunkerParams = DEFAULT_CHUNKER) {
    checkChunkerParams(params);
    this.gear = gear;
    this.min = params.min;
    this.avg = params.avg;
    this.max = params.max;
    const bits = Math.round(Math.log2(params.avg));
    this.maskS = topMask(bits + 2);
    this.maskL = topMask(bits - 2);
    this.buf = Buffer.allocUnsafe(params.max);
    this.scan = params.min;
  }

  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < data.length) {
      const n = Math.min(data.length - at, this.max - this.fill);
      data.copy(this.buf, this.fill, at, at + n);
      this.fill += n;
      at += n;
      // Each cut found frees room; cut again in what is already there before copying more.
      for (;;) {
        const cut = this.findCut();
        if (cut < 0) break;
        out.push(this.take(cut));
      }
    }
    return out;
  }

  end(): Buffer | null {
    if (this.fill === 0) return null;
    // push left no boundary in what is pending (it scanned all of it): the rest is one last chunk.
    return this.take(this.fill);
  }

  /** Scans from `scan` to `fill`; the cut position (chunk length) or -1 when none yet. */
  private findCut(): number {
    const fill = this.fill;
    if (fill < this.min) return -1;
    const buf = this.buf;
    const gear = this.gear;
    let h = this.hash;
    let i = this.scan;
    const endS = fill < this.avg ? fill : this.avg;
    const maskS = this.maskS;
    for (; i < endS; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskS) === 0) return i + 1;
    }
    const maskL = this.maskL;
    for (; i < fill; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskL) === 0) return i + 1;
    }
    this.hash = h;
    this.scan = i;
    return fill === this.max ? this.max : -1;
  }

  /** The first `len` pending bytes as a chunk of their own; the rest moves to the front. */
  private take(len: number): Buffer {
    const chunk = Buffer.allocUnsafe(len);
    this.buf.copy(chunk, 0, 0, len);
    if (len < this.fill) this.buf.copyWithin(0, len, this.fill);
    this.fill -= len;
    this.scan = this.min;
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
