import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestHost } from './harness';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';

// Appends a counter, one line per 100 ms, resuming from the last line: a gap or a restart from 1
// would show lost data.
const COUNTER = 'i=$(tail -n 1 /data/log 2>/dev/null || echo 0); while true; do i=$((i+1)); echo $i >> /data/log; sync; sleep 0.1; done';

function logLines(h: TestHost, volume: string): number[] {
  const f = join(h.dataDir, 'mounts', volume, 'log');
  if (!existsSync(f)) return [];
  try {
    return readFileSync(f, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('cluster: a Swarm service whose task is rescheduled takes its data along', function () {
  const env = useFerryCluster({
    hosts: 3,
    swarm: true,
    swarmInitArgs: ['--dispatcher-heartbeat', '1s'],
    start: async (ferry, cluster) => {
      await ferry.start();
      // Swarm places a volume-driver=ferry task only on nodes whose description lists the plugin; a
      // node sends its description again some seconds after dockerd activated the plugin.
      await waitFor('every node to report the ferry plugin to Swarm', async () => {
        for (const h of cluster.hosts) {
          const plugins = await cluster.host(1).dockerOk(['node', 'inspect', h.hostname, '--format', '{{json .Description.Engine.Plugins}}']);
          if (!/"Type":"Volume","Name":"ferry"/.test(plugins)) return false;
        }
        return true;
      }, 90_000, 1000);
    },
    logLines: 40,
  });

  it('drains the node of a stateful task: the task moves, the data follows intact, downtime measured', async function () {
    const manager = env.cluster.host(1);
    await manager.dockerOk([
      'service', 'create', '--detach', '--name', 'counter', '--no-resolve-image', '--restart-delay', '0s',
      '--mount', 'type=volume,source=counted,target=/data,volume-driver=ferry,volume-opt=size=256M',
      TEST_IMAGE, 'sh', '-c', COUNTER,
    ]);
    const nodeOf = async (): Promise<TestHost | undefined> => {
      const out = await manager.dockerOk(['service', 'ps', 'counter', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
      const running = out.split('\n').find((l) => / Running /.test(l));
      return running ? env.cluster.hosts.find((h) => h.hostname === running.split(' ')[0]) : undefined;
    };
    let first: TestHost | undefined;
    await waitFor('the task to run', async () => !!(first = await nodeOf()) && logLines(first, 'counted').length > 10, 120_000, 250);
    const old = first!;

    await manager.dockerOk(['node', 'update', '--availability', 'drain', old.hostname]);
    // The last line the old task wrote, and when: the old task stops soon after the drain.
    let lastOld = logLines(old, 'counted').length;
    let lastOldAt = Date.now();
    let next: TestHost | undefined;
    let firstNewAt = 0;
    await waitFor(
      'the task to run elsewhere and write again',
      async () => {
        const n = logLines(old, 'counted').length;
        if (n > lastOld) [lastOld, lastOldAt] = [n, Date.now()];
        next = await nodeOf();
        if (!next || next === old) return false;
        if (logLines(next, 'counted').length > lastOld) {
          firstNewAt = Date.now();
          return true;
        }
        return false;
      },
      180_000,
      50,
    );
    const downtimeMs = firstNewAt - lastOldAt;
    console.log(`      downtime (last write on ${old.name} to first write on ${next!.name}): ${downtimeMs} ms`);
    await waitFor('a few more lines', () => logLines(next!, 'counted').length > lastOld + 10, 30_000, 100);
    const lines = logLines(next!, 'counted');
    // Every line is there, in order: nothing written on the old host was lost.
    lines.forEach((v, i) => expect(v, `line ${i + 1}`).to.equal(i + 1));
    const v = JSON.parse(env.ferry.cli(next!, ['volume', 'inspect', 'counted']).stdout).volume;
    expect(v.primaryNode).to.equal(next!.name);
    expect(v.generation).to.be.at.least(2);
    await manager.dockerOk(['service', 'rm', 'counter']);
  });
});
