import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { FerryError } from '../../errors';
import { streamBuffers } from '../../stream/buffer-size';
import { CURRENT_ENVELOPE, envelopeScope } from '../../stream/envelope-version';

/**
 * Every dataset stream ferry sends travels in one envelope, whatever the backend's own format:
 *
 *   "FERRYST" version | u32 header length | header JSON | frames: u32 length, bytes | u32 0 | checksum | u64 total
 *
 * The receiver checks the trailer before it keeps anything, so a short, cut or corrupted stream is
 * refused by the same code for every backend. Format 1 closes with SHA-256 (32 bytes), format 2 with
 * CRC-32 (4 bytes): the envelope guards against cut, short and garbled streams (a broken spool file,
 * a framing bug, a disk), and CRC-32 with the byte count does that at a third of SHA-256's cost
 * (zlib's folded CRC, ~4 GiB/s against ~1.5 with SHA-NI), which a move pays on both hosts for every
 * byte. Tampering on the wire is the transport's to stop: ssh authenticates every packet (AES-GCM).
 * Hosts read both and write the newest their reader reads (src/stream/envelope-version.ts).
 */
const MAGIC_PREFIX = Buffer.from('FERRYST');
const MAX_HEADER = 64 * 1024;
const MAX_FRAME = 16 * 1024 * 1024;

/** A running checksum of a stream's body. */
interface Checksum {
  update(b: Buffer): void;
  digest(): Buffer;
}

/** An envelope format: how its trailer's checksum is made. */
export interface EnvelopeFormat {
  version: number;
  checksum: 'sha256' | 'crc32';
  /** Bytes of the checksum in the trailer. */
  digestBytes: number;
  start(): Checksum;
}

function sha256(): Checksum {
  const h = createHash('sha256');
  return { update: (b) => void h.update(b), digest: () => h.digest() };
}

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (IEEE, zlib's) a byte at a time: for Node 20 before 20.15, which lacks zlib.crc32. About
 * 400 MiB/s here (a tenth of zlib's, a quarter of SHA-256's): such a host still reads and writes
 * version 2, only slower.
 */
export function crc32Portable(b: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~value;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const crc32: (b: Uint8Array, value?: number) => number = typeof zlib.crc32 === 'function' ? zlib.crc32 : crc32Portable;

function crc(): Checksum {
  let c = 0;
  return {
    update: (b) => void (c = crc32(b, c)),
    digest: () => {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(c >>> 0);
      return out;
    },
  };
}

/** Every format this host reads, by version. */
export const ENVELOPE_FORMATS: ReadonlyMap<number, EnvelopeFormat> = new Map([
  [1, { version: 1, checksum: 'sha256', digestBytes: 32, start: sha256 }],
  [2, { version: 2, checksum: 'crc32', digestBytes: 4, start: crc }],
]);

/**
 * The format a stream's first 8 bytes name (pure). STREAM_CORRUPT when they are not a ferry envelope;
 * INVALID_REQUEST when they name a format this host does not read (a newer sender), saying so.
 */
export function envelopeFormat(magic: Buffer): EnvelopeFormat {
  if (magic.length !== MAGIC_PREFIX.length + 1 || !magic.subarray(0, MAGIC_PREFIX.length).equals(MAGIC_PREFIX)) {
    throw corrupt('it is not a ferry dataset stream');
  }
  const v = magic[MAGIC_PREFIX.length] - 0x30;
  const f = ENVELOPE_FORMATS.get(v);
  if (f) return f;
  const known = [...ENVELOPE_FORMATS.keys()];
  throw new FerryError(
    'INVALID_REQUEST',
    `the dataset stream is in envelope format ${v >= 0 && v <= 9 ? v : JSON.stringify(String.fromCharCode(magic[MAGIC_PREFIX.length]))}, ` +
      `and this host reads formats ${known[0]}-${known[known.length - 1]} only: upgrade ferry on this host to the sender's version`,
  );
}

function magicOf(version: number): Buffer {
  return Buffer.concat([MAGIC_PREFIX, Buffer.from(String(version))]);
}

/** What a stream says about itself. */
export interface StreamHeader {
  backend: string;
  snapshot: string;
  base?: string;
  [key: string]: unknown;
}

function corrupt(why: string): FerryError {
  return new FerryError('STREAM_CORRUPT', `dataset stream is damaged: ${why}; the transfer must be retried`);
}

/** Throws INVALID_REQUEST unless the stream holds snapshot `snap` of backend `kind`. */
export function expectStream(h: StreamHeader, kind: string, snap: string): void {
  if (h.backend !== kind || h.snapshot !== snap) {
    throw new FerryError(
      'INVALID_REQUEST',
      `the stream holds ${String(h.backend)} snapshot ${String(h.snapshot)}, not ${kind} snapshot ${snap}: send the right snapshot`,
    );
  }
}

/**
 * Frames carry about this much: chunks (64 KiB from a pipe) are gathered, not copied, so that the
 * transport gets a run of writes it can send as one, and the frame headers stay few.
 */
const FRAME_TARGET = 512 * 1024;

/**
 * Wraps a backend's raw stream in the envelope: format `version`, by default the one the transfer
 * under way asked for (its receiver may be an older ferry), else the newest.
 */
export function wrapStream(inner: Readable, header: StreamHeader, version = envelopeScope.getStore() ?? CURRENT_ENVELOPE): Readable {
  const format = ENVELOPE_FORMATS.get(version);
  if (!format) throw new FerryError('INTERNAL', `internal error: no envelope format ${version}`);
  const hash = format.start();
  // A Number counts bytes exactly up to 8 PiB, without a BigInt per chunk.
  let total = 0;
  const head = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const frameOut = (push: (b: Buffer) => void): void => {
    if (pendingBytes === 0) return;
    const l = Buffer.allocUnsafe(4);
    l.writeUInt32BE(pendingBytes);
    push(l);
    for (const b of pending) push(b);
    pending = [];
    pendingBytes = 0;
  };
  const out = new Transform({
    ...streamBuffers,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (chunk.length === 0) return cb();
      hash.update(chunk);
      total += chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= FRAME_TARGET) frameOut((b) => this.push(b));
      cb();
    },
    flush(cb: TransformCallback) {
      frameOut((b) => this.push(b));
      const tail = Buffer.alloc(4 + format.digestBytes + 8);
      hash.digest().copy(tail, 4);
      tail.writeBigUInt64BE(BigInt(total), 4 + format.digestBytes);
      cb(null, tail);
    },
  });
  out.push(Buffer.concat([magicOf(version), len, head]));
  inner.on('error', (err) => out.destroy(err));
  // A reader that gives up (a dropped transfer) must stop the producer too (files, tar, btrfs send).
  out.on('close', () => {
    if (!inner.readableEnded) inner.destroy();
  });
  inner.pipe(out);
  return out;
}

/**
 * The body is passed on in runs of about this much. The transport delivers 32-64 KiB at a time, and
 * each write of that into `btrfs receive`'s stdin (a socket) woke the receive, which had read all
 * there was: on a virtual machine the wake-ups cost more than the copies. A run pushed in one tick
 * leaves as one writev (the runner coalesces stdin's writes).
 */
const GATHER_BYTES = 256 * 1024;

/**
 * Reads the envelope: `header` resolves once it has arrived; `body` carries the raw stream and
 * ends only after the trailer has been checked. A bad trailer or an early end errors `body`.
 */
export function unwrapStream(outer: Readable): { header: Promise<StreamHeader>; body: Readable } {
  // Incoming chunks are queued and only joined when a field needs bytes from several of them:
  // re-joining a growing buffer per chunk would copy a 1 MiB frame over and over.
  const queue: Buffer[] = [];
  let queued = 0;
  const take = (n: number): Buffer => {
    let out: Buffer;
    if (queue[0].length >= n) {
      out = queue[0].subarray(0, n);
      queue[0] = queue[0].subarray(n);
      if (queue[0].length === 0) queue.shift();
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const head = queue[0];
        const k = Math.min(head.length, n - off);
        head.copy(out, off, 0, k);
        off += k;
        if (k === head.length) queue.shift();
        else queue[0] = head.subarray(k);
      }
    }
    queued -= n;
    return out;
  };
  const peekUInt32 = (): number => (queue[0].length >= 4 ? queue[0].readUInt32BE(0) : Buffer.concat(queue, 4).readUInt32BE(0));

  let state: 'magic' | 'header' | 'frame' | 'trailer' | 'done' = 'magic';
  let headerLen = 0;
  let frameLeft = 0;
  let format: EnvelopeFormat | undefined;
  let hash: Checksum | undefined;
  let total = 0;
  let resolveHeader!: (h: StreamHeader) => void;
  let rejectHeader!: (e: Error) => void;
  const header = new Promise<StreamHeader>((res, rej) => {
    resolveHeader = res;
    rejectHeader = rej;
  });
  header.catch(() => undefined);

  const parse = (push: (b: Buffer) => void): void => {
    for (;;) {
      if (state === 'magic') {
        if (queued < MAGIC_PREFIX.length + 1 + 4) return;
        format = envelopeFormat(take(MAGIC_PREFIX.length + 1));
        hash = format.start();
        headerLen = take(4).readUInt32BE(0);
        if (headerLen > MAX_HEADER) throw corrupt('header too large');
        state = 'header';
      } else if (state === 'header') {
        if (queued < headerLen) return;
        let h: StreamHeader;
        try {
          h = JSON.parse(take(headerLen).toString('utf8')) as StreamHeader;
        } catch {
          throw corrupt('unreadable header');
        }
        resolveHeader(h);
        state = 'frame';
      } else if (state === 'frame') {
        if (frameLeft === 0) {
          if (queued < 4) return;
          const n = peekUInt32();
          take(4);
          if (n === 0) {
            state = 'trailer';
            continue;
          }
          if (n > MAX_FRAME) throw corrupt('frame too large');
          frameLeft = n;
        }
        // Pass frame data on as it arrives, without waiting for the whole frame.
        if (queued === 0) return;
        const data = take(Math.min(frameLeft, queue[0].length));
        frameLeft -= data.length;
        hash!.update(data);
        total += data.length;
        // A view, not a copy: incoming chunks are never reused by the transport.
        push(data);
      } else if (state === 'trailer') {
        const n = format!.digestBytes;
        if (queued < n + 8) return;
        const tail = take(n + 8);
        if (tail.readBigUInt64BE(n) !== BigInt(total) || !tail.subarray(0, n).equals(hash!.digest())) throw corrupt('checksum mismatch');
        state = 'done';
      } else {
        if (queued > 0) throw corrupt('data after the end');
        return;
      }
    }
  };

  let gathered: Buffer[] = [];
  let gatheredBytes = 0;
  const gather = (b: Buffer): void => {
    gathered.push(b);
    gatheredBytes += b.length;
  };
  const body = new Transform({
    ...streamBuffers,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (chunk.length > 0) {
        queue.push(chunk);
        queued += chunk.length;
      }
      try {
        parse(gather);
        // Passed on in runs of GATHER_BYTES, in one tick (see GATHER_BYTES); all of it once the
        // frames are over, before the trailer's check lets the body end.
        if (gatheredBytes >= GATHER_BYTES || state !== 'frame') {
          for (const b of gathered) this.push(b);
          gathered = [];
          gatheredBytes = 0;
        }
        cb();
      } catch (err) {
        rejectHeader(err as Error);
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      if (state !== 'done') {
        const err = corrupt('it ended early');
        rejectHeader(err);
        return cb(err);
      }
      cb();
    },
  });
  const brokeOff = (err: Error): void => {
    const e = new FerryError('STREAM_CORRUPT', `dataset stream broke off: ${err.message}; the transfer must be retried`, { cause: err });
    rejectHeader(e);
    body.destroy(e);
  };
  // A stream that failed before it got here (its peer went away at once) has emitted its error already.
  if (outer.errored || outer.destroyed) {
    brokeOff(outer.errored ?? new Error('it was closed before it was read'));
    return { header, body };
  }
  outer.on('error', brokeOff);
  outer.pipe(body);
  return { header, body };
}
