/**
 * The bank format's own costs, in memory (no store, no disk): how fast the chunker cuts, how fast
 * chunk ids are computed, and the whole put path (cut, HMAC, zstd, AES-GCM) with sealing on the event
 * loop (InlineSealer, the baseline) beside the worker threads a Bank uses (SealPool). The data: a
 * corpus of half random bytes, half text-like bytes that zstd compresses, fed in 1 MiB pushes.
 * `npm run bench -- --only bank-format`.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { BankChunks } from '../src/bank/bank-chunks';
import { GearChunker, gearTable } from '../src/bank/gear-chunker';
import { SealPool } from '../src/bank/seal-pool';
import { InlineSealer, type Sealer } from '../src/bank/sealer';
import type { BankStore, ObjectWriter } from '../src/bank/types';

const MiB = 1024 * 1024;

export interface BankFormatFigures {
  corpusBytes: number;
  passes: number;
  /** MB/s (10^6 bytes per second of wall time), best pass. */
  chunkerMBps: number;
  hmacMBps: number;
  putInlineMBps: number;
  putPoolMBps: number;
  /** MB per CPU second (user + system, every thread), best pass: what the step costs, whatever else the machine runs. */
  chunkerMBpcs: number;
  hmacMBpcs: number;
  putInlineMBpcs: number;
  putPoolMBpcs: number;
  chunks: number;
  /** Sealed bytes / plain bytes. */
  sealedRatio: number;
}

/** Text-like bytes: words drawn from a small vocabulary (compresses about 3:1 with zstd -3). */
function textLike(n: number): Buffer {
  const words = Array.from({ length: 4096 }, (_, i) => createHash('md5').update(String(i)).digest('base64').slice(0, 3 + (i % 9)));
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  const pick = randomBytes(n >> 2);
  for (let i = 0; at < n; i += 2) at += out.write(`${words[pick.readUInt16LE(i % (pick.length - 2)) & 4095]} `, at);
  return out;
}

/** A store that keeps nothing (the format's cost alone). */
class NullStore implements BankStore {
  readonly url = 'null://';
  bytes = 0;
  async put(_key: string, body: Buffer): Promise<void> {
    this.bytes += body.length;
  }
  /** Counts the pieces' bytes: the store's own cost is no part of the format's. */
  create(): ObjectWriter {
    return {
      write: async (bytes) => {
        this.bytes += bytes.length;
      },
      commit: async () => undefined,
      abort: async () => undefined,
    };
  }
  async get(): Promise<Buffer | null> {
    return null;
  }
  async getRange(): Promise<Buffer | null> {
    return null;
  }
  async has(): Promise<boolean> {
    return false;
  }
  async list(): Promise<[]> {
    return [];
  }
  async delete(): Promise<void> {}
}

export class BankFormatBench {
  aborted = false;

  constructor(private readonly corpusMiB = 256, private readonly passes = 3) {}

  async run(): Promise<BankFormatFigures> {
    const half = (this.corpusMiB / 2) * MiB;
    const corpus = Buffer.concat([randomBytes(half), textLike(half)]);
    const gear = gearTable(randomBytes(32));
    const idKey = randomBytes(32);
    const sealKey = randomBytes(32);
    const rate = (ms: number): number => corpus.length / 1e6 / (ms / 1000);
    const best = { chunker: Infinity, hmac: Infinity, inline: Infinity, pool: Infinity };
    const cpu = { chunker: Infinity, hmac: Infinity, inline: Infinity, pool: Infinity };
    // CPU ms of the whole process (worker threads included) since `from`.
    const cpuMs = (from: NodeJS.CpuUsage): number => {
      const d = process.cpuUsage(from);
      return (d.user + d.system) / 1000;
    };
    let c0 = process.cpuUsage();
    let chunks = 0;
    let sealed = 0;
    const pool = new SealPool(sealKey, 'null://');
    try {
      for (let p = 0; p < this.passes && !this.aborted; p++) {
        let t = performance.now();
        c0 = process.cpuUsage();
        const cutter = new GearChunker(gear);
        const pieces: Buffer[] = [];
        for (let at = 0; at < corpus.length; at += MiB) pieces.push(...cutter.push(corpus.subarray(at, at + MiB)));
        const last = cutter.end();
        if (last) pieces.push(last);
        best.chunker = Math.min(best.chunker, performance.now() - t);
        cpu.chunker = Math.min(cpu.chunker, cpuMs(c0));
        chunks = pieces.length;

        t = performance.now();
        c0 = process.cpuUsage();
        for (const c of pieces) createHmac('sha256', idKey).update(c).digest('hex');
        best.hmac = Math.min(best.hmac, performance.now() - t);
        cpu.hmac = Math.min(cpu.hmac, cpuMs(c0));
        pieces.length = 0;

        for (const [name, sealer] of [['inline', new InlineSealer(sealKey, 'null://')], ['pool', pool]] as Array<['inline' | 'pool', Sealer]>) {
          const store = new NullStore();
          t = performance.now();
          c0 = process.cpuUsage();
          await this.putAll(corpus, gear, new BankChunks(store, idKey, sealer, async () => ({ packs: new Map(), chunks: new Map() }), 16 * MiB, { trusted: new Set() }));
          best[name] = Math.min(best[name], performance.now() - t);
          cpu[name] = Math.min(cpu[name], cpuMs(c0));
          sealed = store.bytes;
        }
      }
    } finally {
      await pool.close();
    }
    return {
      corpusBytes: corpus.length,
      passes: this.passes,
      chunkerMBps: rate(best.chunker),
      hmacMBps: rate(best.hmac),
      putInlineMBps: rate(best.inline),
      putPoolMBps: rate(best.pool),
      chunkerMBpcs: rate(cpu.chunker),
      hmacMBpcs: rate(cpu.hmac),
      putInlineMBpcs: rate(cpu.inline),
      putPoolMBpcs: rate(cpu.pool),
      chunks,
      sealedRatio: sealed / corpus.length,
    };
  }

  /** Cuts and puts the corpus as a backup does: up to 8 puts in flight. */
  private async putAll(corpus: Buffer, gear: Int32Array, store: BankChunks): Promise<void> {
    const cutter = new GearChunker(gear);
    const inFlight = new Set<Promise<string>>();
    const put = async (c: Buffer): Promise<void> => {
      const p = store.put(c);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= 8) await Promise.race(inFlight);
    };
    for (let at = 0; at < corpus.length; at += MiB) for (const c of cutter.push(corpus.subarray(at, at + MiB))) await put(c);
    const last = cutter.end();
    if (last) await put(last);
    await Promise.all(inFlight);
    await store.flush();
  }

  async cleanup(): Promise<void> {}
}

export function renderBankFormat(f: BankFormatFigures): string {
  const r = (x: number): string => x.toFixed(0);
  return [
    `| step | MB/s (wall) | ratio | MB per CPU second |`,
    `|---|---:|---:|---:|`,
    `| chunker (FastCDC, 1 MiB avg) | ${r(f.chunkerMBps)} | | ${r(f.chunkerMBpcs)} |`,
    `| chunk ids (HMAC-SHA256) | ${r(f.hmacMBps)} | | ${r(f.hmacMBpcs)} |`,
    `| put: cut + id + zstd + AES-GCM, sealing on the event loop (baseline) | ${r(f.putInlineMBps)} | 1.00 | ${r(f.putInlineMBpcs)} |`,
    `| put: the same, sealing in worker threads (what a Bank does) | ${r(f.putPoolMBps)} | ${(f.putPoolMBps / f.putInlineMBps).toFixed(2)} | ${r(f.putPoolMBpcs)} |`,
    '',
    `${(f.corpusBytes / MiB).toFixed(0)} MiB (half random, half text-like) in ${f.chunks} chunks, best of ${f.passes} passes; sealed/plain ${f.sealedRatio.toFixed(2)}`,
  ].join('\n');
}
