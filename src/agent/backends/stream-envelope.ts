import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { FerryError } from '../../errors';
import { streamBuffers } from '../../stream/buffer-size';

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

/** Wraps a backend's raw stream in the envelope. */
export function wrapStream(inner: Readable, header: StreamHeader): Readable {
  const hash = createHash('sha256');
  let total = 0n;
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
      total += BigInt(chunk.length);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= FRAME_TARGET) frameOut((b) => this.push(b));
      cb();
    },
    flush(cb: TransformCallback) {
      frameOut((b) => this.push(b));
      const tail = Buffer.alloc(4 + 32 + 8);
      hash.digest().copy(tail, 4);
      tail.writeBigUInt64BE(total, 36);
      cb(null, tail);
    },
  });
  out.push(Buffer.concat([MAGIC, len, head]));
  inner.on('error', (err) => out.destroy(err));
  // A reader that gives up (a dropped transfer) must stop the producer too (files, tar, btrfs send).
  out.on('close', () => {
    if (!inner.readableEnded) inner.destroy();
  });
  inner.pipe(out);
  return out;
}

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
        if (queued < MAGIC.length + 4) return;
        if (!take(MAGIC.length).equals(MAGIC)) throw corrupt('it is not a ferry dataset stream');
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
        hash.update(data);
        total += BigInt(data.length);
        // A view, not a copy: incoming chunks are never reused by the transport.
        push(data);
      } else if (state === 'trailer') {
        if (queued < 40) return;
        const tail = take(40);
        if (tail.readBigUInt64BE(32) !== total || !tail.subarray(0, 32).equals(hash.digest())) throw corrupt('checksum mismatch');
        state = 'done';
      } else {
        if (queued > 0) throw corrupt('data after the end');
        return;
      }
    }
  };

  const body = new Transform({
    ...streamBuffers,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (chunk.length > 0) {
        queue.push(chunk);
        queued += chunk.length;
      }
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
