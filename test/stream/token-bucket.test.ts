import { expect } from 'chai';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { burstOf, throttle, TokenBucket } from '../../src/stream/token-bucket';

/* replicate: the bandwidth limit of replication rounds: the rate math under a fixed clock, then a real stream. */

describe('stream: the token bucket of --bandwidth', function () {
  it('lets a burst through at once, then makes the rest wait for its tokens', function () {
    const b = new TokenBucket(1000, 500, 0); // 1000 B/s, 500 B burst
    expect(b.take(500, 0)).to.equal(0);
    expect(b.take(100, 0)).to.equal(100); // 100 B of debt: 0.1 s
    expect(b.take(100, 0)).to.equal(200);
    // Half a second later 500 tokens came in: the debt (200) is paid, 300 left.
    expect(b.take(300, 500)).to.equal(0);
    expect(b.take(1, 500)).to.equal(1);
  });

  it('never holds more than the burst, however long it was idle', function () {
    const b = new TokenBucket(1000, 500, 0);
    expect(b.take(500, 60_000)).to.equal(0);
    expect(b.take(500, 60_000)).to.equal(500);
  });

  it('passes rate * t + burst bytes in t, whatever the chunk sizes', function () {
    const b = new TokenBucket(10_000, 1000, 0);
    let t = 0;
    let sent = 0;
    const sizes = [1, 4096, 700, 65536, 3, 1000, 20_000];
    for (let i = 0; sent < 200_000; i++) {
      const n = sizes[i % sizes.length];
      t += b.take(n, t); // wait as told, then the chunk passes
      sent += n;
    }
    // 200 kB at 10 kB/s with a 1 kB burst: about 20 s, never sooner than (sent - burst) / rate.
    expect(t).to.be.at.least(((sent - 1000) / 10_000) * 1000);
    expect(t).to.be.below(((sent + 65536) / 10_000) * 1000);
  });

  it('refuses a rate or burst that is not positive', function () {
    expect(() => new TokenBucket(0, 1, 0)).to.throw(RangeError);
    expect(() => new TokenBucket(1, 0, 0)).to.throw(RangeError);
  });

  it('takes a tenth of a second as the burst, at least 64 KiB', function () {
    expect(burstOf(50 * 2 ** 20)).to.equal(5 * 2 ** 20 / 1);
    expect(burstOf(100_000)).to.equal(64 * 1024);
  });

  it('throttles a real stream: 1 MiB at 2 MiB/s takes about half a second, every byte in order', async function () {
    const data = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const got: Buffer[] = [];
    const started = Date.now();
    const chunks = Array.from({ length: 64 }, (_, i) => data.subarray(i * 16384, (i + 1) * 16384));
    await pipeline(Readable.from(chunks), throttle(2 * 2 ** 20), new Writable({ write: (c: Buffer, _e, cb) => (got.push(c), cb()) }));
    const ms = Date.now() - started;
    expect(Buffer.concat(got).equals(data)).to.equal(true);
    // (1 MiB - the 204.8 KiB burst) at 2 MiB/s is 400 ms; the timers only ever make it later.
    expect(ms).to.be.at.least(390);
  });
});
