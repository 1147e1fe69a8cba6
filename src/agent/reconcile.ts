import { retainedDatasetId } from '../volume/names';
import type { Lease, VolumeRecord } from '../wire/records';

/** A volume as control records it, with the hosts that keep a replica and those that must drop their copy. */
export type ReconcileVolume = VolumeRecord & { replicas: string[]; dropping: string[] };

/** What the agent discovered at start, and what control records. */
export interface ReconcileInput {
  node: string;
  /** Every volume control records (the agent acts on those it is primary of or holds a copy of). */
  volumes: ReconcileVolume[];
  /** Leases held on this node. */
  leases: Lease[];
  /** Volume names mounted under the agent's mount root, from the mount table. */
  mounted: Set<string>;
  /** Dataset names found on disk, per backend kind that could be listed. */
  datasets: Map<string, Set<string>>;
  /** reclaim: the retained data of removed volumes control records (their datasets are no orphans). */
  removed?: { dataset: string; node: string; backend: string }[];
}

export type ReconcileAction =
  | { kind: 'keep-mounted'; volume: string; reason: string }
  | { kind: 'remount'; volume: string; reason: string }
  | { kind: 'unmount'; volume: string; reason: string }
  | { kind: 'drop-leases'; volume: string; reason: string }
  | { kind: 'rollback-create'; volume: string; reason: string }
  | { kind: 'destroy-copy'; volume: string; reason: string }
  | { kind: 'forget-replica'; volume: string; reason: string }
  | { kind: 'report-orphan-dataset'; backend: string; dataset: string; reason: string }
  | { kind: 'report-orphan-mount'; volume: string; reason: string }
  | { kind: 'report-missing'; volume: string; reason: string };

/**
 * Decides, from records and what is really on disk and in the mount table, what the agent must do
 * at start (pure: tested without disks). Never deletes a dataset that control does not ask it to.
 */
export function planReconcile(input: ReconcileInput): ReconcileAction[] {
  const actions: ReconcileAction[] = [];
  const leased = new Set(input.leases.map((l) => l.volume));
  const known = new Set(input.volumes.map((v) => v.name));

  for (const v of input.volumes) {
    const onDisk = input.datasets.get(v.backend);
    // A backend that could not be listed (its pool is down) tells us nothing: leave its volumes be.
    const exists = onDisk ? onDisk.has(v.name) : undefined;
    const mounted = input.mounted.has(v.name);
    const hasLease = leased.has(v.name);

    // Control asks for this host's copy to go: the volume was removed (perhaps while this host was
    // down), or it is a replica that policy does not keep.
    if (v.dropping.includes(input.node)) {
      if (mounted) actions.push({ kind: 'unmount', volume: v.name, reason: v.state === 'deleting' ? 'a remove was cut off' : 'its copy here is to be dropped' });
      actions.push({
        kind: 'destroy-copy',
        volume: v.name,
        reason: v.state === 'deleting' ? 'the volume was removed; this host had not destroyed its copy yet' : 'control keeps no replica of it here',
      });
      continue;
    }
    if (v.replicas.includes(input.node)) {
      if (exists === false) actions.push({ kind: 'forget-replica', volume: v.name, reason: `control records a replica here but backend ${v.backend} has no dataset` });
      continue;
    }
    if (v.primaryNode !== input.node) continue;

    if (v.state === 'creating') {
      if (mounted) actions.push({ kind: 'unmount', volume: v.name, reason: 'a create was cut off; nothing may use its dataset' });
      actions.push({
        kind: 'rollback-create',
        volume: v.name,
        reason: 'the agent stopped during Create, which never answered dockerd; its dataset was never used',
      });
      continue;
    }
    // Removed, and this host's copy is already gone: the others' are theirs to destroy.
    if (v.state === 'deleting') continue;
    if (exists === false) {
      actions.push({ kind: 'report-missing', volume: v.name, reason: `control records it on this host but backend ${v.backend} has no dataset` });
      if (hasLease) actions.push({ kind: 'drop-leases', volume: v.name, reason: 'its dataset is missing' });
      continue;
    }
    if (hasLease && mounted) {
      actions.push({ kind: 'keep-mounted', volume: v.name, reason: 'dockerd holds it mounted (live restore)' });
    } else if (hasLease && exists) {
      actions.push({ kind: 'remount', volume: v.name, reason: 'dockerd holds a lease but the filesystem is not mounted (host restart?)' });
    } else if (!hasLease && mounted) {
      actions.push({ kind: 'unmount', volume: v.name, reason: 'mounted but no container holds it (cut off between mount and lease)' });
    }
  }

  for (const name of input.mounted) {
    if (!known.has(name)) actions.push({ kind: 'report-orphan-mount', volume: name, reason: 'mounted under the mount root but control has no such volume' });
  }
  // reclaim: a removed volume's retained dataset is control's record too, not a volume's.
  const retained = new Set((input.removed ?? []).filter((r) => r.node === input.node).map((r) => `${r.backend}/${r.dataset}`));
  for (const [backend, names] of input.datasets) {
    for (const name of names) {
      if (retainedDatasetId(name) !== undefined) {
        if (!retained.has(`${backend}/${name}`)) {
          actions.push({ kind: 'report-orphan-dataset', backend, dataset: name, reason: 'retained data of a removed volume that control no longer records; left untouched' });
        }
        continue;
      }
      if (!known.has(name)) {
        actions.push({ kind: 'report-orphan-dataset', backend, dataset: name, reason: 'on disk but control has no such volume; left untouched' });
      }
    }
  }
  return actions;
}
