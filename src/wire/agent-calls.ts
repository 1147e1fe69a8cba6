import { z } from 'zod';
import type { ControlClient } from './control-client';
import { SNAPSHOT_ORIGINS } from './records';

const name = z.string().min(1).max(256);
// --- policy (issue 7 item 3): a policy's fields as they travel; control checks what they mean ---
const policyFields = {
  schedule: z.string().min(1).max(256).nullable(),
  keep: z.string().min(1).max(256).nullable(),
  replicateTo: z.array(name).max(64),
  replicas: z.number().int().min(1).max(64).nullable(),
  rpoSeconds: z.number().int().min(1).nullable(),
  bandwidthBytes: z.number().int().min(1).nullable(),
  failover: z.enum(['auto', 'manual']),
  reclaim: z.enum(['delete', 'retain']),
  retainRemovedSeconds: z.number().int().min(1).nullable(),
  // bank-policy (issue 8): optional, so a spec of issue 7's shape still reads (absent = null).
  backupTo: z.string().min(1).max(64).nullable().optional(),
  backupSchedule: z.string().min(1).max(256).nullable().optional(),
  backupKeep: z.string().min(1).max(256).nullable().optional(),
  verifyEverySeconds: z.number().int().min(1).nullable().optional(),
  verifyWith: z.string().min(1).max(1024).nullable().optional(),
};
/** `createPolicy`'s argument (and the body of `POST /v1/policies`). */
export const policySpecSchema = z.object({ name: z.string().min(1).max(64), ...policyFields }).strict();
/** `updatePolicy`'s changes (and the body of `PATCH /v1/policies/NAME`). */
export const policyChangesSchema = z.object(policyFields).partial().strict();
/** `setVolumeOptions`'s changes (and the body of `PATCH /v1/volumes/NAME/options`): null removes a key. */
export const volumeOptionChangesSchema = z.record(z.string().min(1).max(64), z.string().max(256).nullable());

/** bank-ops: a bank's secrets as they travel to control (file contents; the key as base64). */
export const bankSecretsSchema = z
  .object({ keyBase64: z.string().min(44).max(65536), accessKey: z.string().min(1).max(4096).optional(), secretKey: z.string().min(1).max(4096).optional() })
  .strict();

const lease = z.object({ volume: name, mountId: z.string().min(1).max(512), node: name, mountpoint: z.string().min(1), generation: z.number().int() });

/**
 * The calls agents make of control, each with the schema of its arguments. One table serves the
 * server (validation) and the client (HttpControl), so the two cannot drift apart.
 */
export const AGENT_CALLS = {
  reserveVolume: z.tuple([
    z.object({ name, backend: name, sizeBytes: z.number().int().positive().optional(), fs: name.optional(), options: z.record(z.string(), z.string()), primaryNode: name }),
  ]),
  confirmVolume: z.tuple([name, name]),
  abandonVolume: z.tuple([name, name, z.string()]),
  getVolume: z.tuple([name]),
  listVolumes: z.tuple([]),
  beginDelete: z.tuple([name, name]),
  copyDestroyed: z.tuple([name, name]),
  forgetReplica: z.tuple([name, name, z.string().max(4000)]),
  acquireLease: z.tuple([lease]),
  releaseLease: z.tuple([name, z.string().min(1).max(512)]),
  leasesOf: z.tuple([name]),
  leasesOnNode: z.tuple([name]),
  dropLeases: z.tuple([name, name, z.string()]),
  recordUsage: z.tuple([z.record(z.string(), z.number())]),
  eventsOf: z.tuple([name]),
  recentEvents: z.tuple([z.number().int().min(1).max(1000)]),
  listLeases: z.tuple([]),
  registerNode: z.tuple([z.object({ name, address: z.string().min(3).max(300), transferKey: z.string().min(16).max(4096), bootId: name })]),
  heartbeat: z.tuple([name, name]),
  listNodes: z.tuple([]),
  reportHost: z.tuple([
    z.object({
      node: name,
      backends: z
        .array(
          z.object({
            kind: name,
            ok: z.boolean(),
            error: z.string().max(4000).optional(),
            totalBytes: z.number().min(0).optional(),
            freeBytes: z.number().min(0).optional(),
            abilities: z.array(z.string().max(64)).max(64).optional(),
          }),
        )
        .max(64),
      orphans: z.array(z.object({ backend: name.optional(), name: z.string().max(1024), reason: z.string().max(4000) })).max(1000),
      missing: z.array(z.string().max(1024)).max(1000),
    }),
  ]),
  hostReports: z.tuple([]),
  requestMove: z.tuple([name, name]).rest(z.object({ restartContainers: z.boolean().optional() })),
  annotateLeases: z.tuple([name, name, z.array(z.string().max(256)).max(1000)]),
  setMoveContainers: z.tuple([
    z.number().int(),
    z.array(z.object({ name: z.string().min(1).max(256), config: z.record(z.string(), z.unknown()), hostConfig: z.record(z.string(), z.unknown()) })).max(1000),
  ]),
  getMove: z.tuple([z.number().int()]),
  moveOf: z.tuple([name]),
  recentMoves: z.tuple([z.number().int().min(0).max(1000)]),
  updateMove: z.tuple([
    z.number().int(),
    z.object({ state: z.enum(['releasing', 'final']).optional(), bytesDone: z.number().int().min(0).optional(), bytesTotal: z.number().int().min(0).nullable().optional() }),
  ]),
  failMove: z.tuple([z.number().int(), z.string().max(4000)]),
  switchMove: z.tuple([z.number().int()]),
  finishMove: z.tuple([z.number().int()]),
  // fence (issue 7 item 5): fenced failover
  failoverVolume: z.tuple([name, name, z.object({ force: z.boolean(), node: name })]),
  failoverPromoted: z.tuple([name, name, z.number().int()]),
  failoverFenced: z.tuple([name, name, z.number().int(), z.string().min(1).max(128).nullable()]),
  failoversOf: z.tuple([name]),
  // snap (issue 7 item 1): the snapshot registry
  recordSnapshot: z.tuple([
    z.object({
      volume: name,
      name: z.string().min(1).max(100),
      node: name,
      origin: z.enum(SNAPSHOT_ORIGINS),
      createdAt: z.string().min(1).max(64),
      sizeBytes: z.number().int().min(0).nullable().optional(),
      group: name.nullable().optional(),
      policy: name.nullable().optional(),
      from: name.optional(),
    }),
  ]),
  forgetSnapshot: z.tuple([name, z.string().min(1).max(100), name]),
  snapshotsOf: z.tuple([name]),
  // --- policy (issue 7 item 3) ---
  createPolicy: z.tuple([policySpecSchema]),
  updatePolicy: z.tuple([name, policyChangesSchema]),
  getPolicy: z.tuple([name]),
  listPolicies: z.tuple([]),
  deletePolicy: z.tuple([name]),
  setVolumeOptions: z.tuple([name, volumeOptionChangesSchema, name]),
  // replicate (issue 7 item 4)
  replicationDuties: z.tuple([name]),
  standbyReplicated: z.tuple([z.object({ volume: name, node: name, snapshot: z.string().min(1).max(128), bytes: z.number().int().min(0), takenAt: z.string().max(64).optional() })]),
  // quiesce (issue 7 item 2)
  recordEvent: z.tuple([z.object({ volume: name.optional(), node: name, kind: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/), detail: z.string().max(4000).optional() })]),
  // reclaim
  beginRemove: z.tuple([name, name]),
  retainedCopyMade: z.tuple([z.number().int(), name]),
  listRemoved: z.tuple([]),
  beginUndelete: z.tuple([z.number().int(), name, name]),
  finishUndelete: z.tuple([z.number().int(), name, name]),
  expireRemoved: z.tuple([z.number().int(), name]),
  forgetRemoved: z.tuple([z.number().int(), name]),
  // bank-ops (issue 8): banks (the secrets travel only on this, the agent channel)
  addBank: z.tuple([
    z.object({ name, url: z.string().min(1).max(2048), endpoint: z.string().max(2048).nullable(), region: z.string().max(128).nullable(), readOnly: z.boolean(), bankId: z.string().min(1).max(128) }).strict(),
    bankSecretsSchema,
    name,
  ]),
  listBanks: z.tuple([]),
  getBank: z.tuple([name]),
  removeBank: z.tuple([name, name]),
  bankSecrets: z.tuple([name]),
} as const satisfies { [K in keyof ControlClient]: z.ZodTuple };

export type AgentCall = keyof typeof AGENT_CALLS;

/** recordUsage travels as a plain object; everything else as JSON already. */
export function encodeArgs(method: AgentCall, args: unknown[]): unknown[] {
  return method === 'recordUsage' ? [Object.fromEntries(args[0] as Map<string, number>)] : args;
}
/** The server's side of encodeArgs. */
export function decodeArgs(method: AgentCall, args: unknown[]): unknown[] {
  return method === 'recordUsage' ? [new Map(Object.entries(args[0] as Record<string, number>))] : args;
}
