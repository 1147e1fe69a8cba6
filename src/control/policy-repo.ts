import type { PolicySpec } from '../wire/control-client';
import type { PolicyRecord } from '../wire/records';
import type { Db } from './db';
import { nowIso, stmt } from './db';

// policy (issue 7 item 3): the `policies` table, one small function per statement.

interface PolicyRow {
  name: string;
  schedule: string | null;
  keep: string | null;
  replicate_to: string;
  replicas: number | null;
  rpo_seconds: number | null;
  bandwidth_bytes: number | null;
  failover: PolicyRecord['failover'];
  reclaim: PolicyRecord['reclaim'];
  retain_removed_seconds: number | null;
  backup_to: string | null;
  backup_schedule: string | null;
  backup_keep: string | null;
  verify_every_seconds: number | null;
  verify_with: string | null;
  created_at: string;
  updated_at: string;
}

function fromRow(r: PolicyRow): PolicyRecord {
  return {
    name: r.name,
    schedule: r.schedule,
    keep: r.keep,
    replicateTo: JSON.parse(r.replicate_to) as string[],
    replicas: r.replicas,
    rpoSeconds: r.rpo_seconds,
    bandwidthBytes: r.bandwidth_bytes,
    failover: r.failover,
    reclaim: r.reclaim,
    retainRemovedSeconds: r.retain_removed_seconds,
    backupTo: r.backup_to,
    backupSchedule: r.backup_schedule,
    backupKeep: r.backup_keep,
    verifyEverySeconds: r.verify_every_seconds,
    verifyWith: r.verify_with,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** bank-policy: the backup columns' values in their order (absent fields are null). */
function backupColumns(p: PolicySpec): (string | number | null)[] {
  return [p.backupTo ?? null, p.backupSchedule ?? null, p.backupKeep ?? null, p.verifyEverySeconds ?? null, p.verifyWith ?? null];
}

/** Inserts a policy; false when the name is taken. */
export function insertPolicy(db: Db, p: PolicySpec, at = nowIso()): boolean {
  return (
    stmt(
      db,
      `INSERT INTO policies (name, schedule, keep, replicate_to, replicas, rpo_seconds, bandwidth_bytes, failover, reclaim, retain_removed_seconds,
         backup_to, backup_schedule, backup_keep, verify_every_seconds, verify_with, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`,
    ).run(p.name, p.schedule, p.keep, JSON.stringify(p.replicateTo), p.replicas, p.rpoSeconds, p.bandwidthBytes, p.failover, p.reclaim, p.retainRemovedSeconds, ...backupColumns(p), at, at)
      .changes === 1
  );
}

/** Writes every field of an existing policy but its name and creation time. */
export function savePolicy(db: Db, p: PolicySpec, at = nowIso()): void {
  stmt(
    db,
    `UPDATE policies SET schedule = ?, keep = ?, replicate_to = ?, replicas = ?, rpo_seconds = ?, bandwidth_bytes = ?, failover = ?, reclaim = ?,
       retain_removed_seconds = ?, backup_to = ?, backup_schedule = ?, backup_keep = ?, verify_every_seconds = ?, verify_with = ?, updated_at = ? WHERE name = ?`,
  ).run(p.schedule, p.keep, JSON.stringify(p.replicateTo), p.replicas, p.rpoSeconds, p.bandwidthBytes, p.failover, p.reclaim, p.retainRemovedSeconds, ...backupColumns(p), at, p.name);
}

export function getPolicy(db: Db, name: string): PolicyRecord | undefined {
  const r = stmt(db, 'SELECT * FROM policies WHERE name = ?').get(name) as PolicyRow | undefined;
  return r ? fromRow(r) : undefined;
}

export function listPolicies(db: Db): PolicyRecord[] {
  return (stmt(db, 'SELECT * FROM policies ORDER BY name').all() as PolicyRow[]).map(fromRow);
}

export function deletePolicy(db: Db, name: string): boolean {
  return stmt(db, 'DELETE FROM policies WHERE name = ?').run(name).changes === 1;
}

/** The volumes whose options name policy `name`, by name (removed ones still being destroyed included). */
export function volumesWithPolicy(db: Db, name: string): string[] {
  return (stmt(db, `SELECT name FROM volumes WHERE json_extract(options, '$.policy') = ? ORDER BY name`).all(name) as { name: string }[]).map((r) => r.name);
}

/** Replaces a volume's options (`ferry volume set`). */
export function setVolumeOptions(db: Db, volume: string, options: Record<string, string>): void {
  stmt(db, 'UPDATE volumes SET options = ? WHERE name = ?').run(JSON.stringify(options), volume);
}
