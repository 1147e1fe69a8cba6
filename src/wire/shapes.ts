import { z } from 'zod';
import type { AgentStatus, BankRecord, ListedCheckpoint, ClusterEvent, DoctorCheck, DoctorReport, Lease, MoveRecord, NodeRecord, PolicyRecord, RemovedVolume, SnapshotRecord, VolumeView } from './records';
import { SNAPSHOT_ORIGINS } from './records';

/**
 * The JSON that `ferry ... --json` prints and the local API answers, as zod schemas: one place that
 * states the shapes (README documents them; the CLI tests parse real output with them). Adding a
 * field is compatible; removing or renaming one is not.
 */

const time = z.string();

export const volumeViewShape = z.object({
  name: z.string(),
  backend: z.string(),
  sizeBytes: z.number().int().nullable(),
  fs: z.string().nullable(),
  options: z.record(z.string(), z.string()),
  primaryNode: z.string(),
  generation: z.number().int(),
  state: z.enum(['creating', 'ready', 'deleting']),
  createdAt: time,
  usedBytes: z.number().int().nullable(),
  usedAt: time.nullable(),
  mounts: z.number().int(),
  replicas: z.array(z.string()),
  dropping: z.array(z.string()),
  snapshots: z.object({ count: z.number().int(), newest: z.string().nullable(), newestAt: time.nullable() }).optional(),
  standbys: z
    .array(
      z.object({
        node: z.string(),
        snapshot: z.string().nullable(),
        snapshotAt: time.nullable(),
        lagSeconds: z.number(),
        late: z.boolean(),
        rpoSeconds: z.number(),
        syncedAt: time.nullable(),
        lastBytes: z.number().nullable(),
      }),
    )
    .optional(),
}) satisfies z.ZodType<VolumeView>;

export const nodeShape = z.object({
  name: z.string(),
  address: z.string().nullable(),
  transferKey: z.string().nullable(),
  bootId: z.string().nullable(),
  lastHeartbeat: time.nullable(),
  state: z.enum(['up', 'down']),
  createdAt: time,
}) satisfies z.ZodType<NodeRecord>;

export const leaseShape = z.object({
  volume: z.string(),
  mountId: z.string(),
  node: z.string(),
  count: z.number().int(),
  mountpoint: z.string(),
  createdAt: time,
  containers: z.array(z.string()).optional(),
}) satisfies z.ZodType<Lease>;

export const moveShape = z.object({
  id: z.number().int(),
  volume: z.string(),
  source: z.string(),
  target: z.string(),
  state: z.enum(['precopy', 'releasing', 'final', 'switched', 'done', 'failed']),
  fromGeneration: z.number().int(),
  bytesDone: z.number(),
  bytesTotal: z.number().nullable(),
  error: z.string().nullable(),
  createdAt: time,
  updatedAt: time,
  restartContainers: z.boolean(),
  containers: z.array(z.object({ name: z.string(), config: z.record(z.string(), z.unknown()), hostConfig: z.record(z.string(), z.unknown()) })).nullable(),
}) satisfies z.ZodType<MoveRecord>;

export const eventShape = z.object({
  id: z.number().int(),
  at: time,
  volume: z.string().nullable(),
  node: z.string().nullable(),
  kind: z.string(),
  detail: z.string().nullable(),
}) satisfies z.ZodType<ClusterEvent>;

/** `ferry volume inspect NAME` (always JSON). */
export const volumeInspectShape = z.object({
  volume: volumeViewShape,
  /** Where it is mounted on this host, else null. */
  mountpoint: z.string().nullable(),
  leases: z.array(leaseShape),
  move: moveShape.nullable(),
  events: z.array(eventShape),
});
export type VolumeInspect = z.infer<typeof volumeInspectShape>;

export const statusShape = z.object({
  node: z.string(),
  backends: z.array(
    z.object({
      kind: z.string(),
      ok: z.boolean(),
      error: z.string().optional(),
      totalBytes: z.number().optional(),
      freeBytes: z.number().optional(),
      abilities: z.array(z.string()).optional(),
    }),
  ),
  volumes: z.number().int(),
  mounted: z.array(z.string()),
  orphans: z.array(z.object({ backend: z.string().optional(), name: z.string(), reason: z.string() })),
  missing: z.array(z.string()),
  replicas: z.array(z.string()),
  removing: z.array(z.string()),
}) satisfies z.ZodType<AgentStatus>;

export const doctorCheckShape = z.object({
  check: z.string(),
  ok: z.boolean(),
  problem: z.string().nullable(),
  fix: z.string().nullable(),
  detail: z.string().optional(),
}) satisfies z.ZodType<DoctorCheck>;

export const doctorReportShape = z.object({
  node: z.string().nullable(),
  ok: z.boolean(),
  checks: z.array(doctorCheckShape),
}) satisfies z.ZodType<DoctorReport>;

/** `ferry volume ls --json`: an array of volumes. */
export const volumeListShape = z.array(volumeViewShape);
/** `ferry node ls --json`: an array of hosts. */
export const nodeListShape = z.array(nodeShape);

// --- policy (issue 7 item 3) ---

/** A protection policy (`ferry policy create|update --json` print one; `ferry policy ls --json` an array). */
export const policyShape = z.object({
  name: z.string(),
  schedule: z.string().nullable(),
  keep: z.string().nullable(),
  replicateTo: z.array(z.string()),
  replicas: z.number().int().nullable(),
  rpoSeconds: z.number().int().nullable(),
  bandwidthBytes: z.number().int().nullable(),
  failover: z.enum(['auto', 'manual']),
  reclaim: z.enum(['delete', 'retain']),
  retainRemovedSeconds: z.number().int().nullable(),
  backupTo: z.string().nullable(),
  backupSchedule: z.string().nullable(),
  backupKeep: z.string().nullable(),
  verifyEverySeconds: z.number().int().nullable(),
  verifyWith: z.string().nullable(),
  createdAt: time,
  updatedAt: time,
}) satisfies z.ZodType<PolicyRecord>;
export const policyListShape = z.array(policyShape);
/** `ferry policy inspect NAME` (always JSON): the policy and the volumes that have it. */
export const policyInspectShape = z.object({ policy: policyShape, volumes: z.array(z.string()) });
// --- snap (issue 7 item 1) ---
export const snapshotShape = z.object({
  volume: z.string(),
  name: z.string(),
  origin: z.enum(SNAPSHOT_ORIGINS),
  createdAt: time,
  sizeBytes: z.number().int().nullable(),
  hosts: z.array(z.string()),
  group: z.string().nullable(),
  policy: z.string().nullable(),
}) satisfies z.ZodType<SnapshotRecord>;
/** `ferry snapshot ls --json`: an array of snapshots, oldest first per volume. */
export const snapshotListShape = z.array(snapshotShape);

// --- reclaim ---

/** A removed volume whose data is retained (`ferry volume ls --removed --json` is an array of these). */
export const removedVolumeShape = z.object({
  id: z.number().int(),
  name: z.string(),
  node: z.string(),
  dataset: z.string(),
  backend: z.string(),
  sizeBytes: z.number().int().nullable(),
  fs: z.string().nullable(),
  options: z.record(z.string(), z.string()),
  usedBytes: z.number().int().nullable(),
  createdAt: time,
  removedAt: time,
  expiresAt: time,
  state: z.enum(['retaining', 'retained', 'dropping']),
}) satisfies z.ZodType<RemovedVolume>;
export const removedListShape = z.array(removedVolumeShape);

// --- bank-ops (issue 8): banks and backups ---

/** A bank (`ferry bank ls --json` is an array of these; no secret is ever in it). */
export const bankShape = z
  .object({
    name: z.string(),
    url: z.string(),
    endpoint: z.string().nullable(),
    region: z.string().nullable(),
    readOnly: z.boolean(),
    bankId: z.string(),
    createdAt: time,
  })
  .strict() satisfies z.ZodType<BankRecord>;
export const bankListShape = z.array(bankShape);

/** A checkpoint with its bank (`ferry backup ls --json` is an array of these; `backup create --json` prints one). */
export const checkpointShape = z.object({
  bank: z.string(),
  id: z.string().regex(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/),
  volume: z.string(),
  time,
  host: z.string(),
  backend: z.string(),
  sizeBytes: z.number().int().optional(),
  fs: z.string().optional(),
  dataBytes: z.number().int(),
  files: z.number().int(),
  addedBytes: z.number().int(),
  parent: z.string().optional(),
  origin: z.string(),
}) satisfies z.ZodType<ListedCheckpoint>;
export const checkpointListShape = z.array(checkpointShape);
