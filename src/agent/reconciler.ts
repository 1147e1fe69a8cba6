import type { ControlClient } from '../wire/control-client';
import type { VolumeView } from '../wire/records';
import type { Logger } from '../log';
import type { Backend } from './backends/backend';
import type { BackendKind } from './backends/registry';
import { readMountTable } from './mount-table';
import { planReconcile, type ReconcileAction } from './reconcile';

/** What reconciling one host needs from its agent. */
export interface ReconcileHost {
  node: string;
  mountRoot: string;
  control: ControlClient;
  backends: ReadonlyMap<BackendKind, { backend: Backend; error?: string }>;
  log: Logger;
  /** The backend of that kind; BACKEND_UNAVAILABLE when it is not enabled or did not come up. */
  backendFor(kind: string): Backend;
  mountpointOf(name: string): string;
  /** Records that the volume's filesystem is mounted at its mountpoint here. */
  markMounted(name: string): void;
  destroyDataset(name: string, kind: string): Promise<void>;
  /** Destroys this host's copy if control still asks for it; false when it does not. */
  destroyCopy(name: string): Promise<boolean>;
}

/** What reconciliation found that needs a person: shown by `ferry status`. */
export interface ReconcileReport {
  actions: ReconcileAction[];
  orphans: { backend?: string; name: string; reason: string }[];
  missing: string[];
}

/**
 * Brings records, disk and mount table into agreement (DESIGN: live restore): reads the three,
 * lets planReconcile decide, and applies each action as one logged step. A step that fails is
 * logged and left for the next start; the others still run.
 */
export async function reconcileHost(h: ReconcileHost): Promise<ReconcileReport> {
  const volumes = await h.control.listVolumes();
  const leases = await h.control.leasesOnNode(h.node);
  const prefix = h.mountRoot + '/';
  const mounted = new Set(
    readMountTable()
      .map((e) => e.mountPoint)
      .filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
      .map((p) => p.slice(prefix.length)),
  );
  const datasets = new Map<string, Set<string>>();
  for (const [kind, slot] of h.backends) {
    if (slot.error) continue;
    try {
      datasets.set(kind, new Set(await slot.backend.list()));
    } catch (err) {
      h.log.warn({ err, backend: kind }, 'cannot list datasets; skipping them in reconciliation');
    }
  }
  const removed = await h.control.listRemoved();
  const report: ReconcileReport = { actions: planReconcile({ node: h.node, volumes, leases, mounted, datasets, removed }), orphans: [], missing: [] };
  for (const a of report.actions) await apply(h, a, volumes, report);
  return report;
}

async function apply(h: ReconcileHost, a: ReconcileAction, volumes: VolumeView[], report: ReconcileReport): Promise<void> {
  const log = h.log.child({ op: 'reconcile', action: a.kind });
  const backendOf = (volume: string): Backend => h.backendFor(volumes.find((x) => x.name === volume)!.backend);
  try {
    switch (a.kind) {
      case 'keep-mounted':
        h.markMounted(a.volume);
        log.info({ volume: a.volume, reason: a.reason }, 'kept mounted');
        return;
      case 'remount':
        await backendOf(a.volume).mount(a.volume, h.mountpointOf(a.volume));
        h.markMounted(a.volume);
        log.info({ volume: a.volume, reason: a.reason }, 'remounted');
        return;
      case 'unmount':
        await backendOf(a.volume).unmount(a.volume, h.mountpointOf(a.volume));
        log.info({ volume: a.volume, reason: a.reason }, 'unmounted');
        return;
      case 'drop-leases':
        await h.control.dropLeases(a.volume, h.node, a.reason);
        log.warn({ volume: a.volume, reason: a.reason }, 'dropped leases');
        return;
      case 'rollback-create': {
        const v = volumes.find((x) => x.name === a.volume)!;
        await h.destroyDataset(a.volume, v.backend);
        await h.control.abandonVolume(a.volume, h.node, a.reason);
        log.warn({ volume: a.volume, reason: a.reason }, 'rolled back an unfinished create');
        return;
      }
      case 'destroy-copy':
        if (await h.destroyCopy(a.volume)) log.warn({ volume: a.volume, reason: a.reason }, 'destroyed a copy control no longer keeps here');
        return;
      case 'forget-replica':
        await h.control.forgetReplica(a.volume, h.node, a.reason);
        log.warn({ volume: a.volume, reason: a.reason }, 'forgot a replica that is not on disk');
        return;
      case 'report-orphan-dataset':
        report.orphans.push({ backend: a.backend, name: a.dataset, reason: a.reason });
        log.warn({ backend: a.backend, dataset: a.dataset, reason: a.reason }, 'orphan dataset');
        return;
      case 'report-orphan-mount':
        report.orphans.push({ name: a.volume, reason: a.reason });
        log.warn({ volume: a.volume, reason: a.reason }, 'orphan mount');
        return;
      case 'report-missing':
        report.missing.push(a.volume);
        log.error({ volume: a.volume, reason: a.reason }, 'volume dataset missing');
        return;
    }
  } catch (err) {
    log.error({ err, volume: 'volume' in a ? a.volume : undefined }, 'reconcile step failed; will retry at next start');
  }
}
