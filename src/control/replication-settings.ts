import type { PolicyRecord } from '../wire/records';

/**
 * What a volume's replication asks for (issue 7 item 4), read from its policy (`-o policy=NAME`,
 * `ferry volume set V policy=NAME`): which hosts keep standbys, how stale one may be, and how fast
 * a round may read the network. `replicationOf` is the one place that reads these fields.
 */
export interface ReplicationSettings {
  /** Hosts named by hand (`--replicate-to`); empty when control chooses (`--replicas`). */
  replicateTo: string[];
  /** How many standbys control chooses when no hosts are named; null with `replicateTo`. */
  replicas: number | null;
  /** The recovery point objective: a standby older than this is late (an event). */
  rpoSeconds: number;
  /** Bytes per second a standby reads at most during a round; null: no limit. */
  bandwidthBytes: number | null;
}

/** The RPO of a policy that replicates without saying one. */
export const DEFAULT_RPO_SECONDS = 60;

/** The replication a volume's policy asks for (pure), or undefined: no policy, or one that does not replicate. */
export function replicationOf(policy: PolicyRecord | undefined): ReplicationSettings | undefined {
  if (!policy) return undefined;
  const replicas = policy.replicateTo.length > 0 ? null : policy.replicas;
  if (policy.replicateTo.length === 0 && !replicas) return undefined;
  return {
    replicateTo: [...policy.replicateTo],
    replicas,
    rpoSeconds: policy.rpoSeconds ?? DEFAULT_RPO_SECONDS,
    bandwidthBytes: policy.bandwidthBytes,
  };
}
