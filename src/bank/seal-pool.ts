/**
 * A Sealer on worker threads: zstd and AES-GCM of one chunk run on a thread of their own while the
 * event loop reads, chunks and hashes the next. Threads start on first use, hold the process open
 * only while they have work, and end at close().
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FerryError, type ErrorCode } from '../errors';
import { BufferPool } from './buffer-pool';
import type { Sealer } from './sealer';
import type { SealReply, SealRequest } from './seal-worker';

/**
 * Input buffers kept for reuse: as many as a backup has chunks in flight (8 puts, each holding its
 * chunk's bytes in one of these from the put's call until sealed), and one more.
 */
const SPARE_INPUTS = 10;
/** Plaintexts given back and not yet sent to a thread, at most (the threads keep their own spares). */
const SPARE_OUTPUTS_HELD = 16;
/**
 * Plaintexts sent with each request, at most: an open uses one, the other keeps the thread's pool
 * stocked. Sending every spare with one request had that thread drop most of them (it keeps a few)
 * while the other made fresh ones: a 1 GiB restore opened 234 of its 895 chunks into new memory,
 * 135 this way (and 12 % less system time).
 */
const SPARES_PER_REQUEST = 2;

interface Thread {
  worker: Worker;
  busy: number;
}

export class SealPool implements Sealer {
  private threads: Thread[] = [];
  private readonly waiting = new Map<number, { resolve: (r: { body: Buffer; hash?: string; input?: ArrayBuffer }) => void; reject: (e: Error) => void; thread: Thread }>();
  private nextId = 1;
  /** Buffers of plaintexts the threads opened, until given back (giveOutput takes only these). */
  private readonly fromThreads = new WeakSet<ArrayBufferLike>();
  private closed = false;
  /**
   * Input buffers the threads handed back. The bytes go to a thread in one of these (copied, the
   * caller keeps its own); reusing them spares a fresh mapping of memory per chunk.
   */
  private readonly spare = new BufferPool<ArrayBuffer>(SPARE_INPUTS, (n) => Buffer.allocUnsafeSlow(n).buffer as ArrayBuffer);
  /** Plaintexts given back (giveOutput), sent to the next thread asked to work: it opens into them. */
  private outputs: ArrayBuffer[] = [];

  /** `size` threads (default: one per core, at most 4: the event loop only cuts and hashes, about a third of the work). */
  constructor(private readonly key: Buffer, private readonly url: string, private readonly size = Math.max(1, Math.min(4, availableParallelism()))) {}

  async seal(plain: Buffer, ad: string): Promise<Buffer> {
    return (await this.run('seal', plain, ad)).body;
  }

  takeInput(bytes: number): Buffer {
    return Buffer.from(this.spare.take(bytes));
  }

  async sealInput(input: Buffer, length: number, ad: string): Promise<{ sealed: Buffer; release: () => void }> {
    if (input.byteOffset !== 0 || input.buffer.byteLength < length) throw new FerryError('INTERNAL', `sealInput takes a buffer from takeInput, not a view`);
    const r = await this.post('seal', input.buffer as ArrayBuffer, length, ad);
    // Sealed over its input: that buffer goes back to the spares only once the caller is done.
    const held = r.input;
    return { sealed: r.body, release: held ? () => this.spare.give(held) : () => undefined };
  }

  giveInput(input: Buffer): void {
    if (input.byteOffset === 0) this.spare.give(input.buffer as ArrayBuffer);
  }

  async open(sealed: Buffer, ad: string): Promise<Buffer> {
    return (await this.run('open', sealed, ad)).body;
  }

  async openAndHash(sealed: Buffer, ad: string, idKey: Buffer): Promise<{ plain: Buffer; id: string }> {
    const r = await this.run('open', sealed, ad, idKey);
    return { plain: r.body, id: r.hash ?? '' };
  }

  giveOutput(plain: Buffer): void {
    // Only a buffer a thread sent, whole (a view of anything else may share its memory).
    if (!this.fromThreads.has(plain.buffer) || this.outputs.length >= SPARE_OUTPUTS_HELD) return;
    this.fromThreads.delete(plain.buffer);
    this.outputs.push(plain.buffer as ArrayBuffer);
  }

  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private run(op: SealRequest['op'], body: Buffer, ad: string, idKey?: Buffer): Promise<{ body: Buffer; hash?: string }> {
    // Bytes in shared memory (a restore's ranges) are read by the thread where they lie.
    if (op === 'open' && body.buffer instanceof SharedArrayBuffer) return this.post(op, { shared: body.buffer, offset: body.byteOffset }, body.length, ad, idKey);
    // The caller keeps its buffer: the thread gets a copy of just these bytes (a view's whole
    // ArrayBuffer would be cloned otherwise), handed over without a second copy.
    const input = this.spare.take(body.length);
    body.copy(new Uint8Array(input));
    return this.post(op, input, body.length, ad, idKey);
  }

  /**
   * Sends `length` bytes to a thread: the start of `input` (transferred; it comes back to the spares
   * with the answer), or bytes of a SharedArrayBuffer (shared, not copied).
   */
  private post(
    op: SealRequest['op'],
    input: ArrayBuffer | { shared: SharedArrayBuffer; offset: number },
    length: number,
    ad: string,
    idKey?: Buffer,
  ): Promise<{ body: Buffer; hash?: string; input?: ArrayBuffer }> {
    if (this.closed) {
      if (input instanceof ArrayBuffer) this.spare.give(input);
      return Promise.reject(new FerryError('INTERNAL', `the sealer of bank ${this.url} was used after the bank was closed`));
    }
    const thread = this.pick();
    const id = this.nextId++;
    return new Promise<{ body: Buffer; hash?: string; input?: ArrayBuffer }>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, thread });
      if (thread.busy++ === 0) thread.worker.ref();
      const spares = this.outputs.splice(0, SPARES_PER_REQUEST);
      const req: SealRequest = { id, op, length, ad, idKey: idKey && new Uint8Array(idKey), spares, ...(input instanceof ArrayBuffer ? { input } : input) };
      thread.worker.postMessage(req, input instanceof ArrayBuffer ? [input, ...spares] : spares);
    });
  }

  /** The least busy thread, starting one while fewer than `size` run. */
  private pick(): Thread {
    let best = this.threads[0];
    for (const t of this.threads) if (t.busy < best.busy) best = t;
    if (best && (best.busy === 0 || this.threads.length >= this.size)) return best;
    return this.start();
  }

  private start(): Thread {
    const worker = new Worker(join(__dirname, 'seal-worker.js'), { workerData: { key: new Uint8Array(this.key), url: this.url } });
    const thread: Thread = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (r: SealReply) => {
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (--thread.busy === 0) worker.unref();
      if (r.ok && r.inInput !== undefined && r.input) {
        // The body lies in the input buffer, which the caller holds until it is done (sealInput).
        w.resolve({ body: Buffer.from(r.input, 0, r.inInput), input: r.input });
        return;
      }
      if (r.input) this.spare.give(r.input);
      if (r.ok && r.body) {
        if (r.hash !== undefined) this.fromThreads.add(r.body.buffer);
        w.resolve({ body: Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength), hash: r.hash });
      }
      else if (r.ok) w.reject(new FerryError('INTERNAL', `seal thread of bank ${this.url} answered without a body`));
      else w.reject(new FerryError(r.code as ErrorCode, r.message));
    });
    worker.on('error', (err) => this.fail(thread, err));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(thread, new Error(`seal thread exited with code ${code}`));
    });
    this.threads.push(thread);
    return thread;
  }

  /** A thread died: everything it had fails, and it is replaced on next use. */
  private fail(thread: Thread, err: Error): void {
    this.threads = this.threads.filter((t) => t !== thread);
    for (const [id, w] of this.waiting) {
      if (w.thread !== thread) continue;
      this.waiting.delete(id);
      w.reject(new FerryError('INTERNAL', `sealing for bank ${this.url} failed: ${err.message}`, { cause: err }));
    }
  }
}
