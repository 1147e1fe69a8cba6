import { expect } from 'chai';
import type { TestHost } from './harness';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';
import { snapshotListShape } from '../../src/wire/shapes';

/** Runs a one-off container with volume `vol` on host `h`. */
async function run(h: TestHost, vol: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return h.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', `${vol}:/data`, TEST_IMAGE, 'sh', '-c', script], { timeoutMs: 180_000 });
}

/*
 * snap (issue 7 item 1) across hosts: a volume's snapshots move with it (sent as increments in the
 * move's pre-copy), control's registry shows both hosts holding them, and each rolls back on the
 * target. Work on a volume is done on its primary: another host is told where to run it.
 */
describe('cluster: snapshots move with their volume', function () {
  const env = useFerryCluster({ hosts: 2 });

  const list = (h: TestHost, vol: string) => {
    const r = env.ferry.cli(h, ['snapshot', 'ls', vol, '--json']);
    expect(r.code, r.stderr).to.equal(0);
    return snapshotListShape.parse(JSON.parse(r.stdout));
  };

  it('a move carries five snapshots, and each rolls back on the target', async function () {
    const [h1, h2] = env.cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=128M', 'snaps']);
    // Five states, each with 4 MiB of its own data, each kept in a snapshot.
    for (let i = 1; i <= 5; i++) {
      const w = await run(h1, 'snaps', `echo ${i} > /data/n && dd if=/dev/urandom of=/data/blob${i} bs=1M count=4 2>/dev/null && md5sum /data/blob* > /data/sums && sync`);
      expect(w.code, w.stderr).to.equal(0);
      const s = env.ferry.cli(h1, ['snapshot', 'create', 'snaps', `s${i}`]);
      expect(s.code, s.stderr).to.equal(0);
    }
    expect((await run(h1, 'snaps', 'echo 6 > /data/n && sync')).code).to.equal(0);
    // Work is done on the primary: h2 is told where.
    const elsewhere = env.ferry.cli(h2, ['snapshot', 'create', 'snaps', 'x']);
    expect(elsewhere.code).to.equal(4);
    expect(elsewhere.stderr).to.match(/volume snaps lives on h1, not h2: run it on h1/);

    const before = list(h2, 'snaps');
    expect(before.map((s) => [s.name, s.hosts])).to.deep.equal([1, 2, 3, 4, 5].map((i) => [`s${i}`, ['h1']]));

    const m = env.ferry.cli(h2, ['volume', 'move', 'snaps', '--to', 'h2']);
    expect(m.code, m.stderr).to.equal(0);
    // The same list, now held on both hosts; the same answer from either host.
    const after = list(h1, 'snaps');
    expect(after.map((s) => [s.name, s.hosts, s.createdAt])).to.deep.equal(before.map((s) => [s.name, ['h1', 'h2'], s.createdAt]));
    expect(list(h2, 'snaps')).to.deep.equal(after);
    const moved = JSON.parse(env.ferry.cli(h2, ['volume', 'inspect', 'snaps']).stdout);
    expect(moved.volume).to.deep.include({ primaryNode: 'h2', snapshots: { count: 5, newest: 's5', newestAt: before[4].createdAt } });
    // Increments: 5 x 4 MiB and the live data's little more, not five full copies (which would be 60 MiB).
    expect(moved.move.bytesDone).to.be.below(30 * 2 ** 20);
    expect((await run(h2, 'snaps', 'cat /data/n')).stdout).to.equal('6');

    for (let i = 5; i >= 1; i--) {
      const rb = env.ferry.cli(h2, ['volume', 'rollback', 'snaps', `s${i}`]);
      expect(rb.code, rb.stderr).to.equal(0);
      const r = await run(h2, 'snaps', 'cat /data/n && md5sum -c /data/sums >/dev/null && ls /data | grep -c blob');
      expect(r.stdout.split('\n'), r.stderr).to.deep.equal([String(i), String(i)]);
    }
  });

  it('refuses a rollback while a container uses the volume, naming it', async function () {
    const h2 = env.cluster.host(2);
    await h2.dockerOk(['run', '-d', '--name', 'holder', '-v', 'snaps:/data', TEST_IMAGE, 'sleep', '600']);
    try {
      // The container's name is looked up a moment after its Mount.
      let refused = env.ferry.cli(h2, ['volume', 'rollback', 'snaps', 's1']);
      await waitFor('the holder named', () => {
        refused = env.ferry.cli(h2, ['volume', 'rollback', 'snaps', 's1']);
        return /containers: holder/.test(refused.stderr);
      }, 15_000);
      expect(refused.code).to.equal(4);
      expect(refused.stderr).to.match(/volume snaps is in use: mounted on host h2 .*\(containers: holder\)/);
    } finally {
      await h2.dockerOk(['rm', '-f', 'holder']);
    }
  });
});
