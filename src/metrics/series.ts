import type { MoveRecord, NodeRecord, VolumeView } from '../wire/records';

/** One sample of a gauge: its labels and value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** How many of `items` share each label set that `labelsOf` gives (ordered by first appearance). */
export function countBy<T>(items: readonly T[], labelsOf: (item: T) => Record<string, string>): Sample[] {
  const out = new Map<string, Sample>();
  for (const item of items) {
    const labels = labelsOf(item);
    const key = JSON.stringify(labels);
    const s = out.get(key);
    if (s) s.value++;
    else out.set(key, { labels, value: 1 });
  }
  return [...out.values()];
}

/** What the per-volume gauges show of a host's (or the cluster's) volumes. */
export interface VolumeSamples {
  /** Volumes by state and backend. */
  byState: Sample[];
  /** Used bytes per volume: only where a usage pass has measured it (unknown is no sample, not 0). */
  used: Sample[];
  /** Size limit per volume: only volumes with one (a pool-sized volume has none). */
  size: Sample[];
  /** Active Docker mounts (leases) per volume. */
  mounts: Sample[];
}

/**
 * The volume series from control's views: `node` set, the volumes whose primary is that host (an
 * agent shows what it holds); unset, every volume (control shows the cluster, with the primary as a
 * label). Volumes being removed count by state, but have no per-volume samples: they are going.
 */
export function volumeSamples(views: readonly VolumeView[], node?: string): VolumeSamples {
  const mine = node === undefined ? views : views.filter((v) => v.primaryNode === node);
  const live = mine.filter((v) => v.state !== 'deleting');
  const labels = (v: VolumeView): Record<string, string> => (node === undefined ? { volume: v.name, backend: v.backend, node: v.primaryNode } : { volume: v.name, backend: v.backend });
  return {
    byState: countBy(mine, (v) => ({ state: v.state, backend: v.backend })),
    used: live.filter((v) => v.usedBytes !== null).map((v) => ({ labels: labels(v), value: v.usedBytes! })),
    size: live.filter((v) => v.sizeBytes !== null).map((v) => ({ labels: labels(v), value: v.sizeBytes! })),
    mounts: live.map((v) => ({ labels: labels(v), value: v.mounts })),
  };
}

/** Nodes up (1) or down (0), and seconds since each one's last heartbeat (none before its first). */
export function nodeSamples(nodes: readonly NodeRecord[], now: number): { up: Sample[]; heartbeatAge: Sample[] } {
  return {
    up: nodes.map((n) => ({ labels: { node: n.name }, value: n.state === 'up' ? 1 : 0 })),
    heartbeatAge: nodes
      .filter((n) => n.lastHeartbeat !== null)
      .map((n) => ({ labels: { node: n.name }, value: Math.max(0, (now - Date.parse(n.lastHeartbeat!)) / 1000) })),
  };
}

/** Progress of the moves under way: bytes received so far, and the bytes expected where known. */
export function moveSamples(active: readonly MoveRecord[]): { done: Sample[]; expected: Sample[] } {
  const labels = (m: MoveRecord): Record<string, string> => ({ volume: m.volume, source: m.source, target: m.target, state: m.state });
  return {
    done: active.map((m) => ({ labels: labels(m), value: m.bytesDone })),
    expected: active.filter((m) => m.bytesTotal !== null).map((m) => ({ labels: labels(m), value: m.bytesTotal! })),
  };
}

/** replicate: each standby's lag in seconds (age of its newest replication snapshot), by volume and standby. */
export function replicationLagSamples(views: readonly VolumeView[]): Sample[] {
  return views.filter((v) => v.state === 'ready').flatMap((v) => (v.standbys ?? []).map((s) => ({ labels: { volume: v.name, standby: s.node }, value: s.lagSeconds })));
}
