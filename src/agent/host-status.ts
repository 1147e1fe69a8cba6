import { toFerryError } from '../errors';
import type { ControlClient } from '../wire/control-client';
import type { AgentStatus } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import { abilitiesOf } from './backends/backend';
import type { HostState } from './host-state';

/** What `ferry status` shows about this host: its backends, volumes, mounts and what needs a person. */
export class HostStatus {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
  ) {}

  /** Each backend of this host: usable or why not, its pool's size and free space, its abilities. */
  async backendsReport(): Promise<AgentStatus['backends']> {
    const backends: AgentStatus['backends'] = [];
    for (const [kind, slot] of this.backends.entries()) {
      if (slot.error) {
        backends.push({ kind, ok: false, error: slot.error });
        continue;
      }
      try {
        backends.push({ kind, ok: true, ...(await slot.backend.capacity()), abilities: abilitiesOf(slot.backend) });
      } catch (err) {
        backends.push({ kind, ok: false, error: toFerryError(err).message });
      }
    }
    return backends;
  }

  async report(): Promise<AgentStatus> {
    const backends = await this.backendsReport();
    const volumes = await this.control.listVolumes();
    return {
      node: this.node,
      backends,
      volumes: volumes.filter((v) => v.state === 'ready').length,
      mounted: this.state.mountedNames(),
      orphans: this.state.orphans,
      missing: this.state.missing,
      replicas: volumes.filter((v) => v.replicas.includes(this.node)).map((v) => v.name),
      removing: volumes.filter((v) => v.dropping.includes(this.node)).map((v) => v.name),
    };
  }
}
