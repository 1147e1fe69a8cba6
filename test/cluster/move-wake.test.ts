import { expect } from 'chai';
import { startCluster, type Cluster } from './harness';
import { FerryCluster } from './ferry-cluster';

/**
 * `ferry volume move` on the source host: the target hears of the move from the source at once
 * (a 'wake' over the transfer channel, then a heartbeat), not at its next heartbeat. Heartbeats here
 * come every 60 s, so a move that ends well within 60 s of the agents' start can only have been
 * started by the wake: each agent heartbeats once at its start and next 60 s later.
 */
describe('cluster: a move asked for on its source starts on its target at once (wake)', function () {
  const HEARTBEAT_S = 60;
  const timers = { heartbeatSeconds: HEARTBEAT_S, leaseSeconds: 2 * HEARTBEAT_S + 10, downAfterSeconds: 5 * HEARTBEAT_S };
  let cluster: Cluster;
  let ferry: FerryCluster;
  let agentsStarting: number;

  before(async function () {
    cluster = await startCluster({ hosts: 2 });
    ferry = new FerryCluster(cluster, { control: timers });
    ferry.controlSettings = { control: timers };
    agentsStarting = Date.now();
    await ferry.start();
  });
  after(async function () {
    await ferry?.stop().catch(() => undefined);
    await cluster?.teardown();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) console.log(ferry.logs());
  });

  it('moves a volume h1 -> h2 long before h2 heartbeats again', async function () {
    const [h1, h2] = cluster.hosts;
    const created = ferry.cli(h1, ['volume', 'create', 'woken', '-o', 'size=64M']);
    expect(created.code, created.stderr).to.equal(0);
    const moved = ferry.cli(h1, ['volume', 'move', 'woken', '--to', 'h2'], (HEARTBEAT_S - 5) * 1000);
    expect(moved.code, moved.stderr).to.equal(0);
    expect(moved.stdout).to.include('woken is now on h2');
    // h2's next regular heartbeat comes no sooner than 60 s after its agent started.
    expect(Date.now() - agentsStarting).to.be.below(HEARTBEAT_S * 1000);
    const v = JSON.parse(ferry.cli(h2, ['volume', 'inspect', 'woken', '--json']).stdout) as { volume: { primaryNode: string } };
    expect(v.volume.primaryNode).to.equal('h2');
  });
});
