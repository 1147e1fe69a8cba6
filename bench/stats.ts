/** Pure helpers for benchmark figures: summaries of latency samples, formatting, a seeded PRNG. */

/** A latency distribution, all in milliseconds. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of ascending `sorted` (q in 0..100); NaN for no samples. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((q / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function summarize(samplesMs: readonly number[]): Summary {
  const s = [...samplesMs].sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), mean, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

/** Milliseconds with precision that suits their size: 0.31 ms, 4.2 ms, 37 ms, 1.42 s. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** "p50 4.2 ms · p99 9.8 ms", optionally with the mean. */
export function fmtSummary(s: Summary, withMean = false): string {
  const parts = [`p50 ${fmtMs(s.p50)}`, `p99 ${fmtMs(s.p99)}`];
  if (withMean) parts.push(`mean ${fmtMs(s.mean)}`);
  return parts.join(' · ');
}

/** "p50 … · mean …" for wall-time comparisons where p99 of 20 samples says little. */
export function fmtP50Mean(s: Summary): string {
  return `p50 ${fmtMs(s.p50)} · mean ${fmtMs(s.mean)}`;
}

export function fmtMiB(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : '—';
}

/** Milliseconds since `startNs` (from process.hrtime.bigint()). */
export function elapsedMs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

/** Runs `fn` and returns its result with its wall time in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { value, ms: elapsedMs(start) };
}

/** mulberry32: a small seeded PRNG, so that every run asks for the same "random" names. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
