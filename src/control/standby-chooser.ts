import type { ReplicationSettings } from '../volume/replication-settings';

/** A host as the chooser sees it. */
export interface StandbyCandidate {
  name: string;
  up: boolean;
  /** Backends usable on that host (its last report); undefined when it has not reported: assumed able. */
  backends?: readonly string[];
  /** Copies of any volume it holds (primary or replica): the chooser spreads standbys by it. */
  copies: number;
  /** It holds a copy of this volume already (a move's replica): its first round is an increment. */
  holdsCopy: boolean;
}

/**
 * The hosts that should keep standbys of a volume (pure; sorted by name). Named hosts
 * (`replicate-to`) are taken as named, the primary left out, as long as the cluster knows them.
 * With `replicas: N` control chooses: among up hosts other than the primary that have the volume's
 * backend, first those that are standbys already (a change costs a full send), then those holding
 * a copy of it, then those with the fewest copies, then by name.
 */
export function chooseStandbys(
  settings: Pick<ReplicationSettings, 'replicateTo' | 'replicas'>,
  volume: { primary: string; backend: string; standbys: readonly string[] },
  hosts: readonly StandbyCandidate[],
): string[] {
  const known = new Set(hosts.map((h) => h.name));
  if (settings.replicateTo.length > 0) return settings.replicateTo.filter((h) => h !== volume.primary && known.has(h)).sort();
  const n = settings.replicas ?? 0;
  const current = new Set(volume.standbys);
  const able = hosts.filter((h) => h.name !== volume.primary && h.up && (h.backends === undefined || h.backends.includes(volume.backend)));
  const rank = (h: StandbyCandidate): [number, number, number] => [current.has(h.name) ? 0 : 1, h.holdsCopy ? 0 : 1, h.copies];
  return able
    .sort((a, b) => {
      const [ra, rb] = [rank(a), rank(b)];
      return ra[0] - rb[0] || ra[1] - rb[1] || ra[2] - rb[2] || a.name.localeCompare(b.name);
    })
    .slice(0, n)
    .map((h) => h.name)
    .sort();
}
