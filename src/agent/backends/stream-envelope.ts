import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { FerryError } from '../../errors';

/**
 * Every dataset stream ferry sends travels in one envelope, whatever the backend's own format:
 *
 *   "FERRYST1" | u32 header length | header JSON | frames: u32 length, bytes | u32 0 | sha256 (32) | u64 total
 *
 * The receiver checks the trailer before it keeps anything, so a short, cut or corrupted stream is
 * refused by the same code for every backend.
 */
const MAGIC = Buffer.from('FERRYST1');
const MAX_HEADER = 64 * 1024;
const MAX_FRAME = 16 * 1024 * 1024;

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

/** Wraps a backend's raw stream in the envelope. */
export function wrapStream(inner: Readable, header: StreamHeader): Readable {
  const hash = createHash('sha256');
  let total = 0n;
  const head = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (chunk.length === 0) return cb();
      hash.update(chunk);
      total += BigInt(chunk.length);
      const l = Buffer.alloc(4);
      l.writeUInt32BE(chunk.length);
      cb(null, Buffer.concat([l, chunk]));
    },
    flush(cb: TransformCallback) {
      const tail = Buffer.alloc(4 + 32 + 8);
      hash.digest().copy(tail, 4);
      tail.writeBigUInt64BE(total, 36);
      cb(null, tail);
    },
  });
  out.push(Buffer.concat([MAGIC, len, head]));
  inner.on('error', (err) => out.destroy(err));
  inner.pipe(out);
  return out;
}

/**
 * Reads the envelope: `header` resolves once it has arrived; `body` carries the raw stream and
 * ends only after the trailer has been checked. A bad trailer or an early end errors `body`.
 */
export function unwrapStream(outer: Readable): { header: Promise<StreamHeader>; body: Readable } {
  let buf: Buffer = Buffer.alloc(0);
  let state: 'magic' | 'header' | 'frame' | 'trailer' | 'done' = 'magic';
  let headerLen = 0;
  const hash = createHash('sha256');
  let total = 0n;
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
        if (buf.length < MAGIC.length + 4) return;
        if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('it is not a ferry dataset stream');
        headerLen = buf.readUInt32BE(MAGIC.length);
        if (headerLen > MAX_HEADER) throw corrupt('header too large');
        buf = buf.subarray(MAGIC.length + 4);
        state = 'header';
      } else if (state === 'header') {
        if (buf.length < headerLen) return;
        let h: StreamHeader;
        try {
          h = JSON.parse(buf.subarray(0, headerLen).toString('utf8')) as StreamHeader;
        } catch {
          throw corrupt('unreadable header');
        }
        buf = buf.subarray(headerLen);
        resolveHeader(h);
        state = 'frame';
      } else if (state === 'frame') {
        if (buf.length < 4) return;
        const n = buf.readUInt32BE(0);
        if (n === 0) {
          buf = buf.subarray(4);
          state = 'trailer';
          continue;
        }
        if (n > MAX_FRAME) throw corrupt('frame too large');
        if (buf.length < 4 + n) return;
        const data = buf.subarray(4, 4 + n);
        hash.update(data);
        total += BigInt(n);
        push(Buffer.from(data));
        buf = buf.subarray(4 + n);
      } else if (state === 'trailer') {
        if (buf.length < 40) return;
        const digest = buf.subarray(0, 32);
        const count = buf.readBigUInt64BE(32);
        if (count !== total || !digest.equals(hash.digest())) throw corrupt('checksum mismatch');
        buf = buf.subarray(40);
        state = 'done';
      } else {
        if (buf.length > 0) throw corrupt('data after the end');
        return;
      }
    }
  };

  const body = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      try {
        parse((b) => this.push(b));
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
  outer.on('error', (err) => {
    const e = new FerryError('STREAM_CORRUPT', `dataset stream broke off: ${err.message}; the transfer must be retried`, { cause: err });
    rejectHeader(e);
    body.destroy(e);
  });
  outer.pipe(body);
  return { header, body };
}
