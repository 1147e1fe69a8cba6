import { FerryCluster } from '../test/cluster/ferry-cluster';
import { COUNTER, counterLines, loseHost, pluginReported, restoreHost, serviceNode } from '../test/cluster/failover-scenario';
import { startCluster, type Cluster } from '../test/cluster/harness';
import { TEST_IMAGE, waitFor } from '../test/support/docker';
import { cleanupStep, progress } from './bench-env';
import { markdownTable } from './report';

/** The timers the failover section runs with (printed beside the figures). */
export const FAILOVER_TIMERS = { heartbeatSeconds: 1, downAfterSeconds: 5, leaseSeconds: 10, leaseMarginSeconds: 1, rpoSeconds: 2 };

export interface FailoverFigures {
  timers: typeof FAILOVER_TIMERS;
  /** The baseline: Swarm alone rescheduling a task without a volume (host lost to task running elsewhere), s. */
  swarmRescheduleS: number;
  /** ferry: host lost to the counter writing on the standby, s. */
  rtoS: number;
  /** The window lost as control recorded it (snapshot time to the last heartbeat), s. */
  windowS: number;
  /** Counter lines (one per 100 ms) the lost host had written that the standby did not get. */
  linesLost: number;
}

/**
 * Failover RTO and data lost (issue 7 item 5) on the test cluster: three hosts in a Swarm, a service
 * writing a counter to a volume replicated to h2 with failover=auto; h1 lost. Beside it, the floor:
 * the same Swarm rescheduling a service without a volume after the same loss.
 */
export class FailoverBench {
  aborted = false;
  private cluster?: Cluster;
  private ferry?: FerryCluster;

  async run(): Promise<FailoverFigures> {
    const t = FAILOVER_TIMERS;
    progress('failover: a 3-host Swarm cluster');
    const cluster = (this.cluster = await startCluster({ hosts: 3, swarm: true, managers: 3, swarmInitArgs: ['--dispatcher-heartbeat', '1s'] }));
    const [h1, h2] = cluster.hosts;
    const timers = { heartbeatSeconds: t.heartbeatSeconds, downAfterSeconds: t.downAfterSeconds, leaseSeconds: t.leaseSeconds, leaseMarginSeconds: t.leaseMarginSeconds };
    const ferry = (this.ferry = new FerryCluster(cluster, { control: timers }));
    ferry.controlSettings = { control: timers };
    await ferry.start();
    await pluginReported(cluster, h1);
    for (const h of [h1, h2]) await h1.dockerOk(['node', 'update', '--label-add', 'db=yes', h.hostname]);

    // The baseline: a task without a volume, h1 lost, until it runs on h2.
    progress('failover: baseline, Swarm rescheduling a task without a volume');
    await h1.dockerOk(['node', 'update', '--availability', 'drain', h2.hostname]);
    await h1.dockerOk(['service', 'create', '--detach', '--name', 'plain', '--no-resolve-image', '--restart-delay', '0s', '--constraint', 'node.labels.db==yes', TEST_IMAGE, 'sleep', '3600']);
    await waitFor('plain to run on h1', async () => (await serviceNode(cluster, h1, 'plain')) === h1, 120_000, 250);
    await h1.dockerOk(['node', 'update', '--availability', 'active', h2.hostname]);
    let lostAt = await loseHost(ferry, h1);
    await waitFor('plain to run on h2', async () => (await serviceNode(cluster, h2, 'plain')) === h2, 120_000, 100);
    const swarmRescheduleS = (Date.now() - lostAt) / 1000;
    await restoreHost(ferry, h1);
    await h2.dockerOk(['service', 'rm', 'plain']);
    await pluginReported(cluster, h2);

    // ferry: the counter on a replicated volume, h1 lost.
    progress('failover: ferry, a counter on a volume with a standby on h2, failover=auto');
    await h2.dockerOk(['node', 'update', '--availability', 'drain', h2.hostname]);
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'replicate-to=h2', '-o', `rpo=${t.rpoSeconds}s`, '-o', 'failover=auto', 'counted']);
    await h2.dockerOk([
      'service', 'create', '--detach', '--name', 'counter', '--no-resolve-image', '--restart-delay', '0s', '--constraint', 'node.labels.db==yes',
      '--mount', 'type=volume,source=counted,target=/data,volume-driver=ferry', TEST_IMAGE, 'sh', '-c', COUNTER,
    ]);
    await waitFor('the counter to write on h1', () => counterLines(h1, 'counted').length > 20, 120_000, 250);
    await h2.dockerOk(['node', 'update', '--availability', 'active', h2.hostname]);
    // Several replication rounds under the write load.
    await new Promise((r) => setTimeout(r, 4 * t.rpoSeconds * 1000));
    lostAt = await loseHost(ferry, h1);
    const lastOnH1 = counterLines(h1, 'counted').length;
    let firstOnH2 = 0;
    let runningAt = 0;
    await waitFor('the counter to write on h2', () => {
      const n = counterLines(h2, 'counted');
      if (n.length && !runningAt) [runningAt, firstOnH2] = [Date.now(), n.length];
      return n.length > 0;
    }, 180_000, 100);
    const r = await ferry.controlRequest('POST', '/v1/agent/failoversOf', { args: ['counted'] });
    const f = (r.json.result as { lostFrom: string; lostTo: string }[])[0];
    return {
      timers: t,
      swarmRescheduleS,
      rtoS: (runningAt - lostAt) / 1000,
      windowS: (Date.parse(f.lostTo) - Date.parse(f.lostFrom)) / 1000,
      // The standby's log ends where its snapshot did; the new task's first line follows it.
      linesLost: Math.max(0, lastOnH1 - (firstOnH2 - 1)),
    };
  }

  async cleanup(): Promise<void> {
    for (const h of this.cluster?.hosts ?? []) h.linkUp();
    if (this.ferry) await cleanupStep('failover', 'stop ferry', () => this.ferry!.stop());
    if (this.cluster) await cleanupStep('failover', 'tear the cluster down', () => this.cluster!.teardown());
    this.ferry = undefined;
    this.cluster = undefined;
  }
}

/** The section's table: ferry's RTO beside Swarm's own reschedule, and what was lost. */
export function renderFailover(f: FailoverFigures): string {
  const t = f.timers;
  return [
    markdownTable(
      ['measure', 'figure', 'aim / baseline'],
      [
        ['Swarm reschedules a task without a volume (host lost to running elsewhere)', `${f.swarmRescheduleS.toFixed(1)} s`, 'the floor'],
        ['ferry failover RTO (host lost to the counter writing on the standby)', `${f.rtoS.toFixed(1)} s`, `< 30 s; ${(f.rtoS / f.swarmRescheduleS).toFixed(2)}x the floor`],
        ['window lost (newest replicated snapshot to the last heartbeat)', `${f.windowS.toFixed(1)} s`, `RPO ${t.rpoSeconds} s + the heartbeat`],
        ['counter lines lost (one per 100 ms)', String(f.linesLost), ''],
      ],
    ),
    '',
    `timers: heartbeat ${t.heartbeatSeconds} s, down after ${t.downAfterSeconds} s, lease ${t.leaseSeconds} s + margin ${t.leaseMarginSeconds} s, rpo ${t.rpoSeconds} s. ` +
      'Failover waits for the lease: RTO >= lease + margin + the reschedule.',
  ].join('\n');
}
