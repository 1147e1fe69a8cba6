import { expect } from 'chai';
import { MIN_FREE_BYTES, ensurePoolHasRoom } from '../../../src/agent/backends/common';
import { isFerryError } from '../../../src/errors';
import { FakeRunner } from '../../support/fake-runner';

const MiB = 1024 * 1024;
const figures = (freeBytes: number) => () => Promise.resolve({ totalBytes: 1024 * MiB, freeBytes });
const PROBE = /^\/pool\/\.ferry-tmp-room-probe-[0-9a-f]{8}$/;

describe('ensurePoolHasRoom', function () {
  let runner: FakeRunner;
  beforeEach(function () {
    runner = new FakeRunner();
  });
  afterEach(function () {
    runner.verify();
  });

  it('takes statfs at its word when it shows room: no command runs', async function () {
    await ensurePoolHasRoom('loop', '/pool', { runner, measure: figures(MIN_FREE_BYTES) });
    expect(runner.calls).to.deep.equal([]);
  });

  it('asks the filesystem for the room for real when statfs looks full, and lets a success through (XFS frees in the background)', async function () {
    runner.expect(['fallocate', '--length', String(16 * MiB), PROBE]);
    await ensurePoolHasRoom('loop', '/pool', { runner, measure: figures(0) });
  });

  it('refuses with POOL_FULL when the filesystem answers ENOSPC, naming the pool and its free space', async function () {
    runner.expect(['fallocate', '--length', String(16 * MiB), PROBE], { exitCode: 1, stderr: 'fallocate: fallocate failed: No space left on device' });
    try {
      await ensurePoolHasRoom('loop', '/pool', { runner, measure: figures(3 * MiB) });
      expect.fail('a full pool was not refused');
    } catch (err) {
      expect(isFerryError(err, 'POOL_FULL'), String(err)).to.equal(true);
      expect((err as Error).message).to.equal('the loop pool at /pool is full (3 MiB free): remove volumes or snapshots, or grow the pool');
    }
  });

  it('refuses on statfs alone without a runner (btrfs judges after its own commit)', async function () {
    try {
      await ensurePoolHasRoom('btrfs', '/pool', { measure: figures(0) });
      expect.fail('a full pool was not refused');
    } catch (err) {
      expect(isFerryError(err, 'POOL_FULL'), String(err)).to.equal(true);
    }
  });
});

describe('FakeRunner', function () {
  it('fails a run nobody expected, and verify() reports it and the unused expectations', async function () {
    const r = new FakeRunner().expect(['true']);
    let thrown: unknown;
    await r.run(['false']).catch((err: unknown) => (thrown = err));
    expect(String(thrown)).to.match(/unexpected command false; still expected:\n  true/);
    expect(() => r.verify()).to.throw(/expected but never run:\n  true\nrun but not expected:\n  false/);
  });

  it('answers a failing exit with CommandFailedError unless the caller tolerates it', async function () {
    const r = new FakeRunner().expect(['du', 'x'], { exitCode: 1, stdout: 'partial' }, { times: 2 });
    expect((await r.run(['du', 'x'], { okExitCodes: [1] })).stdout).to.equal('partial');
    const err = await r.run(['du', 'x']).catch((e: unknown) => e);
    expect(isFerryError(err, 'COMMAND_FAILED'), String(err)).to.equal(true);
    r.verify();
  });
});
