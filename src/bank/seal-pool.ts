/**
 * A Sealer on worker threads: zstd and AES-GCM of one chunk run on a thread of their own while the
 * event loop reads, chunks and hashes the next. Threads start on first use, hold the process open
 * only while they have work, and end at close().
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FerryError, type ErrorCode } from '../errors';
import type { Sealer } from './sealer';
import type { SealReply, SealRequest } from './seal-worker';

/** Input buffers kept for reuse: as many as puts seal at once, each big enough for the largest chunk. */
const SPARE_INPUTS = 8;
const INPUT_BYTES = 4 * 1024 * 1024 + 64 * 1024;

interface Thread {
  worker: Worker;
  busy: number;
}

export class SealPool implements Sealer {
  private threads: Thread[] = [];
  private readonly waiting = new Map<number, { resolve: (r: { body: Buffer; hash?: string }) => void; reject: (e: Error) => void; thread: Thread }>();
  private nextId = 1;
  private closed = false;
  /**
   * Input buffers the threads handed back. The bytes go to a thread in one of these (copied, the
   * caller keeps its own); reusing them spares a fresh mapping of memory per chunk.
   */
  private readonly spare: ArrayBuffer[] = [];

  /** `size` threads (default: one per core, at most 4: the event loop only cuts and hashes, about a third of the work). */
  constructor(private readonly key: Buffer, private readonly url: string, private readonly size = Math.max(1, Math.min(4, availableParallelism()))) {}

  async seal(plain: Buffer, ad: string): Promise<Buffer> {
    return (await this.run('seal', plain, ad)).body;
  }

  async open(sealed: Buffer, ad: string): Promise<Buffer> {
    return (await this.run('open', sealed, ad)).body;
  }

  async openAndHash(sealed: Buffer, ad: string, idKey: Buffer): Promise<{ plain: Buffer; id: string }> {
    const r = await this.run('open', sealed, ad, idKey);
    return { plain: r.body, id: r.hash ?? '' };
  }

  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private run(op: SealRequest['op'], body: Buffer, ad: string, idKey?: Buffer): Promise<{ body: Buffer; hash?: string }> {
    if (this.closed) return Promise.reject(new FerryError('INTERNAL', `the sealer of bank ${this.url} was used after the bank was closed`));
    const thread = this.pick();
    const id = this.nextId++;
    return new Promise<{ body: Buffer; hash?: string }>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, thread });
      if (thread.busy++ === 0) thread.worker.ref();
      // The caller keeps its buffer: the thread gets a copy of just these bytes (a view's whole
      // ArrayBuffer would be cloned otherwise), handed over without a second copy.
      const input = body.length <= INPUT_BYTES ? (this.spare.pop() ?? new ArrayBuffer(INPUT_BYTES)) : new ArrayBuffer(body.length);
      body.copy(new Uint8Array(input));
      thread.worker.postMessage({ id, op, input, length: body.length, ad, idKey: idKey && new Uint8Array(idKey) } satisfies SealRequest, [input]);
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
      if (r.input.byteLength === INPUT_BYTES && this.spare.length < SPARE_INPUTS) this.spare.push(r.input);
      if (r.ok) w.resolve({ body: Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength), hash: r.hash });
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
