import { FerryError } from '../errors';
import type { Db } from './db';
import { addEvent, eventsOf, type ClusterEvent } from './event-repo';
import { acquireLease, dropLeases, leaseCounts, leasesOf, leasesOnNode, releaseLease, type Lease } from './lease-repo';
import {
  deleteVolume,
  getVolume,
  insertVolume,
  listVolumes,
  recordUsage,
  setVolumeState,
  type VolumeRecord,
} from './volume-repo';

/** A volume with its live facts, as List, Get and the CLI show it. */
export interface VolumeView extends VolumeRecord {
  /** Active Docker mounts (sum of lease counts) across the cluster. */
  mounts: number;
}

/** What a new volume is recorded with. */
export interface VolumeReservation {
  name: string;
  backend: string;
  sizeBytes?: number;
  fs?: string;
  options: Record<string, string>;
  primaryNode: string;
}

/**
 * What an agent asks of control. Asynchronous because in a cluster it crosses the network; `ferry
 * serve` uses the in-process LocalControl.
 */
export interface ControlClient {
  /** Records a new volume in state `creating`; false when the name is taken anywhere in the cluster. */
  reserveVolume(v: VolumeReservation): Promise<boolean>;
  /** Marks a reserved volume ready once its dataset exists. */
  confirmVolume(name: string, node: string): Promise<void>;
  /** Forgets a reservation whose dataset could not be made. */
  abandonVolume(name: string, node: string, reason: string): Promise<void>;
  getVolume(name: string): Promise<VolumeView | undefined>;
  listVolumes(): Promise<VolumeView[]>;
  /** Marks a volume `deleting`; VOLUME_IN_USE while any lease is held, with where. */
  beginDelete(name: string, node: string): Promise<void>;
  finishDelete(name: string, node: string): Promise<void>;
  acquireLease(l: { volume: string; mountId: string; node: string; mountpoint: string }): Promise<void>;
  /** False when `mountId` held no lease. */
  releaseLease(volume: string, mountId: string): Promise<boolean>;
  leasesOf(volume: string): Promise<Lease[]>;
  leasesOnNode(node: string): Promise<Lease[]>;
  dropLeases(volume: string, node: string, reason: string): Promise<number>;
  recordUsage(usage: Map<string, number>): Promise<void>;
  eventsOf(volume: string): Promise<ClusterEvent[]>;
}

/** Control's answers straight from SQLite, in the same process (the single-host `ferry serve`). */
export class LocalControl implements ControlClient {
  constructor(private readonly db: Db) {}

  async reserveVolume(v: VolumeReservation): Promise<boolean> {
    return insertVolume(this.db, v);
  }

  async confirmVolume(name: string, node: string): Promise<void> {
    this.db.transaction(() => {
      setVolumeState(this.db, name, 'ready');
      addEvent(this.db, { volume: name, node, kind: 'created' });
    })();
  }

  async abandonVolume(name: string, node: string, reason: string): Promise<void> {
    this.db.transaction(() => {
      deleteVolume(this.db, name);
      addEvent(this.db, { volume: name, node, kind: 'create-failed', detail: reason });
    })();
  }

  async getVolume(name: string): Promise<VolumeView | undefined> {
    const v = getVolume(this.db, name);
    if (!v) return undefined;
    const mounts = leasesOf(this.db, name).reduce((n, l) => n + l.count, 0);
    return { ...v, mounts };
  }

  async listVolumes(): Promise<VolumeView[]> {
    const counts = leaseCounts(this.db);
    return listVolumes(this.db).map((v) => ({ ...v, mounts: counts.get(v.name) ?? 0 }));
  }

  async beginDelete(name: string, node: string): Promise<void> {
    this.db.transaction(() => {
      const leases = leasesOf(this.db, name);
      if (leases.length > 0) throw inUse(name, leases);
      setVolumeState(this.db, name, 'deleting');
      addEvent(this.db, { volume: name, node, kind: 'deleting' });
    })();
  }

  async finishDelete(name: string, node: string): Promise<void> {
    this.db.transaction(() => {
      deleteVolume(this.db, name);
      addEvent(this.db, { volume: name, node, kind: 'deleted' });
    })();
  }

  async acquireLease(l: { volume: string; mountId: string; node: string; mountpoint: string }): Promise<void> {
    acquireLease(this.db, l);
  }

  async releaseLease(volume: string, mountId: string): Promise<boolean> {
    return releaseLease(this.db, volume, mountId);
  }

  async leasesOf(volume: string): Promise<Lease[]> {
    return leasesOf(this.db, volume);
  }

  async leasesOnNode(node: string): Promise<Lease[]> {
    return leasesOnNode(this.db, node);
  }

  async dropLeases(volume: string, node: string, reason: string): Promise<number> {
    return this.db.transaction(() => {
      const n = dropLeases(this.db, volume, node);
      if (n > 0) addEvent(this.db, { volume, node, kind: 'leases-dropped', detail: reason });
      return n;
    })();
  }

  async recordUsage(usage: Map<string, number>): Promise<void> {
    this.db.transaction(() => {
      for (const [name, bytes] of usage) recordUsage(this.db, name, bytes);
    })();
  }

  async eventsOf(volume: string): Promise<ClusterEvent[]> {
    return eventsOf(this.db, volume);
  }
}

/** VOLUME_IN_USE naming the hosts and mountpoints that hold the volume. */
export function inUse(name: string, leases: Lease[]): FerryError {
  const byNode = new Map<string, { count: number; mountpoint: string }>();
  for (const l of leases) {
    const e = byNode.get(l.node) ?? { count: 0, mountpoint: l.mountpoint };
    e.count += l.count;
    byNode.set(l.node, e);
  }
  const where = [...byNode].map(([node, e]) => `on host ${node} at ${e.mountpoint} by ${e.count} container mount(s)`).join(', ');
  return new FerryError(
    'VOLUME_IN_USE',
    `volume ${name} is in use: mounted ${where}; stop the containers using it (docker ps --filter volume=${name}) and try again`,
    { details: { leases } },
  );
}
