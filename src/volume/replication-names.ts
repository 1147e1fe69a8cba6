import { parseSnapshotName, replicationSnapshot, utcStamp } from './snapshot-names';

/**
 * Names of replication's snapshots: `_replication.<UTC yyyymmddThhmmssZ>`, the time the standby
 * asked for the round (the primary takes it at once). The name carries the time, so that order by
 * name is order by time, every host reads a snapshot's age the same way, and two standbys asking in
 * the same second share one snapshot (the primary takes a name once).
 */

const KEY = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The name of the replication snapshot taken at `at` (whole seconds, UTC): snap's default name for one. */
export function replicationSnapshotAt(at: Date): string {
  return replicationSnapshot(utcStamp(at));
}

/** When replication snapshot `name` was taken; undefined when replication does not own the name. */
export function replicationTimeOf(name: string): Date | undefined {
  const p = parseSnapshotName(name);
  if (p?.owner !== 'replication') return undefined;
  const m = KEY.exec(p.key);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  // Date.UTC rolls month 13 over into January: only a key that reads back the same is a time.
  return Number.isNaN(t) || utcStamp(new Date(t)) !== p.key ? undefined : new Date(t);
}

/**
 * The replication snapshots a host may delete (pure): those older than `oldestBase`, the oldest of
 * every standby's newest snapshot. That one stays (a standby's next base), and so does every newer
 * one (a round under way may be sending it). Without an `oldestBase` (a standby has none yet, its
 * first round may be sending any of them) nothing goes. Other owners' snapshots are never listed.
 */
export function prunableReplicationSnapshots(names: readonly string[], oldestBase: string | null): string[] {
  if (oldestBase === null || replicationTimeOf(oldestBase) === undefined) return [];
  return names.filter((n) => replicationTimeOf(n) !== undefined && n < oldestBase);
}

/**
 * The replication snapshots the receiver has dropped (pure): those `theirs` holds, replication owns,
 * `ours` lacks, and that are older than the newest replication snapshot `ours` holds. A standby keeps
 * only its newest, and tidies its own before it asks the primary to tidy: until the primary has
 * done so too (never while a move is under way), the primary still holds older ones. A move's
 * snapshot chain must not carry them back: the receiver dropped them as useless, and the oldest would
 * cross in a full stream (the chain's first step has no base).
 */
export function replicationSnapshotsDropped(theirs: readonly string[], ours: readonly string[]): string[] {
  const have = new Set(ours);
  const newest = ours.filter((s) => replicationTimeOf(s) !== undefined).sort().at(-1) ?? null;
  // What the receiver would prune below its own newest, of what it lacks.
  return prunableReplicationSnapshots(theirs.filter((s) => !have.has(s)), newest);
}

/**
 * The newest snapshot both hosts hold that can be the base of an increment (pure), or undefined
 * (a full stream). Only move and replication snapshots qualify: one of those on both hosts was sent
 * from one to the other, so it holds the same data on both; a user's snapshot of the same name need
 * not. `theirs` is in the order its host lists them (oldest first).
 */
export function newestCommonBase(theirs: readonly string[], ours: readonly string[]): string | undefined {
  const have = new Set(ours);
  return [...theirs].reverse().find((s) => {
    if (!have.has(s)) return false;
    const owner = parseSnapshotName(s)?.owner;
    return owner === 'move' || owner === 'replication';
  });
}
