import type { ExecResult } from '../../src/agent/docker-host';
import type { QuiesceDocker } from '../../src/agent/quiesce';
import type { HostContainer } from '../../src/agent/quiesce-plan';

/**
 * A scripted dockerd for the orders and failures a real one cannot be made to show on demand (a
 * pause or an unpause that fails); the real thing is test/e2e/quiesce.test.ts. Records every call.
 */
export class ScriptedDocker implements QuiesceDocker {
  calls: string[] = [];
  paused = new Set<string>();
  failPause = new Set<string>();
  failUnpause = new Map<string, number>();
  /** Exit code (null: timed out) of a command, by "name:argv". */
  exits = new Map<string, number | null>();
  constructor(readonly containers: HostContainer[]) {}
  private nameOf(id: string): string {
    return this.containers.find((c) => c.id === id)!.name;
  }
  async containersWithVolumes(volumes: readonly string[]): Promise<HostContainer[]> {
    return this.containers.filter((c) => c.volumes.some((v) => volumes.includes(v)));
  }
  async projectContainers(project: string): Promise<HostContainer[]> {
    return this.containers.filter((c) => c.labels['com.docker.compose.project'] === project);
  }
  async exec(id: string, argv: readonly string[], timeoutMs: number): Promise<ExecResult> {
    const key = `${this.nameOf(id)}:${argv.join(' ')}`;
    this.calls.push(`exec ${key}`);
    if (this.paused.has(id)) throw new Error(`container ${id} is paused, unpause the container before exec`);
    const exit = this.exits.has(key) ? this.exits.get(key)! : 0;
    return { exitCode: exit, timedOut: exit === null, output: `out of ${key}`, durationMs: exit === null ? timeoutMs : 1 };
  }
  async pause(id: string): Promise<void> {
    this.calls.push(`pause ${this.nameOf(id)}`);
    if (this.failPause.has(id)) throw new Error('cannot pause: container is restarting');
    this.paused.add(id);
  }
  async unpause(id: string): Promise<void> {
    this.calls.push(`unpause ${this.nameOf(id)}`);
    const left = this.failUnpause.get(id) ?? 0;
    if (left > 0) {
      this.failUnpause.set(id, left - 1);
      throw new Error('dockerd did not answer');
    }
    this.paused.delete(id);
  }
}
