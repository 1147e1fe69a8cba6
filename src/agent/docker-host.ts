import type Docker from 'dockerode';
import type { Logger } from '../log';
import type { ContainerSpec } from '../wire/records';

/**
 * This host's dockerd, for what a volume plugin may ask of it outside a Mount request (dockerd holds
 * the container's lock during Mount: never call it from there).
 */
export class DockerHost {
  private client?: Promise<Docker>;

  constructor(
    private readonly socketPath: string,
    private readonly log: Logger,
  ) {}

  /** dockerode loads on first use (its 170 modules cost an agent 3-5 MB that a host without mounts never needs). */
  private docker(): Promise<Docker> {
    this.client ??= import('dockerode').then(({ default: D }) => new D({ socketPath: this.socketPath, timeout: 60_000 }));
    return this.client;
  }

  /** Names of the running containers that mount `volume`. */
  async containersUsing(volume: string): Promise<string[]> {
    const list = await (await this.docker()).listContainers({ filters: { volume: [volume] } });
    return list.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')).sort();
  }

  /** Stops the running containers that mount `volume` and returns what it takes to start them elsewhere. */
  async captureAndStop(volume: string): Promise<ContainerSpec[]> {
    const specs: ContainerSpec[] = [];
    const docker = await this.docker();
    for (const c of await docker.listContainers({ filters: { volume: [volume] } })) {
      const info = await docker.getContainer(c.Id).inspect();
      // The hostname dockerd gave it is the old container's id: let the new one get its own.
      const { Hostname: _h, ...config } = info.Config as unknown as Record<string, unknown>;
      specs.push({ name: info.Name.replace(/^\//, ''), config, hostConfig: info.HostConfig as unknown as Record<string, unknown> });
      await docker.getContainer(c.Id).stop({ t: 10 });
      this.log.info({ volume, container: info.Name }, 'stopped a container for a move');
    }
    return specs;
  }

  /** Creates and starts containers from specs; returns the names it could not start, with why. */
  async recreate(specs: ContainerSpec[]): Promise<{ name: string; error: string }[]> {
    const failed: { name: string; error: string }[] = [];
    const docker = await this.docker();
    for (const s of specs) {
      try {
        const c = await docker.createContainer({ ...s.config, name: s.name, HostConfig: s.hostConfig });
        await c.start();
        this.log.info({ container: s.name }, 'started a moved container');
      } catch (err) {
        failed.push({ name: s.name, error: (err as Error).message });
      }
    }
    return failed;
  }
}
