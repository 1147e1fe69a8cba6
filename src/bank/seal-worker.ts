/**
 * The thread of a SealPool (seal-pool.ts): seals and opens objects with the key it was started
 * with, one at a time, answering `{id, ok, body}` or `{id, ok: false, code, message}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FerryError, isFerryError } from '../errors';
import { BufferPool } from './buffer-pool';
import { keyedId, openSealed, seal } from './seal';
import { YoungGarbage } from './young-garbage';

/**
 * A request to the thread: `length` bytes at the start of `input` (transferred, and handed back), or
 * at `offset` in `shared` (an open of bytes in shared memory: read where they lie, nothing handed back).
 */
export interface SealRequest {
  id: number;
  op: 'seal' | 'open';
  input?: ArrayBuffer;
  shared?: SharedArrayBuffer;
  offset?: number;
  length: number;
  ad: string;
  /** open: also hash the plaintext under this key (the reply's `id`). */
  idKey?: Uint8Array;
  /** Plaintexts the caller is done with (transferred): an open writes into one of these. */
  spares?: ArrayBuffer[];
}

/**
 * Its answer; `body` and `input` are transferred, not copied. With `inInput`, the body is the first
 * `inInput` bytes of `input` (a seal written over its own input) and no `body` is sent. An opened
 * body is a view at the start of a larger buffer (one of the spares, or a new one), sent whole.
 */
export type SealReply = { id: number; input?: ArrayBuffer } & ({ ok: true; body?: Uint8Array; inInput?: number; hash?: string } | { ok: false; code: string; message: string });

/**
 * Buffers plaintexts are opened into: given back by the caller with later requests. As many as a
 * restore holds chunks at once (its cache and fetches ahead), spread over the threads.
 */
const SPARE_OUTPUTS = 4;

const { key, url } = workerData as { key: Uint8Array; url: string };
const sealKey = Buffer.from(key);
const outputs = new BufferPool<ArrayBuffer>(SPARE_OUTPUTS, (n) => Buffer.allocUnsafeSlow(n).buffer as ArrayBuffer);

/**
 * Node's cipher makes a new buffer for every update, and this thread allocates little else: two
 * threads held 54 MB of dead ciphertext at a 1 GiB backup's peak (heaptrack) until a minor
 * collection after every 8 MiB sealed or opened kept that to a few MiB.
 */
const garbage = new YoungGarbage(8 * 1024 * 1024);

parentPort?.on('message', (req: SealRequest) => {
  try {
    answer(req);
  } finally {
    garbage.made(req.length);
  }
});

/** Seals or opens what `req` carries and posts the reply (the result or the error). */
function answer(req: SealRequest): void {
  for (const s of req.spares ?? []) outputs.give(s);
  // The input buffer goes back with every reply; shared bytes stay where they are.
  const back: ArrayBuffer[] = req.input ? [req.input] : [];
  let reply: SealReply;
  let output: ArrayBuffer | undefined;
  try {
    if (req.op === 'seal') {
      if (!req.input) throw new FerryError('INTERNAL', 'a seal request carries its input buffer');
      const input = Buffer.from(req.input, 0, req.length);
      // Sealed over its own input when it fits (it does unless the chunk is within a few bytes of the
      // input buffer's size): no fresh buffer per chunk for the event loop to collect.
      const out = seal(sealKey, input, req.ad, Buffer.from(req.input));
      if (out.buffer === req.input) {
        reply = { id: req.id, input: req.input, ok: true, inInput: out.length };
        parentPort?.postMessage(reply, back);
        return;
      }
      reply = { id: req.id, input: req.input, ok: true, body: out };
      parentPort?.postMessage(reply, [out.buffer as ArrayBuffer, ...back]);
      return;
    }
    const input = req.shared ? Buffer.from(req.shared, req.offset ?? 0, req.length) : Buffer.from(req.input!, 0, req.length);
    let out = openSealed(sealKey, input, req.ad, url, (n) => Buffer.from((output = outputs.take(n)), 0, n));
    // A plaintext zstd sized itself (no spare) may be a view of a shared pool: given its own buffer.
    if (out.buffer !== output && (out.byteOffset !== 0 || out.byteLength !== out.buffer.byteLength || out.buffer instanceof SharedArrayBuffer)) out = Buffer.from(out);
    const hash = req.idKey ? keyedId(Buffer.from(req.idKey.buffer, req.idKey.byteOffset, req.idKey.byteLength), out) : undefined;
    if (out.buffer !== output && output) outputs.give(output);
    output = undefined;
    reply = { id: req.id, input: req.input, ok: true, body: out, hash };
    parentPort?.postMessage(reply, [out.buffer as ArrayBuffer, ...back]);
    return;
  } catch (err) {
    if (output) outputs.give(output);
    reply = { id: req.id, input: req.input, ok: false, code: isFerryError(err) ? err.code : 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply, back);
}
