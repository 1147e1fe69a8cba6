import { expect } from 'chai';
import type { TestHost } from './harness';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE } from '../support/docker';
import { destroyPools, testPoolName, zfsMissing } from '../support/zfs';

/** Runs a one-off container with volume `vol` on host `h`. */
async function run(h: TestHost, vol: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return h.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', `${vol}:/data`, TEST_IMAGE, 'sh', '-c', script], { timeoutMs: 180_000 });
}

// 20 MiB in 40 files of random data, and a checksum list of them.
const WRITE = 'mkdir -p /data/files && i=0; while [ $i -lt 40 ]; do dd if=/dev/urandom of=/data/files/f$i bs=512k count=1 2>/dev/null; i=$((i+1)); done; cd /data/files && md5sum * > /data/sums && sync';
const CHECK = 'cd /data/files && md5sum * | cmp - /data/sums && ls | wc -l';

/**
 * zfs volumes moving between test hosts. The hosts share the root mount namespace (they differ in
 * network namespace and dockerd), so one zfs-fuse daemon serves both; each agent has a pool of its
 * own (pool names are global to the daemon), made by ferry on a file under its data dir.
 */
describe('cluster: zfs volumes move between hosts', function () {
  const pools: string[] = [];

  // Registered before useFerryCluster's hooks: once a before hook skips, mocha runs no more of them, so no host starts.
  before(function () {
    const missing = zfsMissing();
    if (missing.length > 0) {
      console.log(`    SKIPPED cluster zfs moves: this machine lacks ${missing.join(', ')}`);
      this.skip();
    }
  });
  const env = useFerryCluster({
    hosts: 2,
    start: async (ferry, cluster) => {
      await ferry.startControl();
      for (const h of cluster.hosts) {
        const pool = testPoolName();
        pools.push(pool);
        await ferry.startAgentWith(h, { zfs: { poolName: pool, poolSize: '1G' } });
      }
    },
    stop: async (ferry) => {
      await ferry.stop().catch(() => undefined);
      // Before the hosts' dirs go: the pools' files are in them.
      destroyPools(pools);
    },
  });

  it('moves a zfs volume written on h1 to h2 with its data, and back sending only an increment', async function () {
    const [h1, h2] = env.cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'backend=zfs', '-o', 'size=256M', 'zdata']);
    expect(env.ferry.cli(h2, ['volume', 'ls']).stdout).to.match(/zdata\s+zfs\s+256\.0 MiB/);
    const w = await run(h1, 'zdata', WRITE);
    expect(w.code, w.stderr).to.equal(0);

    const there = await run(h2, 'zdata', CHECK);
    expect(there.code, there.stderr).to.equal(0);
    expect(there.stdout).to.equal('40');
    expect(JSON.parse(env.ferry.cli(h2, ['volume', 'inspect', 'zdata']).stdout).volume).to.include({ primaryNode: 'h2', generation: 2 });

    const c = await run(h2, 'zdata', 'dd if=/dev/urandom of=/data/changed bs=1M count=2 2>/dev/null && sync');
    expect(c.code, c.stderr).to.equal(0);
    const m = env.ferry.cli(h2, ['volume', 'move', 'zdata', '--to', 'h1']);
    expect(m.code, m.stderr).to.equal(0);
    const inspected = JSON.parse(env.ferry.cli(h1, ['volume', 'inspect', 'zdata']).stdout);
    expect(inspected.volume).to.include({ primaryNode: 'h1', generation: 3 });
    expect(inspected.move).to.include({ state: 'done', source: 'h2', target: 'h1' });
    // Only the change travelled (2 MiB of 22): h1 kept its copy of the first move's final snapshot.
    expect(inspected.move.bytesDone).to.be.below(8 * 2 ** 20);
    const back = await run(h1, 'zdata', `${CHECK} && wc -c < /data/changed`);
    expect(back.code, back.stderr).to.equal(0);
    expect(back.stdout.split('\n')).to.deep.equal(['40', String(2 * 2 ** 20)]);
  });
});
