import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FerryCluster } from './ferry-cluster';
import type { Cluster, TestHost } from './harness';
import { waitFor } from '../support/docker';

/*
 * The steps a failover test and the failover bench share: a host lost the way the issue says (agent
 * SIGKILL, its dockerd stopped, its link down), brought back, and a counter written to a volume.
 */

/** Appends a counter, one line per 100 ms, resuming from the last line (a gap would show lost data). */
export const COUNTER = 'i=$(tail -n 1 /data/log 2>/dev/null || echo 0); while true; do i=$((i+1)); echo $i >> /data/log; sync; sleep 0.1; done';

/** The numbers in a file of one number a line ([] while it is not there). */
export function numberLines(file: string): number[] {
  if (!existsSync(file)) return [];
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The counter's lines in `volume` as mounted on `h` now. */
export function counterLines(h: TestHost, volume: string): number[] {
  return numberLines(join(h.dataDir, 'mounts', volume, 'log'));
}

/** Waits until every host's dockerd has told Swarm it has the ferry plugin (Swarm places tasks only there). */
export async function pluginReported(cluster: Cluster, manager: TestHost): Promise<void> {
  await waitFor('every node to report the ferry plugin to Swarm', async () => {
    for (const h of cluster.hosts) {
      const r = await manager.docker(['node', 'inspect', h.hostname, '--format', '{{.Status.State}} {{json .Description.Engine.Plugins}}']);
      if (r.code !== 0 || !r.stdout.startsWith('ready') || !/"Type":"Volume","Name":"ferry"/.test(r.stdout)) return false;
    }
    return true;
  }, 120_000, 1000);
}

/** `h` lost: its agent SIGKILLed, its link cut, its dockerd stopped. Answers when it started. */
export async function loseHost(ferry: FerryCluster, h: TestHost): Promise<number> {
  const at = Date.now();
  await ferry.killAgent(h, 'SIGKILL');
  h.linkDown();
  await h.stopDockerd(2000);
  return at;
}

/** `h` back: link, dockerd, agent. */
export async function restoreHost(ferry: FerryCluster, h: TestHost): Promise<void> {
  h.linkUp();
  await h.startDockerd();
  await ferry.startAgent(h);
}

/** The host a service's task runs on now, asked of `manager`. */
export async function serviceNode(cluster: Cluster, manager: TestHost, service: string): Promise<TestHost | undefined> {
  const r = await manager.docker(['service', 'ps', service, '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
  const running = r.stdout.split('\n').find((l) => / Running /.test(l));
  return running ? cluster.hosts.find((h) => h.hostname === running.split(' ')[0]) : undefined;
}
