import { expect } from 'chai';
import { startCluster, type Cluster } from './harness';
import { FerryCluster } from './ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';
import type { StandbyView } from '../../src/wire/records';

/*
 * Replication (issue 7 item 4) between namespace hosts: a volume on h1 with `-o replicate-to=h2
 * -o rpo=5s` under a steady write load keeps a standby on h2 whose lag (ferry volume inspect) stays
 * within the RPO; cut off, h2 falls behind and control records a `replication-late` event, and a
 * `replication-caught-up` one once it is back; a move to the standby then sends only the increment.
 */

const RPO = 5;
/** A container writing 256 KiB every 0.1 s (about 2.5 MiB/s) over 32 files, synced each time. */
const WRITER = 'i=0; while true; do dd if=/dev/urandom of=/data/w$((i % 32)) bs=256k count=1 2>/dev/null; sync; i=$((i+1)); sleep 0.1; done';
/** 48 MiB the standby must hold before the move: a full send would carry all of it. */
const WRITE_48M = 'mkdir -p /data/base && i=0; while [ $i -lt 12 ]; do dd if=/dev/urandom of=/data/base/f$i bs=1M count=4 2>/dev/null; i=$((i+1)); done; cd /data/base && md5sum * > /data/sums && sync';

interface Inspected {
  volume: { primaryNode: string; generation: number; replicas: string[]; standbys?: StandbyView[] };
  move: { state: string; source: string; target: string; bytesDone: number } | null;
  events: { kind: string; node: string | null; detail: string | null }[];
}

describe('cluster: replication keeps a standby within its RPO', function () {
  let cluster: Cluster;
  let ferry: FerryCluster;
  const inspect = (): Inspected => {
    const r = ferry.cli(cluster.host(1), ['volume', 'inspect', 'rep1']);
    if (r.code !== 0) throw new Error(`ferry volume inspect exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Inspected;
  };
  const standby = (): StandbyView => {
    const s = inspect().volume.standbys?.find((x) => x.node === 'h2');
    if (!s) throw new Error('inspect shows no standby on h2');
    return s;
  };

  before(async function () {
    cluster = await startCluster({ hosts: 2 });
    ferry = new FerryCluster(cluster);
    await ferry.start();
  });
  after(async function () {
    await ferry?.stop().catch(() => undefined);
    await cluster?.teardown();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) console.log(ferry.logs(60));
  });

  it('keeps the lag within the RPO under a steady write load (ferry volume inspect, docker volume inspect, metrics)', async function () {
    const [h1] = cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=512M', '-o', 'replicate-to=h2', '-o', `rpo=${RPO}s`, 'rep1']);
    const w = await h1.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', 'rep1:/data', TEST_IMAGE, 'sh', '-c', WRITE_48M], { timeoutMs: 120_000 });
    expect(w.code, w.stderr).to.equal(0);
    await waitFor('the first round (a full send) to reach h2', () => standby().snapshot !== null, 60_000, 500);
    await h1.dockerOk(['run', '-d', '--name', 'writer', '--volume-driver', 'ferry', '-v', 'rep1:/data', TEST_IMAGE, 'sh', '-c', WRITER]);
    // 20 s of samples, about 1 s apart: each shows the standby's lag as control computes it at that moment.
    const lags: number[] = [];
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      lags.push(standby().lagSeconds);
      await new Promise((r) => setTimeout(r, 700));
    }
    expect(lags.length).to.be.above(10);
    expect(Math.max(...lags), `lags: ${lags.join(' ')}`).to.be.at.most(RPO);
    const v = inspect();
    expect(v.volume.replicas).to.include('h2');
    expect(v.events.filter((e) => e.kind === 'replication-late'), 'no late standby under this load').to.deep.equal([]);
    // docker volume inspect: the Status carries each standby's lag.
    const status = JSON.parse(await h1.dockerOk(['volume', 'inspect', '-f', '{{json .Status}}', 'rep1'])) as { standbys?: { node: string; lagSeconds: number }[] };
    expect(status.standbys?.map((s) => s.node)).to.deep.equal(['h2']);
    expect(status.standbys?.[0].lagSeconds).to.be.at.most(RPO);
    // ferry volume ls: a LAG column.
    expect(ferry.cli(h1, ['volume', 'ls']).stdout).to.match(/rep1\s.*\bh2:\d+(\.\d)?s\b/);
    // Control's metrics: a lag gauge per volume and standby.
    const scraped = await ferry.scrapeControl();
    expect(scraped.get('ferry_replication_lag_seconds', { volume: 'rep1', standby: 'h2' })).to.be.within(0, RPO);
    // Old replication snapshots are pruned on both hosts: a few at most, not one per round.
    for (const h of cluster.hosts) {
      const reps = ferry.subvolumesOf(h, 'rep1').filter((p) => p.includes('/_replication.'));
      expect(reps.length, `${h.name}: ${reps.join(' ')}`).to.be.within(1, 3);
    }
  });

  it('records a late event when h2 is cut off, and a recovery once it is back', async function () {
    const h2 = cluster.host(2);
    h2.linkDown();
    try {
      await waitFor('a replication-late event for h2', () => inspect().events.some((e) => e.kind === 'replication-late' && e.node === 'h2'), 30_000, 500);
      expect(standby().late).to.equal(true);
    } finally {
      h2.linkUp();
    }
    await waitFor('a replication-caught-up event for h2', () => inspect().events.some((e) => e.kind === 'replication-caught-up' && e.node === 'h2'), 60_000, 500);
    const s = standby();
    expect(s.late).to.equal(false);
    expect(s.lagSeconds).to.be.at.most(RPO);
  });

  it('moves to the standby sending only what changed since its last round', async function () {
    const [h1, h2] = cluster.hosts;
    await h1.dockerOk(['rm', '-f', 'writer']);
    const m = ferry.cli(h2, ['volume', 'move', 'rep1', '--to', 'h2']);
    expect(m.code, m.stderr).to.equal(0);
    const v = inspect();
    expect(v.volume.primaryNode).to.equal('h2');
    expect(v.move).to.include({ state: 'done', source: 'h1', target: 'h2' });
    // The volume holds 56 MiB; the standby had all but the last few seconds of writes.
    expect(v.move!.bytesDone, 'bytes the move sent').to.be.below(16 * 2 ** 20);
    const check = await h2.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', 'rep1:/data', TEST_IMAGE, 'sh', '-c', 'cd /data/base && md5sum * | cmp - /data/sums && ls | wc -l']);
    expect(check.code, check.stderr).to.equal(0);
    expect(check.stdout).to.equal('12');
  });
});
