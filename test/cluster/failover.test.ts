import { expect } from 'chai';
import { join } from 'node:path';
import { COUNTER, counterLines, loseHost, numberLines, pluginReported, restoreHost } from './failover-scenario';
import type { TestHost } from './harness';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';

/*
 * When control or a host is away (issue 7, items 5 and 6; DESIGN: "When control or a host is away").
 * Control killed: containers on a volume's primary keep starting while the host's lease holds and are
 * refused after it with a clear error; dockerd never makes an empty `local` volume of a ferry name.
 * A host lost: a Swarm service's volume fails over to its standby once the host's lease is gone; the
 * host back is fenced, its late writes kept as a snapshot, and it keeps a standby copy.
 */

/** Short, so that the test sees the lease run out: a primary may mount this long without control. */
const LEASE_S = 10;

describe('cluster: control away', function () {
  const env = useFerryCluster({ hosts: 2, settings: { control: { leaseSeconds: LEASE_S } }, logLines: 60 });
  let h1: TestHost;
  let h2: TestHost;
  before(function () {
    [h1, h2] = env.cluster.hosts;
  });

  /** Every volume dockerd of `h` lists, as "driver name". */
  async function dockerVolumes(h: TestHost): Promise<string[]> {
    return (await h.dockerOk(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}'])).split('\n').filter(Boolean).sort();
  }

  async function controlLeasesOn(volume: string): Promise<string[]> {
    const r = await env.ferry.controlRequest('POST', '/v1/agent/leasesOf', { args: [volume] });
    return ((r.json.result ?? []) as { node: string; mountId: string }[]).map((l) => `${l.node} ${l.mountId}`);
  }

  it('control killed: the primary keeps starting containers for the lease, then refuses with a clear error; never a local stand-in', async function () {
    // db lives on h1 with a file in it; other lives on h2. Both are known to h1's dockerd and agent.
    await h1.dockerOk(['run', '--rm', '-v', 'db:/data', '--volume-driver', 'ferry', TEST_IMAGE, 'sh', '-c', 'echo kept > /data/f && sync']);
    await h2.dockerOk(['volume', 'create', '-d', 'ferry', 'other']);
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
    await h1.dockerOk(['volume', 'inspect', 'other']);

    await env.ferry.killControl('SIGKILL');
    const killedAt = Date.now();

    // Without --volume-driver, as a Compose file or a user would: dockerd asks ferry's Get (it has
    // the name recorded for ferry); an Err there would make it create an empty local volume.
    const read = await h1.docker(['run', '--rm', '-v', 'db:/data', TEST_IMAGE, 'cat', '/data/f']);
    expect(read.code, read.stderr).to.equal(0);
    expect(read.stdout.trim()).to.equal('kept');
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
    const status = JSON.parse(await h1.dockerOk(['volume', 'inspect', 'db']))[0];
    expect(status.Driver).to.equal('ferry');
    expect(status.Status.control).to.match(/^unreachable/);
    expect(status.Status.primary).to.equal('h1');

    // A container that stays, started while control is away: control hears of its Mount ID later.
    await h1.dockerOk(['run', '-d', '--name', 'keeper', '-v', 'db:/data', TEST_IMAGE, 'sleep', '600']);
    // A volume primary elsewhere cannot come here without control: refused, and no local stand-in.
    const elsewhere = await h1.docker(['run', '--rm', '-v', 'other:/data', TEST_IMAGE, 'true']);
    expect(elsewhere.code).to.not.equal(0);
    expect(elsewhere.stderr).to.match(/primary is h2/);
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);

    // Starts keep working until the lease runs out, then fail, naming it.
    let refused = '';
    let lastOkAt = Date.now();
    await waitFor(
      'a start to be refused once the lease has run out',
      async () => {
        const r = await h1.docker(['run', '--rm', '-v', 'db:/data', TEST_IMAGE, 'cat', '/data/f']);
        if (r.code === 0) {
          expect(r.stdout.trim()).to.equal('kept');
          lastOkAt = Date.now();
          return false;
        }
        refused = r.stderr;
        return true;
      },
      (LEASE_S + 30) * 1000,
      500,
    );
    const refusedAfterS = (Date.now() - killedAt) / 1000;
    console.log(`      control killed; starts worked for ${((lastOkAt - killedAt) / 1000).toFixed(1)} s, refused after ${refusedAfterS.toFixed(1)} s (lease ${LEASE_S} s)`);
    expect(refused).to.match(/lease on its primary volumes expired at/);
    expect(refused).to.match(/unreachable since/);
    expect(refusedAfterS).to.be.at.most(LEASE_S + 5);
    expect((lastOkAt - killedAt) / 1000).to.be.at.least(LEASE_S - 3);
    // Still no stand-in, and the volume is still ferry's.
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
    expect(JSON.parse(await h1.dockerOk(['volume', 'inspect', 'db']))[0].Driver).to.equal('ferry');

    // Control back: it hears of keeper's mount, and starts work again.
    await env.ferry.startControl();
    await waitFor('control to hold the lease of the container started while it was away', async () => (await controlLeasesOn('db')).some((l) => l.startsWith('h1 ')), 30_000, 250);
    const again = await h1.docker(['run', '--rm', '-v', 'db:/data', TEST_IMAGE, 'cat', '/data/f']);
    expect(again.code, again.stderr).to.equal(0);
    await h1.dockerOk(['rm', '-f', 'keeper']);
    await waitFor('the last lease to go', async () => (await controlLeasesOn('db')).length === 0, 30_000, 250);
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
  });
});

/** The failover cluster's lease and control's timers: short, so that the test sees a failover within seconds. */
const FAILOVER_LEASE_S = 6;

describe('cluster: fenced failover of a Swarm service when its host is lost', function () {
  const env = useFerryCluster({
    hosts: 3,
    swarm: true,
    managers: 3,
    swarmInitArgs: ['--dispatcher-heartbeat', '1s'],
    settings: { control: { leaseSeconds: FAILOVER_LEASE_S } },
    controlSettings: { control: { leaseSeconds: FAILOVER_LEASE_S, leaseMarginSeconds: 1, downAfterSeconds: 3, heartbeatSeconds: 0.5 } },
    start: async (ferry, cluster) => {
      await ferry.start();
      await pluginReported(cluster, cluster.host(1));
    },
    stop: async (ferry, cluster) => {
      for (const h of cluster.hosts) h.linkUp();
      await ferry.stop().catch(() => undefined);
    },
    logLines: 80,
  });
  let h1: TestHost;
  let h2: TestHost;
  before(function () {
    [h1, h2] = env.cluster.hosts;
  });

  const lines = numberLines;
  const liveLog = (h: TestHost): number[] => counterLines(h, 'counted');
  async function agentCall<T>(call: string, args: unknown[]): Promise<T> {
    const r = await env.ferry.controlRequest('POST', `/v1/agent/${call}`, { args });
    if (r.status !== 200) throw new Error(`${call} answered ${r.status}: ${JSON.stringify(r.json)}`);
    return r.json.result as T;
  }

  it('h1 lost: the service runs on the standby within the RTO, the counter is there up to the last replicated snapshot, the window recorded; h1 back: fenced, late writes kept, a standby', async function () {
    // The service may run on h1 and h2 (labels); h2 is drained until the task runs on h1.
    for (const h of [h1, h2]) await h1.dockerOk(['node', 'update', '--label-add', 'db=yes', h.hostname]);
    await h1.dockerOk(['node', 'update', '--availability', 'drain', h2.hostname]);
    const p = env.ferry.cli(h1, ['policy', 'create', 'standby2', '--replicate-to', 'h2', '--rpo', '2s', '--failover', 'auto']);
    expect(p.code, p.stderr).to.equal(0);
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'policy=standby2', 'counted']);
    await h1.dockerOk([
      'service', 'create', '--detach', '--name', 'counter', '--no-resolve-image', '--restart-delay', '0s', '--constraint', 'node.labels.db==yes',
      '--mount', 'type=volume,source=counted,target=/data,volume-driver=ferry', TEST_IMAGE, 'sh', '-c', COUNTER,
    ]);
    await waitFor('the task to write on h1', () => liveLog(h1).length > 20, 120_000, 250);
    await h1.dockerOk(['node', 'update', '--availability', 'active', h2.hostname]);
    type Snap = { name: string; hosts: string[]; createdAt: string };
    await waitFor('h2 to hold a replication snapshot', async () => (await agentCall<Snap[]>('snapshotsOf', ['counted'])).filter((s) => s.hosts.includes('h2')).length >= 1, 60_000, 500);
    await new Promise((r) => setTimeout(r, 3000)); // a few more rounds under the write load

    // h1 lost: its agent killed, its dockerd stopped, its link down.
    const lostAt = await loseHost(env.ferry, h1);
    const lastOnH1 = liveLog(h1).length;
    let runningAt = 0;
    await waitFor(
      'the counter to write on h2',
      () => {
        const n = liveLog(h2);
        if (n.length > 0 && runningAt === 0) runningAt = Date.now();
        return n.length > 5;
      },
      120_000,
      100,
    );
    const rtoS = (runningAt - lostAt) / 1000;
    const v = await agentCall<{ primaryNode: string; generation: number }>('getVolume', ['counted']);
    expect([v.primaryNode, v.generation]).to.deep.equal(['h2', 2]);
    const [f] = await agentCall<{ from: string; to: string; snapshot: string; lostFrom: string; lostTo: string }[]>('failoversOf', ['counted']);
    expect(f).to.include({ from: 'h1', to: 'h2' });
    const n2 = liveLog(h2);
    // No gap: the counter resumed from what the snapshot held; what h1 wrote after it is the window lost.
    n2.forEach((x, i) => expect(x, `line ${i + 1} on h2`).to.equal(i + 1));
    const events = await agentCall<{ kind: string; detail: string }[]>('eventsOf', ['counted']);
    const ev = events.find((e) => e.kind === 'failover');
    expect(ev?.detail).to.match(/lost window: .* to /);
    const windowS = (Date.parse(f.lostTo) - Date.parse(f.lostFrom)) / 1000;
    console.log(`      RTO (h1 lost to the counter writing on h2): ${rtoS.toFixed(1)} s; window lost ${windowS.toFixed(1)} s (snapshot ${f.snapshot}); h1 had written ${lastOnH1} lines`);
    // The aim (< 30 s) is the bench's to measure; here a bound that a loaded CI machine keeps.
    expect(rtoS).to.be.below(60);

    // h1 back: it never mounts its copy again; its late writes become snapshot lost-gen1-h1; it keeps a standby copy.
    await restoreHost(env.ferry, h1);
    await waitFor('h1 to be fenced', async () => (await agentCall<{ fenced: boolean }[]>('failoversOf', ['counted']))[0].fenced, 60_000, 500);
    const snaps = await agentCall<(Snap & { origin: string })[]>('snapshotsOf', ['counted']);
    const kept = snaps.find((s) => s.name === 'lost-gen1-h1');
    expect(kept, JSON.stringify(snaps)).to.include({ origin: 'fenced' });
    expect(kept!.hosts).to.deep.equal(['h1']);
    // The kept snapshot holds every line h1 wrote, the late ones included: its container, cut off with
    // its dockerd killed, may have written on until h1 came back (containerd keeps it running).
    const keptLines = lines(join(env.ferry.btrfsPool(h1), 'snapshots', 'counted', 'lost-gen1-h1', 'log'));
    expect(keptLines.length).to.be.at.least(lastOnH1);
    keptLines.forEach((x, i) => expect(x, `line ${i + 1} kept on h1`).to.equal(i + 1));
    console.log(`      kept on h1 as lost-gen1-h1: ${keptLines.length} lines`);
    const after = await agentCall<{ primaryNode: string; replicas: string[] }>('getVolume', ['counted']);
    expect(after.primaryNode).to.equal('h2');
    expect(after.replicas).to.include('h1');
    expect((await agentCall<{ node: string }[]>('leasesOf', ['counted'])).map((l) => l.node)).to.not.include('h1');
    await h2.dockerOk(['service', 'rm', 'counter']);
  });
});
