import { expect } from 'chai';
import { SPARE_SIZES, SPARES_PER_SIZE, SparePool, type SpareOps, type SpareSize } from '../../../../src/agent/backends/btrfs/spares';
import { silentLogger } from '../../../../src/log';

/** Fake disk operations: each make waits until the test releases it, so that the order is the test's. */
class FakeOps implements SpareOps {
  made: string[] = [];
  removed: string[] = [];
  pending: { size: SpareSize; resolve: () => void; reject: (err: Error) => void }[] = [];
  private n = 0;

  make(size: SpareSize): Promise<string> {
    const path = `spares/${size ?? 'none'}-${++this.n}`;
    return new Promise((resolve, reject) => {
      this.pending.push({
        size,
        resolve: () => {
          this.made.push(path);
          resolve(path);
        },
        reject,
      });
    });
  }

  async remove(paths: readonly string[]): Promise<void> {
    this.removed.push(...paths);
  }

  /** Lets the oldest pending make finish (or fail) and the pool go on. */
  async finish(err?: Error): Promise<void> {
    // The pool starts making spares on the next turn of the event loop.
    if (this.pending.length === 0) await new Promise((r) => setImmediate(r));
    const p = this.pending.shift();
    if (!p) throw new Error('no spare is being made');
    if (err) p.reject(err);
    else p.resolve();
    await new Promise((r) => setImmediate(r));
  }
}

const M64 = 64 * 1024 * 1024;
const G1 = 1024 * 1024 * 1024;

describe('SparePool', function () {
  it('makes nothing until a size is asked for, then keeps that many spares of it', async function () {
    const ops = new FakeOps();
    const pool = new SparePool(ops, silentLogger());
    expect(await pool.take(M64)).to.equal(undefined);
    expect(ops.pending).to.have.length(0);
    pool.want(M64);
    for (let i = 0; i < SPARES_PER_SIZE; i++) await ops.finish();
    await pool.idle();
    expect(ops.made).to.have.length(SPARES_PER_SIZE);
    expect(ops.pending).to.have.length(0);
  });

  it('hands out a spare of the size asked for only, each one once', async function () {
    const ops = new FakeOps();
    const pool = new SparePool(ops, silentLogger());
    pool.want(M64);
    for (let i = 0; i < SPARES_PER_SIZE; i++) await ops.finish();
    expect(await pool.take(G1)).to.equal(undefined);
    expect(await pool.take(undefined)).to.equal(undefined);
    const a = await pool.take(M64);
    const b = await pool.take(M64);
    expect(a).to.match(/^spares\/67108864-/);
    expect(b).to.match(/^spares\/67108864-/).and.not.equal(a);
    expect(await pool.take(M64)).to.equal(undefined);
  });

  it('a Create waits for the spare of its size being made, and only one Create gets it', async function () {
    const ops = new FakeOps();
    const pool = new SparePool(ops, silentLogger());
    pool.want(M64);
    await new Promise((r) => setImmediate(r));
    const first = pool.take(M64);
    const second = pool.take(M64);
    await ops.finish();
    expect(await first).to.match(/^spares\/67108864-/);
    expect(await second).to.equal(undefined);
  });

  it('keeps spares for the most recent sizes only and deletes the others', async function () {
    const ops = new FakeOps();
    const pool = new SparePool(ops, silentLogger());
    pool.want(M64);
    for (let i = 0; i < SPARES_PER_SIZE; i++) await ops.finish();
    const sizes = [G1, undefined].slice(0, SPARE_SIZES);
    for (const s of sizes) pool.want(s);
    for (let i = 0; i < SPARES_PER_SIZE * sizes.length; i++) await ops.finish();
    await pool.idle();
    expect(ops.removed.filter((p) => p.startsWith('spares/67108864-'))).to.have.length(SPARES_PER_SIZE);
    expect(await pool.take(M64)).to.equal(undefined);
    expect(await pool.take(undefined)).to.match(/^spares\/none-/);
  });

  it('stops after a failed make until the next Create asks again', async function () {
    const ops = new FakeOps();
    const pool = new SparePool(ops, silentLogger());
    pool.want(M64);
    await ops.finish(new Error('No space left on device'));
    await pool.idle();
    expect(ops.pending).to.have.length(0);
    expect(await pool.take(M64)).to.equal(undefined);
    pool.want(M64);
    await new Promise((r) => setImmediate(r));
    expect(ops.pending).to.have.length(1);
    await ops.finish();
    expect(await pool.take(M64)).to.match(/^spares\/67108864-/);
  });

  it('makes no more spares once stopped', async function () {
    const ops = new FakeOps();
    const pool = new SparePool(ops, silentLogger());
    pool.want(M64);
    await new Promise((r) => setImmediate(r));
    const stopped = pool.stop();
    await ops.finish();
    await stopped;
    pool.want(M64);
    expect(ops.pending).to.have.length(0);
  });
});
