import { toFerryError } from '../errors';
import type { ControlClient } from '../wire/control-client';
import type { AgentStatus, HostReport } from '../wire/records';
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

  async report(): Promise<AgentStatus> {
    const { backends, orphans, missing } = await this.hostReport();
    const volumes = await this.control.listVolumes();
    return {
      node: this.node,
      backends,
      volumes: volumes.filter((v) => v.state === 'ready').length,
      mounted: this.state.mountedNames(),
      orphans,
      missing,
      replicas: volumes.filter((v) => v.replicas.includes(this.node)).map((v) => v.name),
      removing: volumes.filter((v) => v.dropping.includes(this.node)).map((v) => v.name),
    };
  }

  /** This host's pools and what reconciliation found: what the agent reports to control now and then. */
  async hostReport(): Promise<Omit<HostReport, 'at'>> {
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
    return { node: this.node, backends, orphans: this.state.orphans, missing: this.state.missing };
  }
}
