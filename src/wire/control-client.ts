import type {
  ClusterEvent,
  ContainerSpec,
  CopyToDestroy,
  HostReport,
  Lease,
  MoveRecord,
  NodeRecord,
  PolicyRecord,
  POLICY_BACKUP_FIELDS,
  RemovedVolume,
  BankRecord,
  BankSecrets,
  RemoveStart,
  ReplicationDuty,
  SnapshotOrigin,
  SnapshotRecord,
  VolumeView,
} from './records';
// fence: what a heartbeat answer's lease covers, and failovers.
import type { FailoverDuty, FailoverRecord, LeasedPrimary } from './records';

/** What a new volume is recorded with. */
export interface VolumeReservation {
  name: string;
  backend: string;
  sizeBytes?: number;
  fs?: string;
  options: Record<string, string>;
  primaryNode: string;
}

/** One host's copy of a snapshot, as an agent reports it to control's registry (snap). */
export interface SnapshotReport {
  volume: string;
  name: string;
  /** The host that holds this copy. */
  node: string;
  origin: SnapshotOrigin;
  /** When the snapshot was taken (RFC 3339): for a received copy, the time it was taken at its source. */
  createdAt: string;
  sizeBytes?: number | null;
  group?: string | null;
  policy?: string | null;
  /**
   * The host this copy was received from (a move's or replication's verified stream); absent when
   * `node` took the snapshot itself. Control records a received copy only from a host it records
   * holding it, and a taken one only under a name no host holds: so two hosts recorded holding the
   * same name hold the same data (what makes it a safe base for an increment, snapshot-chain.ts).
   */
  from?: string;
}
/** A policy as `ferry policy create` asks for it: every field of the record but its times. */
export type PolicySpec = Omit<PolicyRecord, 'createdAt' | 'updatedAt' | (typeof POLICY_BACKUP_FIELDS)[number]> &
  // bank-policy: the backup fields may be left out (a spec of issue 7's shape has no backups).
  Partial<Pick<PolicyRecord, (typeof POLICY_BACKUP_FIELDS)[number]>>;
/** What `updatePolicy` changes: any fields but the name; the others stay as they are. */
export type PolicyChanges = Partial<Omit<PolicySpec, 'name'>>;

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
  /**
   * Removes a volume cluster-wide, asked on `node` (any host): marks it `deleting` and every copy
   * (primary and replicas) to be destroyed; answers the hosts that must destroy theirs. VOLUME_IN_USE
   * while any lease is held anywhere (naming hosts and containers), VOLUME_BUSY while it moves or is
   * being created. Idempotent: a volume already `deleting` answers the hosts still to go.
   */
  beginDelete(name: string, node: string): Promise<string[]>;
  /**
   * `node` has destroyed its copy of `name` (one it was asked to drop). The volume's record goes with
   * its last copy when it is `deleting`. Idempotent; never forgets a replica that is kept.
   */
  copyDestroyed(name: string, node: string): Promise<void>;
  /** Forgets `node`'s replica of `name` that is not on its disk any more (reconciliation); kept replicas only. */
  forgetReplica(name: string, node: string, reason: string): Promise<void>;
  /**
   * Adds a lease for Docker Mount ID `mountId`, only while `node` is primary at `generation` and no
   * move is in its final step (fencing: a stale host never gets a lease). NOT_PRIMARY otherwise.
   */
  acquireLease(l: { volume: string; mountId: string; node: string; mountpoint: string; generation: number }): Promise<void>;
  /** False when `mountId` held no lease. */
  releaseLease(volume: string, mountId: string): Promise<boolean>;
  leasesOf(volume: string): Promise<Lease[]>;
  leasesOnNode(node: string): Promise<Lease[]>;
  dropLeases(volume: string, node: string, reason: string): Promise<number>;
  recordUsage(usage: Map<string, number>): Promise<void>;
  eventsOf(volume: string): Promise<ClusterEvent[]>;
  /** The newest `limit` events of the whole cluster, oldest first (the dashboard's "recent events"). */
  recentEvents(limit: number): Promise<ClusterEvent[]>;
  /** Every lease in the cluster, by volume (the dashboard's mounts and their containers). */
  listLeases(): Promise<Lease[]>;

  /** Records an agent (at its start) as up, with its transfer address and key. */
  registerNode(n: { name: string; address: string; transferKey: string; bootId: string }): Promise<void>;
  /**
   * Keeps a node up; answers the moves it takes part in and the copies it must destroy (of removed
   * volumes, and replicas not kept). `known: false` asks it to register again. `primaries` (fence):
   * the volumes whose primary it is, at their generation: what its time-bound lease covers until the
   * next answer (absent from an older control: the agent then holds no lease).
   */
  heartbeat(
    name: string,
    bootId: string,
  ): Promise<{ known: boolean; moves: MoveRecord[]; destroy: CopyToDestroy[]; primaries?: LeasedPrimary[]; failovers?: FailoverDuty[] }>;
  listNodes(): Promise<NodeRecord[]>;
  /** Keeps `node`'s newest report of its pools and findings (replacing the one before); idempotent. */
  reportHost(r: Omit<HostReport, 'at'>): Promise<void>;
  /** The newest report of every host that sent one, by host name. */
  hostReports(): Promise<HostReport[]>;

  /** Starts a move of `volume` to `target`, or joins the one under way to the same target. */
  requestMove(volume: string, target: string, opts?: { restartContainers?: boolean }): Promise<MoveRecord>;
  /** Records which containers hold `volume` on `node` (looked up after Mount, never during it). */
  annotateLeases(volume: string, node: string, containers: string[]): Promise<void>;
  /** The source records the containers it stopped for a move, for the target to start. */
  setMoveContainers(id: number, specs: ContainerSpec[]): Promise<void>;
  getMove(id: number): Promise<MoveRecord | undefined>;
  /** The move under way for `volume`, else its newest ended one. */
  moveOf(volume: string): Promise<MoveRecord | undefined>;
  /** Every move under way and the newest `endedLimit` ended ones (done or failed), newest first. */
  recentMoves(endedLimit: number): Promise<MoveRecord[]>;
  /** Progress and step changes of a move that has not switched; MOVE_CONFLICT when it is no longer current. */
  updateMove(id: number, u: { state?: 'releasing' | 'final'; bytesDone?: number; bytesTotal?: number | null }): Promise<MoveRecord>;
  /** Ends a move that has not switched as failed, with the reason; the source stays primary. */
  failMove(id: number, reason: string): Promise<void>;
  // --- reclaim: volumes removed with reclaim=retain (DESIGN: "Removing volumes safely") ---
  /**
   * beginDelete, deciding the volume's reclaim (reclaimOf): with `retain`, the primary's copy is kept
   * (`retaining`) and a removal record answered, whose dataset the primary makes before its live
   * copy goes; replicas are dropped as with delete. Idempotent: a volume already `deleting` answers
   * the same (the retaining record included, so a retried remove finishes the retain).
   */
  beginRemove(name: string, node: string): Promise<RemoveStart>;
  /** `node` has made the retained dataset of removal `id`: it is `retained`, and the live copy may go now. Idempotent. */
  retainedCopyMade(id: number, node: string): Promise<RemovedVolume>;
  /** Every removal record, newest first (ferry volume ls --removed; each host's upkeep). */
  listRemoved(): Promise<RemovedVolume[]>;
  /**
   * Starts bringing removal `id` back as volume `as` on `node` (its holder): records `as` in state
   * `creating`. VOLUME_EXISTS when `as` is taken (suggesting --as); VOLUME_NOT_FOUND when the
   * removal is not retained any more; INVALID_REQUEST when the data is on another host.
   */
  beginUndelete(id: number, as: string, node: string): Promise<RemovedVolume>;
  /** The data is back as `as`: it is `ready`, and the removal `dropping` (its retained dataset goes). */
  finishUndelete(id: number, as: string, node: string): Promise<void>;
  /** Removal `id` is past its time: `retained` -> `dropping`. False when it is not retained any more (undeleted meanwhile). */
  expireRemoved(id: number, node: string): Promise<boolean>;
  /** The retained dataset of a `dropping` removal is destroyed: the record goes. Idempotent. */
  forgetRemoved(id: number, node: string): Promise<void>;

  /** The atomic switch (DESIGN step 5). MOVE_CONFLICT when the move is not current or a lease is held. */
  switchMove(id: number): Promise<VolumeView>;
  /** Marks a switched move done once the target has mounted. */
  finishMove(id: number): Promise<void>;

  // --- snap (issue 7 item 1): the snapshot registry ---
  /**
   * Records that `s.node` holds snapshot `s.name` of `s.volume` (taken there, or received by a move or
   * replication). Idempotent: a repeat updates its size. VOLUME_NOT_FOUND for a volume control does not know.
   */
  recordSnapshot(s: SnapshotReport): Promise<void>;
  /** `node`'s copy of the snapshot is gone; the snapshot goes from the registry with its last copy. Idempotent. */
  forgetSnapshot(volume: string, name: string, node: string): Promise<void>;
  /** The snapshots of `volume` that any host holds, oldest first (by createdAt, then name). */
  snapshotsOf(volume: string): Promise<SnapshotRecord[]>;

  // --- policy (issue 7 item 3) ---
  /**
   * Records a new policy, checked whole (cron expression, keep spec, replicate-to or replicas, units):
   * INVALID_OPTION naming the field; POLICY_EXISTS when the name is taken. Records a `policy-created` event.
   */
  createPolicy(p: PolicySpec): Promise<PolicyRecord>;
  /** Changes some fields of a policy, checked as createPolicy checks them; POLICY_NOT_FOUND when there is none. */
  updatePolicy(name: string, changes: PolicyChanges): Promise<PolicyRecord>;
  getPolicy(name: string): Promise<PolicyRecord | undefined>;
  /** Every policy, by name. */
  listPolicies(): Promise<PolicyRecord[]>;
  /**
   * Forgets a policy. POLICY_IN_USE, naming the volumes, while any volume's options name it;
   * POLICY_NOT_FOUND when there is none.
   */
  deletePolicy(name: string): Promise<void>;
  /**
   * Changes options of an existing volume (`ferry volume set V KEY=VALUE`): a string sets a key, null
   * removes it. Only the keys of SETTABLE_OPTIONS (src/volume/volume-settings.ts) may change, each
   * checked (a `policy` must exist: POLICY_NOT_FOUND); records a `volume-set` event asked on `node`.
   * VOLUME_NOT_FOUND when there is no such volume (or it is being removed). Answers the volume as it is now.
   */
  setVolumeOptions(name: string, changes: Record<string, string | null>, node: string): Promise<VolumeView>;

  // --- replicate (issue 7 item 4) ---
  /** The volumes `node` keeps a standby of, each with its primary and settings (no volume that moves now). */
  replicationDuties(node: string): Promise<ReplicationDuty[]>;
  /**
   * `node` received replication snapshot `snapshot` of `volume` (`bytes` over the network): its lag
   * restarts from that snapshot's time (`takenAt`, when the standby asked for it, to the millisecond;
   * else the second its name carries). Answers the oldest base every standby still needs.
   */
  standbyReplicated(r: { volume: string; node: string; snapshot: string; bytes: number; takenAt?: string }): Promise<{ oldestBase: string | null }>;
  // --- quiesce (issue 7 item 2) ---
  /**
   * Records an event an agent saw (a snapshot hook's output, how long containers stayed paused) in
   * the event log `ferry volume inspect` shows. `kind`: lower-case words joined by `-`.
   */
  recordEvent(e: { volume?: string; node: string; kind: string; detail?: string }): Promise<void>;

  // --- fence (issue 7 item 5): fenced failover ---
  /**
   * `ferry volume failover VOLUME --to HOST [--force]`, asked on `node`: promotes `to`'s standby from
   * the newest snapshot it holds. Refused (VOLUME_BUSY) while the primary is up or may still hold its
   * lease, unless `force`, which fences it (generation + 1: its leases are refused from then on).
   */
  failoverVolume(volume: string, to: string, opts: { force: boolean; node: string }): Promise<FailoverRecord>;
  /** The new primary made the failover's snapshot live: leases may be granted again. Idempotent. */
  failoverPromoted(volume: string, node: string, generation: number): Promise<void>;
  /** The lost host kept its late writes as snapshot `keptAs` (null: none) and is a standby now. Idempotent. */
  failoverFenced(volume: string, node: string, generation: number, keptAs: string | null): Promise<void>;
  /** The failovers of `volume`, newest first. */
  failoversOf(volume: string): Promise<FailoverRecord[]>;

  // --- bank-ops (issue 8): banks ---
  /**
   * Records bank `b` with its secrets (kept by control, never in a log or an answer). BANK_EXISTS when
   * the name is taken. The agent has opened the store and checked the key before it asks. Records a
   * `bank-added` event asked on `node`.
   */
  addBank(b: Omit<BankRecord, 'createdAt'>, secrets: BankSecrets, node: string): Promise<BankRecord>;
  /** Every bank, by name (no secrets). */
  listBanks(): Promise<BankRecord[]>;
  getBank(name: string): Promise<BankRecord | undefined>;
  /** Forgets a bank (its data stays where it is); BANK_NOT_FOUND when there is none. Records `bank-removed`. */
  removeBank(name: string, node: string): Promise<void>;
  /** The secrets that open bank `name` (agents only: the local API never answers them); BANK_NOT_FOUND. */
  bankSecrets(name: string): Promise<BankSecrets>;
}
