import { parse, validateDetailed } from 'node-cron';
import { FerryError } from '../errors';
import { validatePolicyName } from '../volume/policy-name';
import { parseKeepSpec } from '../volume/retention';
import { checkCronFields } from '../volume/schedule';
import type { PolicySpec } from '../wire/control-client';

/** A host's name, as the config's nodeName takes it. */
const HOST_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/**
 * Throws INVALID_OPTION unless `expr` is a cron expression ferry's schedules run: what node-cron
 * accepts (5 fields, or 6 with seconds first; names like mon, jan; L for the month's last day).
 */
export function checkCron(expr: string): void {
  const v = validateDetailed(expr);
  if (!v.valid) {
    const why = v.errors.map((e) => e.message).join('; ');
    throw new FerryError(
      'INVALID_OPTION',
      `invalid schedule ${JSON.stringify(expr)}: ${why}; give a cron expression in UTC, e.g. "0 3 * * *" (03:00 daily) or "*/15 * * * *"`,
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
  return p;
}
