import type { Readable } from 'node:stream';

import { FerryError } from '../../errors';

/** What a dataset is made with. Sizes are bytes. */
export interface DatasetSpec {
  /** The hard limit of the dataset's contents; absent means "limited by the pool only". */
  sizeBytes?: number;
  /**
   * The filesystem the backend makes inside the dataset, for backends that take the `fs` Create
   * option (their descriptor lists its values); the backend checks it.
   */
  fs?: string;
}

/** Space in a backend's pool, in bytes. */
export interface PoolCapacity {
  totalBytes: number;
  freeBytes: number;
  /** The pool's own word on its state, for backends whose pool has one (zfs: ONLINE, DEGRADED, ...). */
  health?: string;
}

/** Limits a backend places on a spec, so that bad sizes are refused before anything is written. */
export interface SizeRules {
  /** True when the backend can enforce `sizeBytes`; false means a size option is refused. */
  enforcesSize: boolean;
  /** True when a dataset cannot be made without a size (loop images). */
  requiresSize: boolean;
  /** Smallest size the backend can make, per loop filesystem where that matters. */
  minBytes(spec: DatasetSpec): number;
}

/**
 * One storage kind on one host. Every method takes a validated dataset name (see volume/names.ts)
 * and throws FerryError; none keeps reference counts (the agent does).
 */
export interface Backend {
  /** The kind its descriptor registers (registry.ts). */
  readonly kind: string;
  readonly sizeRules: SizeRules;

  /** Prepares the pool (makes, mounts, enables quotas). Idempotent; called once at agent start. */
  init(): Promise<void>;

  /** Pool size and free space, in bytes. */
  capacity(): Promise<PoolCapacity>;

  /**
   * Makes an empty dataset. Idempotent: an existing dataset with this name is left as it is.
   * On failure (POOL_FULL when the pool has no room) nothing of the dataset is left behind.
   */
  create(name: string, spec: DatasetSpec): Promise<void>;

  /** Destroys the dataset and its snapshots. Idempotent. Throws VOLUME_BUSY while it is mounted. */
  destroy(name: string): Promise<void>;

  /** Names of the datasets in the pool, sorted. */
  list(): Promise<string[]>;

  /** True when the dataset exists. */
  exists(name: string): Promise<boolean>;

  /**
   * Mounts the dataset's filesystem at `target` (made if missing). Idempotent: a dataset already
   * mounted at `target` is left as it is. `readOnly` mounts a replica that must not be written.
   */
  mount(name: string, target: string, opts?: { readOnly?: boolean }): Promise<void>;

  /** Unmounts `target`. Idempotent: a target that is not mounted is fine. Throws VOLUME_BUSY when in use. */
  unmount(name: string, target: string): Promise<void>;
}

/** Read-only, point-in-time copies of a dataset. */
export interface SnapshotCapable {
  /** Takes snapshot `snap` of a dataset, consistent even while mounted. Throws VOLUME_EXISTS if it exists. */
  snapshot(name: string, snap: string): Promise<void>;
  /** Snapshot names of a dataset, oldest first. */
  listSnapshots(name: string): Promise<string[]>;
  /** Deletes one snapshot. Idempotent. */
  deleteSnapshot(name: string, snap: string): Promise<void>;
  /**
   * Makes the dataset's contents exactly those of `snap`; creates the dataset when it does not exist
   * (how a received copy becomes a live volume). Throws VOLUME_BUSY while the dataset is mounted.
   */
  rollback(name: string, snap: string, spec: DatasetSpec): Promise<void>;
}

/** New datasets made from a snapshot. */
export interface CloneCapable {
  /** Makes a new dataset `target` from snapshot `snap` of `name`. Throws SNAPSHOT_NOT_FOUND, VOLUME_EXISTS. */
  clone(name: string, snap: string, target: string, spec: DatasetSpec): Promise<void>;
}

/** Serialized snapshots, full or incremental, for moving data between hosts. */
export interface StreamCapable {
  /**
   * A stream of snapshot `snap`; with `base` (an older snapshot that the receiver also has), only
   * what changed since `base`. The stream is the backend's own format.
   */
  send(name: string, snap: string, base?: string): Readable;
  /**
   * Reads a stream made by `send` of the same backend kind and stores it as snapshot `snap` of `name`.
   * An incremental stream needs its base snapshot here. On any failure, including a short or corrupt
   * stream, nothing of `snap` is left behind.
   */
  receive(name: string, snap: string, stream: Readable): Promise<void>;
}

/** Bytes used per dataset. */
export interface UsageCapable {
  /**
   * Used bytes of each dataset, by name (only those of `names` when given: a Create measures its new
   * volume at once); a dataset it cannot measure, or that does not exist, is left out.
   */
  usage(names?: readonly string[]): Promise<Map<string, number>>;
}

/**
 * snap: what one snapshot holds on its own (bytes not shared with the live data or other snapshots:
 * what deleting it would free). Not one of ABILITIES (`ferry status` lists those): backends that can
 * tell implement it (btrfs from its qgroups, zfs's `used`); for the others a snapshot's size is null.
 */
export interface SnapshotSizeCapable {
  /** Bytes; null when the backend cannot tell now (quotas off, a figure not yet committed), SNAPSHOT_NOT_FOUND-free. */
  snapshotSize(name: string, snap: string): Promise<number | null>;
}
export function hasSnapshotSizes(b: Backend): b is Backend & SnapshotSizeCapable {
  return typeof (b as Partial<SnapshotSizeCapable>).snapshotSize === 'function';
}

/** What both ends of a move need: snapshots to send and a stream format to carry them. */
export type MovableBackend = Backend & SnapshotCapable & StreamCapable;

/** The optional abilities, by the name a descriptor lists them under. */
export const ABILITIES = ['snapshots', 'clones', 'streams', 'usage'] as const;
export type Ability = (typeof ABILITIES)[number];

export function hasSnapshots(b: Backend): b is Backend & SnapshotCapable {
  return typeof (b as Partial<SnapshotCapable>).snapshot === 'function';
}
export function hasClones(b: Backend): b is Backend & CloneCapable {
  return typeof (b as Partial<CloneCapable>).clone === 'function';
}
export function hasStreams(b: Backend): b is Backend & SnapshotCapable & StreamCapable {
  // Streams carry snapshots: a backend that can send but not snapshot could not move anything.
  return hasSnapshots(b) && typeof (b as Partial<StreamCapable>).send === 'function' && typeof (b as Partial<StreamCapable>).receive === 'function';
}
export function hasUsage(b: Backend): b is Backend & UsageCapable {
  return typeof (b as Partial<UsageCapable>).usage === 'function';
}

const GUARDS: Record<Ability, (b: Backend) => boolean> = { snapshots: hasSnapshots, clones: hasClones, streams: hasStreams, usage: hasUsage };

/** The abilities a backend object really has (what its methods are), in ABILITIES order. */
export function abilitiesOf(b: Backend): Ability[] {
  return ABILITIES.filter((a) => GUARDS[a](b));
}

/** The refusal of a use of an ability that the volume's backend does not have. */
function lacks(b: Backend, volume: string, what: string, ability: Ability): FerryError {
  return new FerryError('INVALID_REQUEST', `cannot ${what} volume ${volume}: its backend ${b.kind} has no ${ability}; use a backend that has (see ferry status)`);
}

/** The backend as SnapshotCapable, or INVALID_REQUEST naming the backend and what was asked. */
export function requireSnapshots(b: Backend, volume: string, what: string): Backend & SnapshotCapable {
  if (!hasSnapshots(b)) throw lacks(b, volume, what, 'snapshots');
  return b;
}
/** The backend as CloneCapable, or INVALID_REQUEST naming the backend and what was asked. */
export function requireClones(b: Backend, volume: string, what: string): Backend & CloneCapable {
  if (!hasClones(b)) throw lacks(b, volume, what, 'clones');
  return b;
}
/** The backend as StreamCapable (with snapshots), or INVALID_REQUEST: its volumes cannot move. */
export function requireStreams(b: Backend, volume: string, what: string): MovableBackend {
  if (!hasStreams(b)) throw lacks(b, volume, what, 'streams');
  return b;
}
