import type { Readable } from 'node:stream';

export const BACKEND_KINDS = ['btrfs', 'loop', 'directory'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

export const LOOP_FILESYSTEMS = ['ext4', 'xfs'] as const;
export type LoopFilesystem = (typeof LOOP_FILESYSTEMS)[number];

/** What a dataset is made with. Sizes are bytes. */
export interface DatasetSpec {
  /** The hard limit of the dataset's contents; absent means "limited by the pool only". */
  sizeBytes?: number;
  /** Filesystem inside a loop image (loop backend only). */
  fs?: LoopFilesystem;
}

/** Space in a backend's pool, in bytes. */
export interface PoolCapacity {
  totalBytes: number;
  freeBytes: number;
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
  readonly kind: BackendKind;
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
  /** Makes a new dataset `target` from snapshot `snap` of `name`. */
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
  /** Used bytes of each dataset, by name; a dataset it cannot measure is left out. */
  usage(): Promise<Map<string, number>>;
}

export function hasSnapshots(b: Backend): b is Backend & SnapshotCapable {
  return typeof (b as Partial<SnapshotCapable>).snapshot === 'function';
}
export function hasStreams(b: Backend): b is Backend & StreamCapable {
  return typeof (b as Partial<StreamCapable>).send === 'function';
}
export function hasUsage(b: Backend): b is Backend & UsageCapable {
  return typeof (b as Partial<UsageCapable>).usage === 'function';
}

/** Everything the built-in backends implement. */
export type FullBackend = Backend & SnapshotCapable & StreamCapable & UsageCapable;
