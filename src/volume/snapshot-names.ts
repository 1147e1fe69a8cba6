import { FerryError } from '../errors';

/**
 * The names of stored snapshots, and who owns each (DESIGN: "Snapshots have owners").
 *
 * A snapshot belongs to exactly one owner, and each owner deletes only its own. The owner is read
 * from the stored name, so the naming is the ownership:
 *
 * - user names (what `ferry snapshot` will take) start with a letter or digit:
 *   `[A-Za-z0-9][A-Za-z0-9_.-]*`, except the legacy move names below.
 * - internal names start with `_`, which no user name can: `_<owner>.<key>`, the key made of
 *   `[A-Za-z0-9_-]` words joined by `.`. A move's are `_move.<id>.<round>` and `_move.<id>.final`.
 *   The owners `schedule`, `replication` and `backup` are reserved for what comes next; `removed`
 *   (`_removed.<id>`) is the last snapshot of a volume removed with `reclaim=retain` (reclaim.ts).
 * - legacy move names written by earlier versions, `m<id>-<round>` and `m<id>-final`, still count as
 *   the move's (existing hosts hold them as replica bases); a user may not take such a name.
 *
 * Every stored name keeps to `[A-Za-z0-9_.-]`, does not start with `-` or `.`, and has at most
 * MAX_SNAPSHOT_NAME characters: valid as a btrfs subvolume, a plain file, a ZFS snapshot and an LVM
 * LV name (none of the owner words is one of LVM's reserved words such as `_mlog` or `snapshot`).
 */

/** Every owner of snapshots. */
export const SNAPSHOT_OWNERS = ['user', 'move', 'schedule', 'replication', 'backup', 'removed'] as const;
export type SnapshotOwner = (typeof SNAPSHOT_OWNERS)[number];

export const MAX_SNAPSHOT_NAME = 100;
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const STORED_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const INTERNAL = /^_([a-z]+)\.([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)$/;
const MOVE_KEY = /^([1-9][0-9]*)\.([1-9][0-9]*|final)$/;
const LEGACY_MOVE = /^m([1-9][0-9]*)-([1-9][0-9]*|final)$/;

/** What a stored name says about its snapshot. */
export type SnapshotName =
  | { owner: 'user'; name: string }
  /** `round` is a pre-copy round (1, 2, ...) or the final snapshot; `legacy` for `m<id>-...` names. */
  | { owner: 'move'; move: number; round: number | 'final'; legacy: boolean }
  | { owner: 'schedule' | 'replication' | 'backup' | 'removed'; key: string };

/** The name of round `round` (1, 2, ...) of move `id`'s pre-copy. */
export function moveRoundSnapshot(id: number, round: number): string {
  return `_move.${id}.${round}`;
}

/** The name of move `id`'s final snapshot (taken with the volume released). */
export function moveFinalSnapshot(id: number): string {
  return `_move.${id}.final`;
}

/**
 * The last snapshot of a volume removed with `reclaim=retain` (removal `id` in control's
 * removed_volumes): taken of the live dataset, then cloned into the retained dataset.
 */
export function removedSnapshot(id: number): string {
  return `_removed.${id}`;
}

/** Reads a stored name (pure); undefined for a name that is not a valid one of any owner. */
export function parseSnapshotName(name: string): SnapshotName | undefined {
  if (name.length === 0 || name.length > MAX_SNAPSHOT_NAME || !STORED_NAME.test(name)) return undefined;
  const legacy = LEGACY_MOVE.exec(name);
  if (legacy) return { owner: 'move', move: Number(legacy[1]), round: roundOf(legacy[2]), legacy: true };
  if (USER_NAME.test(name)) return { owner: 'user', name };
  const internal = INTERNAL.exec(name);
  if (!internal) return undefined;
  const [, owner, key] = internal;
  if (owner === 'move') {
    const m = MOVE_KEY.exec(key);
    return m ? { owner: 'move', move: Number(m[1]), round: roundOf(m[2]), legacy: false } : undefined;
  }
  if (owner === 'schedule' || owner === 'replication' || owner === 'backup' || owner === 'removed') return { owner, key };
  return undefined;
}

const roundOf = (s: string): number | 'final' => (s === 'final' ? 'final' : Number(s));

/** The move that owns stored snapshot `name`, or undefined when a move does not own it. */
export function moveOfSnapshot(name: string): number | undefined {
  const p = parseSnapshotName(name);
  return p?.owner === 'move' ? p.move : undefined;
}

/**
 * Throws INVALID_NAME unless `name` is a name a user may give a snapshot: 1 to 100 characters of
 * `[A-Za-z0-9_.-]`, starting with a letter or digit, and not a name that moves use.
 */
export function validateSnapshotName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_SNAPSHOT_NAME || !USER_NAME.test(name)) {
    throw new FerryError(
      'INVALID_NAME',
      `invalid snapshot name ${JSON.stringify(name)}: use 1 to ${MAX_SNAPSHOT_NAME} characters of [a-zA-Z0-9_.-], starting with a letter or digit`,
    );
  }
  if (parseSnapshotName(name)?.owner !== 'user') {
    throw new FerryError('INVALID_NAME', `snapshot name ${JSON.stringify(name)} is one that moves use (m<id>-<round>); pick another name`);
  }
  return name;
}

/**
 * Throws INVALID_NAME unless `name` is a stored snapshot name of any owner (what hosts exchange over
 * the transfer channel: user names, internal names and legacy move names).
 */
export function validateStoredSnapshotName(name: unknown): string {
  if (typeof name !== 'string' || parseSnapshotName(name) === undefined) {
    throw new FerryError(
      'INVALID_NAME',
      `invalid snapshot name ${JSON.stringify(name)}: a stored name is a user name or _<owner>.<key> (${SNAPSHOT_OWNERS.join(', ')}) of at most ${MAX_SNAPSHOT_NAME} characters`,
    );
  }
  return name;
}

// --- snap (issue 7 item 1): names of new snapshots -----------------------------------------------

/** `at` as `yyyymmddThhmmssZ` in UTC: the time part of default and scheduled snapshot names. */
export function utcStamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** The stored name of a scheduled snapshot of policy `policy` taken at `at`: `_schedule.<policy>.<stamp>`. */
export function scheduleSnapshot(policy: string, at: Date): string {
  return `_schedule.${policy}.${utcStamp(at)}`;
}

/** The stored name of a replication snapshot with key `key`: `_replication.<key>`. */
export function replicationSnapshot(key: string): string {
  return `_replication.${key}`;
}

/** Which owner a snapshot of each origin must have (a fenced host's late writes get a user-visible name). */
const OWNER_OF_ORIGIN = { manual: 'user', fenced: 'user', schedule: 'schedule', replication: 'replication', removed: 'removed', backup: 'backup' } as const;

/**
 * The stored name of a new snapshot (pure): `name` as given, checked to belong to the owner of
 * `origin` (a user's name for `manual`), or else a default: the UTC time for `manual`, the policy and
 * time for `schedule`, the time for `replication`. INVALID_NAME for a name of another owner (a move's
 * above all), INVALID_REQUEST when a default cannot be made (a schedule without its policy).
 */
export function newSnapshotName(origin: keyof typeof OWNER_OF_ORIGIN, o: { name?: string; policy?: string }, at: Date): string {
  const owner = OWNER_OF_ORIGIN[origin];
  if (o.name === undefined) {
    if (origin === 'manual') return utcStamp(at);
    if (origin === 'replication') return replicationSnapshot(utcStamp(at));
    if (origin === 'schedule' && o.policy) return scheduleSnapshot(o.policy, at);
    throw new FerryError('INVALID_REQUEST', `a ${origin} snapshot needs a name${origin === 'schedule' ? ' or its policy' : ''}`);
  }
  if (owner === 'user') return validateSnapshotName(o.name);
  // `removed` is read by parseSnapshotName once reclaim adds its owner word; until then only the prefix is checked.
  const parsed = parseSnapshotName(o.name);
  const ok = owner === 'removed' ? o.name.startsWith('_removed.') && STORED_NAME.test(o.name) && o.name.length <= MAX_SNAPSHOT_NAME : parsed?.owner === owner;
  if (!ok) throw new FerryError('INVALID_NAME', `snapshot name ${JSON.stringify(o.name)} does not belong to ${owner}: a ${origin} snapshot is named _${owner}.<key>`);
  return o.name;
}
