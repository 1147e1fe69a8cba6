import { expect } from 'chai';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';

/**
 * `ferry volume move` on the source host: the target hears of the move from the source at once
 * (a 'wake' over the transfer channel, then a heartbeat), not at its next heartbeat. Heartbeats here
 * come every 60 s, so a move that ends well within 60 s of the agents' start can only have been
 * started by the wake: each agent heartbeats once at its start and next 60 s later.
 */
describe('cluster: a move asked for on its source starts on its target at once (wake)', function () {
  const HEARTBEAT_S = 60;
  const timers = { heartbeatSeconds: HEARTBEAT_S, leaseSeconds: 2 * HEARTBEAT_S + 10, downAfterSeconds: 5 * HEARTBEAT_S };
  let agentsStarting: number;
  const env = useFerryCluster({
    hosts: 2,
    settings: { control: timers },
    controlSettings: { control: timers },
    start: async (ferry) => {
      agentsStarting = Date.now();
      await ferry.start();
    },
  });

  it('moves a volume h1 -> h2 long before h2 heartbeats again', async function () {
    const [h1, h2] = env.cluster.hosts;
    const created = env.ferry.cli(h1, ['volume', 'create', 'woken', '-o', 'size=64M']);
    expect(created.code, created.stderr).to.equal(0);
    const moved = env.ferry.cli(h1, ['volume', 'move', 'woken', '--to', 'h2'], (HEARTBEAT_S - 5) * 1000);
    expect(moved.code, moved.stderr).to.equal(0);
    expect(moved.stdout).to.include('woken is now on h2');
    // h2's next regular heartbeat comes no sooner than 60 s after its agent started.
    expect(Date.now() - agentsStarting).to.be.below(HEARTBEAT_S * 1000);
    const v = JSON.parse(env.ferry.cli(h2, ['volume', 'inspect', 'woken', '--json']).stdout) as { volume: { primaryNode: string } };
    expect(v.volume.primaryNode).to.equal('h2');
  });

  it('with --restart-containers, asked for on the source: stops the container there at once and starts it on h2', async function () {
    const [h1, h2] = env.cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'app1']);
    await h1.dockerOk(['run', '-d', '--name', 'app', '-v', 'app1:/data', TEST_IMAGE, 'sh', '-c', 'trap "exit 0" TERM; while true; do echo x >> /data/log; sleep 0.2; done']);
    // h1 stops its containers when a heartbeat answer names the move: at once, not 60 s on.
    const moved = env.ferry.cli(h1, ['volume', 'move', 'app1', '--to', 'h2', '--restart-containers'], (HEARTBEAT_S - 5) * 1000);
    expect(moved.code, moved.stderr).to.equal(0);
    expect(Date.now() - agentsStarting).to.be.below(HEARTBEAT_S * 1000);
    expect(await h1.dockerOk(['inspect', '-f', '{{.State.Running}}', 'app'])).to.equal('false');
    await waitFor('the container to run again on h2', async () => (await h2.docker(['inspect', '-f', '{{.State.Running}}', 'app'])).stdout === 'true', 10_000, 250);
    await h2.dockerOk(['rm', '-f', 'app']);
    await h1.dockerOk(['rm', '-f', 'app']);
  });
});
