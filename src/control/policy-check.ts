import { parse, validateDetailed } from 'node-cron';
import { FerryError } from '../errors';
import { validatePolicyName } from '../volume/policy-name';
import { parseKeepSpec } from '../volume/retention';
import { validateBankName } from '../volume/backup-refs';
import { parseVerifyWith } from '../volume/restore-drill';
import { checkCronFields } from '../volume/schedule';
import type { PolicySpec } from '../wire/control-client';

/** A host's name, as the config's nodeName takes it. */
const HOST_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/**
 * Throws INVALID_OPTION unless `expr` is a cron expression ferry's schedules run: what node-cron
 * accepts (5 fields, or 6 with seconds first; names like mon, jan; L for the month's last day).
 */
export function checkCron(expr: string, what = 'schedule'): void {
  const v = validateDetailed(expr);
  if (!v.valid) {
    const why = v.errors.map((e) => e.message).join('; ');
    throw new FerryError(
      'INVALID_OPTION',
      `invalid ${what} ${JSON.stringify(expr)}: ${why}; give a cron expression in UTC, e.g. "0 3 * * *" (03:00 daily) or "*/15 * * * *"`,
    );
  }
  // The agent computes missed runs from the same parse: refuse what that computation does not know.
  checkCronFields(parse(expr), expr);
}

/**
 * Checks a whole policy (its name, cron, keep spec, and that its fields fit together) and answers it;
 * INVALID_NAME or INVALID_OPTION naming the field and what to give instead.
 */
export function checkPolicy(p: PolicySpec): PolicySpec {
  validatePolicyName(p.name);
  if (p.schedule !== null) checkCron(p.schedule);
  if (p.keep !== null) {
    parseKeepSpec(p.keep);
    if (p.schedule === null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: keep applies to scheduled snapshots; add a schedule (--schedule CRON)`);
  }
  for (const h of p.replicateTo) {
    if (!HOST_NAME.test(h)) throw new FerryError('INVALID_OPTION', `policy ${p.name}: replicate-to ${JSON.stringify(h)} is not a host name (ferry node ls lists them)`);
  }
  if (new Set(p.replicateTo).size !== p.replicateTo.length) {
    throw new FerryError('INVALID_OPTION', `policy ${p.name}: replicate-to names a host twice (${p.replicateTo.join(', ')})`);
  }
  const replicates = p.replicateTo.length > 0 || p.replicas !== null;
  if (p.replicateTo.length > 0 && p.replicas !== null) {
    throw new FerryError('INVALID_OPTION', `policy ${p.name}: give either --replicate-to HOSTS or --replicas N, not both`);
  }
  if (!replicates && p.rpoSeconds !== null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: rpo applies to standbys; add --replicate-to HOSTS or --replicas N`);
  if (!replicates && p.bandwidthBytes !== null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: bandwidth applies to replication; add --replicate-to HOSTS or --replicas N`);
  if (!replicates && p.failover === 'auto') throw new FerryError('INVALID_OPTION', `policy ${p.name}: failover auto needs a standby to promote; add --replicate-to HOSTS or --replicas N`);
  if (p.reclaim !== 'retain' && p.retainRemovedSeconds !== null) {
    throw new FerryError('INVALID_OPTION', `policy ${p.name}: retain-removed applies with reclaim retain; add --reclaim retain`);
  }
  checkBackupFields(p);
  return p;
}

/**
 * bank-policy (issue 8 items 4, 5): a policy's backup fields fit together. A bank with a schedule
 * (each needs the other), keep and drill only with them, verify-every and verify-with together.
 * Whether the bank exists is control's to check (it holds the banks).
 */
export function checkBackupFields(p: PolicySpec): void {
  const to = p.backupTo ?? null;
  const schedule = p.backupSchedule ?? null;
  if (to !== null && !isBankName(to)) throw new FerryError('INVALID_OPTION', `policy ${p.name}: backup-to ${JSON.stringify(to)} is not a bank name (ferry bank ls lists them)`);
  if (schedule !== null) checkCron(schedule, 'backup schedule');
  if (to !== null && schedule === null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: backup-to ${to} needs a schedule; add --backup-schedule CRON (e.g. "0 2 * * *")`);
  if (to === null && schedule !== null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: backup-schedule needs a bank to back up to; add --backup-to BANK`);
  if ((p.backupKeep ?? null) !== null) {
    parseKeepSpec(p.backupKeep);
    if (to === null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: backup-keep applies to scheduled backups; add --backup-to BANK --backup-schedule CRON`);
  }
  const every = p.verifyEverySeconds ?? null;
  const wth = p.verifyWith ?? null;
  if (wth !== null) parseVerifyWith(wth);
  if (every !== null && wth === null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: verify-every needs a check to run; add --verify-with "IMAGE COMMAND"`);
  if (every === null && wth !== null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: verify-with needs an interval; add --verify-every DURATION (e.g. 7d)`);
  if (every !== null && to === null) throw new FerryError('INVALID_OPTION', `policy ${p.name}: a restore drill restores scheduled backups; add --backup-to BANK --backup-schedule CRON`);
}

/** Whether `name` is a bank name as `ferry bank add` takes it (src/volume/backup-refs.ts). */
function isBankName(name: string): boolean {
  try {
    validateBankName(name);
    return true;
  } catch {
    return false;
  }
}
