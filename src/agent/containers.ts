import { FerryError } from '../errors';
import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import type { ContainerSpec } from '../wire/records';
import type { DockerHost } from './docker-host';

/**
 * The containers behind this host's volumes, through its dockerd (without one, leases stay unnamed
 * and plain Docker moves cannot stop containers). Never called from inside a Mount: dockerd holds
 * the container's lock then.
 */
export class Containers {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly docker: DockerHost | undefined,
    private readonly log: Logger,
  ) {}

  /** Whether a dockerd is there to ask. */
  get available(): boolean {
    return this.docker !== undefined;
  }

  /** Looks up which containers hold `volume` here and tells control; failures are logged at debug. */
  async annotate(volume: string): Promise<void> {
    if (!this.docker) return;
    try {
      await this.control.annotateLeases(volume, this.node, await this.docker.containersUsing(volume));
    } catch (err) {
      this.log.debug({ err, volume }, 'cannot name the containers using a volume');
    }
  }

  /** Plain Docker move away from here: stop the containers using `volume`, keep how to start them. */
  async stopContainersFor(volume: string): Promise<ContainerSpec[]> {
    if (!this.docker) throw new FerryError('BACKEND_UNAVAILABLE', `host ${this.node} has no dockerd to stop containers with`);
    return this.docker.captureAndStop(volume);
  }

  /** Starts containers moved here with their volume; failures are logged, not thrown. */
  async startContainers(specs: ContainerSpec[]): Promise<void> {
    if (!this.docker || specs.length === 0) return;
    for (const f of await this.docker.recreate(specs)) this.log.error({ container: f.name, err: f.error }, 'cannot start a moved container');
  }
}
