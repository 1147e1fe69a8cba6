/**
 * The records control keeps and answers with, as they travel between control, agents and the CLI:
 * plain types, no server code (DESIGN: imports point one way; both sides import this).
 */
import type { CheckpointSummary } from '../volume/checkpoint-summary';

export type VolumeState = 'creating' | 'ready' | 'deleting';

/** A volume as control records it. Sizes in bytes; times RFC 3339. */
export interface VolumeRecord {
  name: string;
  backend: string;
  sizeBytes: number | null;
  fs: string | null;
  options: Record<string, string>;
  primaryNode: string;
  generation: number;
  state: VolumeState;
  createdAt: string;
  usedBytes: number | null;
  usedAt: string | null;
}

/** A volume with its live facts, as List, Get and the CLI show it. */
export interface VolumeView extends VolumeRecord {
  /** Active Docker mounts (sum of lease counts) across the cluster. */
  mounts: number;
  /** Hosts other than the primary that keep a replica (read-only copy, for increments-only moves back). */
  replicas: string[];
  /**
   * Hosts that must still destroy their copy: a replica that policy does not keep, or, while the
   * volume is `deleting`, every host that held a copy (the primary included) until it reports it gone.
   */
  dropping: string[];
  /** snap: how many snapshots control's registry holds of it, and the newest (Docker's inspect Status shows them). */
  snapshots?: SnapshotSummary;
  /**
   * fence: set when an agent answered from its own records because control was unreachable: since
   * when heartbeats fail (null: the first call failed) and when control last told it of this volume.
   */
  controlAway?: { since: string | null; recordedAt: string };
  /** replicate: the standbys that replication keeps, each with its lag; absent without replication. */
  standbys?: StandbyView[];
}

/** fence: a volume whose primary the heartbeating host is, at its generation: what its lease covers. */
export interface LeasedPrimary {
  volume: string;
  generation: number;
}

/** A copy that a host must destroy, as the heartbeat answer carries it. */
export interface CopyToDestroy {
  volume: string;
  backend: string;
}

/** Docker Mount IDs holding a volume on one host (DESIGN: a mount lease), counted per ID. */
export interface Lease {
  volume: string;
  mountId: string;
  node: string;
  count: number;
  mountpoint: string;
  createdAt: string;
  /** Containers using the volume on that host, when the agent has looked them up. */
  containers?: string[];
}

export type NodeState = 'up' | 'down';

/** A host of the cluster as control records it. */
export interface NodeRecord {
  name: string;
  /** Where its transfer service listens, "ip:port". */
  address: string | null;
  /** Its transfer public key (OpenSSH format), which other agents trust. */
  transferKey: string | null;
  /** Changes at every agent start: tells a restart from a long silence. */
  bootId: string | null;
  lastHeartbeat: string | null;
  state: NodeState;
  createdAt: string;
}

/** A state change people may want to see in `ferry volume inspect`. */
export interface ClusterEvent {
  id: number;
  at: string;
  volume: string | null;
  node: string | null;
  kind: string;
  detail: string | null;
}

/** What is needed to create a container again on another host: its config as dockerd reports it. */
export interface ContainerSpec {
  name: string;
  config: Record<string, unknown>;
  hostConfig: Record<string, unknown>;
}

/** A move's state; what each means, and the only ways from one to the next: src/control/move-states.ts. */
export type MoveState = 'precopy' | 'releasing' | 'final' | 'switched' | 'done' | 'failed';

/** A move of a volume from one host to another, as control records it. */
export interface MoveRecord {
  id: number;
  volume: string;
  source: string;
  target: string;
  state: MoveState;
  fromGeneration: number;
  bytesDone: number;
  bytesTotal: number | null;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  /** Stop the containers using it on the source and start them on the target (plain Docker). */
  restartContainers: boolean;
  /** What the source stopped, to start on the target; null until the source has looked. */
  containers: ContainerSpec[] | null;
}

/**
 * What an agent tells control about its host now and then (every usage interval): its pools and what
 * reconciliation found there, for the dashboard of `ferry control`. `at` is when control received it.
 */
export interface HostReport {
  node: string;
  at: string;
  backends: AgentStatus['backends'];
  orphans: AgentStatus['orphans'];
  missing: string[];
}

/** What `ferry status` shows about a host. */
export interface AgentStatus {
  node: string;
  backends: { kind: string; ok: boolean; error?: string; totalBytes?: number; freeBytes?: number; health?: string; abilities?: string[] }[];
  volumes: number;
  mounted: string[];
  orphans: { backend?: string; name: string; reason: string }[];
  missing: string[];
  /** Volumes primary elsewhere whose replica this host keeps (read-only, for increments-only moves back). */
  replicas: string[];
  /** Volumes whose copy here is waiting to be destroyed (removed volumes, replicas not kept). */
  removing: string[];
}

/**
 * One finding of `ferry doctor`: what was checked, whether it passed, and when not, what is wrong
 * and the command (or step) that fixes it.
 */
export interface DoctorCheck {
  /** Stable name, e.g. "plugin-socket", "pool:btrfs", "peer:h2". */
  check: string;
  ok: boolean;
  /** What is wrong, in words; null when ok. */
  problem: string | null;
  /** What to run or do; null when ok. */
  fix: string | null;
  /** What was found, for people (a passed check says what it saw). */
  detail?: string;
}

/** What `ferry doctor --json` prints, and what the local API's `/v1/doctor` answers (the agent's share). */
export interface DoctorReport {
  node: string | null;
  ok: boolean;
  checks: DoctorCheck[];
}

// --- snap (issue 7 item 1): the snapshot registry ---------------------------------------------

/**
 * Who made a snapshot: a user (`manual`), a policy's schedule, replication, a fenced host's late
 * writes kept for recovery by hand (`fenced`), or a removal kept by `reclaim=retain` (`removed`).
 */
export type SnapshotOrigin = 'manual' | 'schedule' | 'replication' | 'fenced' | 'removed' | 'backup';
export const SNAPSHOT_ORIGINS = ['manual', 'schedule', 'replication', 'fenced', 'removed', 'backup'] as const satisfies readonly SnapshotOrigin[];

/** A snapshot of a volume as control's registry records it: one per stored name, with every host holding it. */
export interface SnapshotRecord {
  volume: string;
  /** The stored name (its owner is read from it: src/volume/snapshot-names.ts). */
  name: string;
  origin: SnapshotOrigin;
  /** When it was taken (RFC 3339), on the host that took it. */
  createdAt: string;
  /** What the snapshot holds on its own (bytes not shared with the live data), where the backend can tell. */
  sizeBytes: number | null;
  /** Every host holding it, sorted. */
  hosts: string[];
  /** The group it was taken with (`ferry snapshot create --group`, a Compose project), if any. */
  group: string | null;
  /** The policy whose schedule took it, if any. */
  policy: string | null;
}

/** A volume's snapshots in brief (VolumeView.snapshots). */
export interface SnapshotSummary {
  count: number;
  /** The newest snapshot's name and when it was taken; null without snapshots. */
  newest: string | null;
  newestAt: string | null;
}

// --- policy (issue 7 item 3): protection policies, read by replicate, fence and reclaim too ---

/** What control does when a volume's primary host is lost (DESIGN: fenced failover). */
export type FailoverMode = 'auto' | 'manual';
/** What `docker volume rm` does with a volume's data (Kubernetes' Retain/Delete). */
export type ReclaimMode = 'delete' | 'retain';

/**
 * A named protection policy, as control records it (`ferry policy create`). A volume has one when its
 * options name it (`options.policy`). Every field is stored as given; schedule and keep drive snapshots
 * on the volume's primary host, the others are read by replication, failover and reclaim.
 */
export interface PolicyRecord {
  /** `[a-z0-9][a-z0-9_-]*`, at most 40 characters: it appears inside snapshot names. */
  name: string;
  /** A cron expression (5 fields, or 6 with seconds first), evaluated in UTC; null: no scheduled snapshots. */
  schedule: string | null;
  /** Retention of scheduled snapshots: "48h 14d 8w 12m" (newest per hour/day/week/month) or a count "10"; null: keep all. */
  keep: string | null;
  /** Hosts that keep a standby copy; empty when none are named (see `replicas`). */
  replicateTo: string[];
  /** How many standbys control chooses hosts for; null when `replicateTo` names them (or none). */
  replicas: number | null;
  /** Longest acceptable age of a standby's newest data, in seconds; null: no replication target. */
  rpoSeconds: number | null;
  /** Bandwidth cap of replication sends, bytes per second; null: unlimited. */
  bandwidthBytes: number | null;
  failover: FailoverMode;
  reclaim: ReclaimMode;
  /** With `reclaim: 'retain'`, how long a removed volume's data is kept, in seconds; null: until undeleted or purged by hand. */
  retainRemovedSeconds: number | null;
  // bank-policy (issue 8 items 4, 5): scheduled backups to a bank, their retention, the restore drill.
  /** The bank scheduled backups go to (`ferry bank ls`); null: no scheduled backups. */
  backupTo: string | null;
  /** When to back up, a cron expression in UTC like `schedule`; set exactly when backupTo is. */
  backupSchedule: string | null;
  /** Retention of the scheduled checkpoints in that bank ("7d 4w 12m" or a count); null: keep all. */
  backupKeep: string | null;
  /** Restore drill: how often the newest checkpoint is restored and checked, in seconds; null: never. */
  verifyEverySeconds: number | null;
  /** Restore drill: "IMAGE COMMAND", run as `sh -c COMMAND` in IMAGE on the restored data at /data. */
  verifyWith: string | null;
  createdAt: string;
  updatedAt: string;
}

/** bank-policy: a policy's backup and drill fields (every one null in a policy without backups). */
export const POLICY_BACKUP_FIELDS = ['backupTo', 'backupSchedule', 'backupKeep', 'verifyEverySeconds', 'verifyWith'] as const;

// --- replicate (issue 7 item 4): standbys kept by replication rounds ---

/** One standby of a volume as control records it, with its lag (age of its newest snapshot). */
export interface StandbyView {
  node: string;
  /** The newest replication snapshot it holds (the next round's base); null before its first round. */
  snapshot: string | null;
  /** When that snapshot was taken on the primary. */
  snapshotAt: string | null;
  /** Seconds between its newest snapshot and now (since it was chosen, before its first round). */
  lagSeconds: number;
  /** The lag passed the RPO (control recorded a `replication-late` event, not yet a recovery). */
  late: boolean;
  rpoSeconds: number;
  /** When its last round ended, and the bytes that round received. */
  syncedAt: string | null;
  lastBytes: number | null;
}

/** What a standby host must keep fresh: one volume, where its primary is, and how. */
export interface ReplicationDuty {
  volume: string;
  backend: string;
  sizeBytes: number | null;
  fs: string | null;
  primary: string;
  generation: number;
  rpoSeconds: number;
  bandwidthBytes: number | null;
  /** The oldest of every standby's newest snapshot: what the primary must keep (null: one has none yet). */
  oldestBase: string | null;
}

// --- fence (issue 7 item 5): fenced failover ---------------------------------------------------

/** A failover as control records it: who lost the volume, who got it, from which snapshot, and the window lost. */
export interface FailoverRecord {
  id: number;
  volume: string;
  /** The lost (or fenced) primary. */
  from: string;
  /** The standby promoted. */
  to: string;
  /** The volume's generation from this failover on. */
  generation: number;
  /** The snapshot made live on `to`. */
  snapshot: string;
  /** What `from` may have written that `to` does not have: from the snapshot's time to `from`'s last heartbeat. */
  lostFrom: string;
  lostTo: string | null;
  /** Done by `--force` over a primary that may still have held its lease. */
  forced: boolean;
  /** `to` made the snapshot live (leases are granted again). */
  promoted: boolean;
  /** `from` is back, kept its late writes (`keptAs`) and became a standby. */
  fenced: boolean;
  keptAs: string | null;
  createdAt: string;
}

/** What a heartbeat answer asks of a host after a failover: make the snapshot live, or fence its stale copy. */
export interface FailoverDuty {
  volume: string;
  backend: string;
  sizeBytes: number | null;
  fs: string | null;
  role: 'promote' | 'fence';
  snapshot: string;
  /** The failover's generation (the lost one is this - 1). */
  generation: number;
}

// --- reclaim: removed volumes whose data is retained (reclaim=retain) ---

/**
 * retaining: removed; the live dataset is still there while its retained copy is made. retained:
 * kept until `expiresAt` (ferry volume undelete brings it back). dropping: expired or undeleted; its
 * retained dataset is being destroyed (the row goes when it is).
 */
export type RemovedState = 'retaining' | 'retained' | 'dropping';

/** A volume removed with `reclaim=retain`, as control records it: its data kept on `node` as `dataset`. */
export interface RemovedVolume {
  /** The removal's id: one name may be removed, created again and removed again. */
  id: number;
  /** The name the volume had. */
  name: string;
  /** The host that keeps the data (the volume's primary when it was removed). */
  node: string;
  /** The retained dataset's name there (`_removed.<id>`, volume/names.ts). */
  dataset: string;
  backend: string;
  sizeBytes: number | null;
  fs: string | null;
  options: Record<string, string>;
  /** Used bytes when it was removed (its last measurement). */
  usedBytes: number | null;
  /** When the volume was created, and when it was removed. */
  createdAt: string;
  removedAt: string;
  /** When upkeep destroys the data (removedAt + the retain time). */
  expiresAt: string;
  state: RemovedState;
}

/** What starting a remove answers: the hosts that must still destroy a copy, and the retained record, if kept. */
export interface RemoveStart {
  hosts: string[];
  retained: RemovedVolume | null;
}

// --- bank-ops (issue 8): banks that backups go to ---------------------------------------------------


/** A checkpoint as `ferry backup ls` lists it: the bank's checkpoint summary with the bank it is in. */
export interface ListedCheckpoint extends CheckpointSummary {
  bank: string;
}

/**
 * A bank as control records it (`ferry bank add`): where it is and how it is reached, never its
 * secrets (those are `BankSecrets`, handed only to agents). Usable from every host of the cluster.
 */
export interface BankRecord {
  /** `[a-z0-9][a-z0-9_-]*`, at most 40 characters (src/volume/backup-refs.ts). */
  name: string;
  /** file:///path or s3://bucket/prefix */
  url: string;
  /** s3: the endpoint URL and region, when given. */
  endpoint: string | null;
  region: string | null;
  /** Added with --read-only: this cluster lists and restores, never writes (backup, rm, gc refused). */
  readOnly: boolean;
  /** The bank's own id (its `config`), so a bank added twice is recognised. */
  bankId: string;
  createdAt: string;
}

/**
 * What opens a bank, as control keeps it (its DB file is 0600) and gives only to agents over the
 * agent channel: the key file's bytes (base64) and the S3 credentials' file contents (trimmed).
 */
export interface BankSecrets {
  keyBase64: string;
  accessKey?: string;
  secretKey?: string;
}
