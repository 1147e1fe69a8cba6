import { expect } from 'chai';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';
import type { StandbyView } from '../../src/wire/records';

/*
 * Replication (issue 7 item 4) between namespace hosts: a volume on h1 whose policy says
 * `--replicate-to h2 --rpo 5s`, under a steady write load, keeps a standby on h2 whose lag (ferry volume inspect) stays
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
  events: { id: number; kind: string; node: string | null; detail: string | null }[];
}

describe('cluster: replication keeps a standby within its RPO', function () {
  const env = useFerryCluster({ hosts: 2, logLines: 60 });
  const inspect = (): Inspected => {
    const r = env.ferry.cli(env.cluster.host(1), ['volume', 'inspect', 'rep1']);
    if (r.code !== 0) throw new Error(`ferry volume inspect exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Inspected;
  };
  const standby = (): StandbyView => {
    const s = inspect().volume.standbys?.find((x) => x.node === 'h2');
    if (!s) throw new Error('inspect shows no standby on h2');
    return s;
  };
  /** The same view as ferry volume inspect, read from control's REST API (quick enough to sample often). */
  const standbyNow = async (): Promise<StandbyView> => {
    const r = await env.ferry.controlRequest('GET', '/v1/volumes/rep1');
    const s = (r.json.volume as Inspected['volume']).standbys?.find((x) => x.node === 'h2');
    if (!s) throw new Error(`control shows no standby on h2: ${JSON.stringify(r.json).slice(0, 500)}`);
    return s;
  };

  it('keeps the lag within the RPO under a steady write load (ferry volume inspect, docker volume inspect, metrics)', async function () {
    const [h1] = env.cluster.hosts;
    const p = env.ferry.cli(h1, ['policy', 'create', 'standby5', '--replicate-to', 'h2', '--rpo', `${RPO}s`]);
    expect(p.code, p.stderr).to.equal(0);
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=512M', '-o', 'policy=standby5', 'rep1']);
    const w = await h1.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', 'rep1:/data', TEST_IMAGE, 'sh', '-c', WRITE_48M], { timeoutMs: 120_000 });
    expect(w.code, w.stderr).to.equal(0);
    await waitFor('the first round (a full send) to reach h2', () => standby().snapshot !== null, 60_000, 500);
    // A new standby is late until its first (full) round lands; from then on it must keep up.
    await waitFor('the standby to be within its RPO', async () => !(await standbyNow()).late, 30_000, 250);
    const since = Math.max(0, ...inspect().events.map((e) => e.id));
    await h1.dockerOk(['run', '-d', '--name', 'writer', '--volume-driver', 'ferry', '-v', 'rep1:/data', TEST_IMAGE, 'sh', '-c', WRITER]);
    // 20 s of samples, a quarter second apart: each the standby's lag as control computes it then.
    const lags: number[] = [];
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      lags.push((await standbyNow()).lagSeconds);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(lags.length).to.be.above(20);
    expect(Math.max(...lags), `lags: ${lags.join(' ')}`).to.be.at.most(RPO);
    const v = inspect();
    expect(v.volume.replicas).to.include('h2');
    expect(v.events.filter((e) => e.id > since && e.kind === 'replication-late'), 'no late standby under this load').to.deep.equal([]);
    // docker volume inspect: the Status carries each standby's lag.
    const status = JSON.parse(await h1.dockerOk(['volume', 'inspect', '-f', '{{json .Status}}', 'rep1'])) as { standbys?: { node: string; lagSeconds: number }[] };
    expect(status.standbys?.map((s) => s.node)).to.deep.equal(['h2']);
    expect(status.standbys?.[0].lagSeconds).to.be.at.most(RPO);
    // ferry volume ls: a LAG column.
    expect(env.ferry.cli(h1, ['volume', 'ls']).stdout).to.match(/rep1\s.*\bh2:\d+(\.\d)?s\b/);
    // Control's metrics: a lag gauge per volume and standby.
    const scraped = await env.ferry.scrapeControl();
    expect(scraped.get('ferry_replication_lag_seconds', { volume: 'rep1', standby: 'h2' })).to.be.within(0, RPO);
    // Old replication snapshots are pruned on both hosts: a few at most, not one per round.
    for (const h of env.cluster.hosts) {
      const reps = env.ferry.subvolumesOf(h, 'rep1').filter((p) => p.includes('/_replication.'));
      expect(reps.length, `${h.name}: ${reps.join(' ')}`).to.be.within(1, 3);
    }
  });

  it('records a late event when h2 is cut off, and a recovery once it is back', async function () {
    const h2 = env.cluster.host(2);
    const since = Math.max(0, ...inspect().events.map((e) => e.id));
    const after = (kind: string) => (): boolean => inspect().events.some((e) => e.id > since && e.kind === kind && e.node === 'h2');
    h2.linkDown();
    try {
      await waitFor('a replication-late event for h2', after('replication-late'), 30_000, 500);
      expect(standby().late).to.equal(true);
    } finally {
      h2.linkUp();
    }
    await waitFor('a replication-caught-up event for h2', after('replication-caught-up'), 60_000, 500);
    const s = standby();
    expect(s.late).to.equal(false);
    expect(s.lagSeconds).to.be.at.most(RPO);
  });

  it('moves to the standby sending only what changed since its last round', async function () {
    const [h1, h2] = env.cluster.hosts;
    await h1.dockerOk(['rm', '-f', 'writer']);
    const m = env.ferry.cli(h2, ['volume', 'move', 'rep1', '--to', 'h2']);
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
