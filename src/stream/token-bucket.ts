import { Transform, type TransformCallback } from 'node:stream';
import { streamBuffers } from './buffer-size';

/**
 * A token bucket (pure rate math, under a clock the caller gives): `rate` bytes per second refill
 * it, up to `burst` bytes. Taking more than it holds goes into debt, and the answer is how long to
 * wait before the bytes may pass, so that over any stretch of time at most `burst + rate * t` pass.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(rate > 0) || !(burst > 0)) throw new RangeError(`a token bucket needs a positive rate and burst, not ${rate} and ${burst}`);
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `bytes` at `now` (ms); answers the milliseconds to wait before they may pass (0: at once). */
  take(bytes: number, now: number): number {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
    }
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }
}

/** The burst of a bandwidth limit: a tenth of a second's bytes, at least 64 KiB (one chunk passes whole). */
export function burstOf(bytesPerSecond: number): number {
  return Math.max(64 * 1024, Math.floor(bytesPerSecond / 10));
}

/** A pass-through stream that lets at most `bytesPerSecond` through (a replication round's `--bandwidth`). */
export function throttle(bytesPerSecond: number, now: () => number = Date.now): Transform {
  const bucket = new TokenBucket(bytesPerSecond, burstOf(bytesPerSecond), now());
  return new Transform({
    ...streamBuffers,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      const wait = bucket.take(chunk.length, now());
      // Holding the callback holds the stream: backpressure reaches the network read.
      if (wait === 0) cb(null, chunk);
      else setTimeout(() => cb(null, chunk), wait);
    },
  });
}
