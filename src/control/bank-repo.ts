import type { BankRecord, BankSecrets } from '../wire/records';
import type { Db } from './db';
import { nowIso, stmt } from './db';

/**
 * bank-ops (issue 8): control's banks (table `banks`). A bank's secrets sit beside its record and are
 * read only by `bankSecrets` (agents, over the agent channel); every other read leaves them out.
 */

interface BankRow {
  name: string;
  url: string;
  endpoint: string | null;
  region: string | null;
  read_only: number;
  bank_id: string;
  created_at: string;
}

const COLUMNS = 'name, url, endpoint, region, read_only, bank_id, created_at';

function toRecord(r: BankRow): BankRecord {
  return { name: r.name, url: r.url, endpoint: r.endpoint, region: r.region, readOnly: r.read_only === 1, bankId: r.bank_id, createdAt: r.created_at };
}

/** Records a bank with its secrets; false when the name is taken. */
export function insertBank(db: Db, b: Omit<BankRecord, 'createdAt'>, secrets: BankSecrets): BankRecord | undefined {
  const createdAt = nowIso();
  const changes = stmt(db, 'INSERT OR IGNORE INTO banks (name, url, endpoint, region, read_only, bank_id, created_at, secrets) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
    b.name,
    b.url,
    b.endpoint,
    b.region,
    b.readOnly ? 1 : 0,
    b.bankId,
    createdAt,
    JSON.stringify(secrets),
  ).changes;
  return changes === 1 ? { ...b, createdAt } : undefined;
}

export function getBank(db: Db, name: string): BankRecord | undefined {
  const r = stmt(db, `SELECT ${COLUMNS} FROM banks WHERE name = ?`).get(name) as BankRow | undefined;
  return r && toRecord(r);
}

/** Every bank, by name. */
export function listBanks(db: Db): BankRecord[] {
  return (stmt(db, `SELECT ${COLUMNS} FROM banks ORDER BY name`).all() as BankRow[]).map(toRecord);
}

/** Forgets a bank; false when there was none. */
export function deleteBank(db: Db, name: string): boolean {
  return stmt(db, 'DELETE FROM banks WHERE name = ?').run(name).changes === 1;
}

/** The secrets of bank `name`, or undefined when there is no such bank. */
export function bankSecrets(db: Db, name: string): BankSecrets | undefined {
  const r = stmt(db, 'SELECT secrets FROM banks WHERE name = ?').get(name) as { secrets: string } | undefined;
  return r && (JSON.parse(r.secrets) as BankSecrets);
}
