import { FerryError } from '../errors';
import type { Lease } from './records';

/** VOLUME_IN_USE naming the hosts and mountpoints that hold the volume (control and the local API both say it). */
export function inUse(name: string, leases: Lease[]): FerryError {
  const byNode = new Map<string, { count: number; mountpoint: string }>();
  for (const l of leases) {
    const e = byNode.get(l.node) ?? { count: 0, mountpoint: l.mountpoint };
    e.count += l.count;
    byNode.set(l.node, e);
  }
  const names = new Map<string, Set<string>>();
  for (const l of leases) for (const c of l.containers ?? []) names.set(l.node, (names.get(l.node) ?? new Set()).add(c));
  const where = [...byNode]
    .map(([node, e]) => {
      const cs = names.get(node);
      return `on host ${node} at ${e.mountpoint} by ${e.count} container mount(s)${cs?.size ? ` (containers: ${[...cs].sort().join(', ')})` : ''}`;
    })
    .join(', ');
  return new FerryError(
    'VOLUME_IN_USE',
    `volume ${name} is in use: mounted ${where}; stop the containers using it (docker ps --filter volume=${name}) and try again`,
    { details: { leases } },
  );
}
