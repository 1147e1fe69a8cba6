import { FerryError } from '../errors';
import { REPLICA_POLICIES } from './options';
import { validatePolicyName } from './policy-name';
import { checkReclaimOptions } from './reclaim';
import { checkRestoring } from './backup-refs';

/**
 * The options of an existing volume that `ferry volume set VOLUME KEY=VALUE` may change, each with
 * its check (pure; throws INVALID_OPTION or INVALID_NAME). Options that shape the dataset (backend,
 * size, fs) are fixed at Create. Other parts add their keys here, one line each.
 */
export const SETTABLE_OPTIONS: Readonly<Record<string, (value: string) => void>> = {
  // policy (issue 7 item 3): control also checks that the policy exists.
  policy: (v) => void validatePolicyName(v),
  replica: (v) => {
    if (!(REPLICA_POLICIES as readonly string[]).includes(v)) {
      throw new FerryError('INVALID_OPTION', `invalid replica ${JSON.stringify(v)}: valid values are ${REPLICA_POLICIES.join(', ')}`);
    }
  },
  // reclaim: read by control at the remove (reclaimOf).
  reclaim: (v) => checkReclaimOptions({ reclaim: v }),
  'retain-removed': (v) => checkReclaimOptions({ 'retain-removed': v }),
  // bank-ops: a finished restore clears it (`restoring=`); only a restore sets it.
  restoring: checkRestoring,
};

/**
 * A volume's options after `changes` (a string sets a key, null or "" removes it), checked against
 * SETTABLE_OPTIONS; `options` itself is left as it is.
 */
export function applyOptionChanges(options: Readonly<Record<string, string>>, changes: Readonly<Record<string, string | null>>): Record<string, string> {
  const out = { ...options };
  const keys = Object.keys(changes);
  if (keys.length === 0) throw new FerryError('INVALID_OPTION', `say what to change: KEY=VALUE (or KEY= to remove it), KEY one of ${Object.keys(SETTABLE_OPTIONS).join(', ')}`);
  for (const key of keys) {
    const check = SETTABLE_OPTIONS[key];
    if (!Object.prototype.hasOwnProperty.call(SETTABLE_OPTIONS, key) || !check) {
      throw new FerryError('INVALID_OPTION', `option ${JSON.stringify(key)} cannot be changed on an existing volume: the ones that can are ${Object.keys(SETTABLE_OPTIONS).join(', ')}`);
    }
    const value = changes[key];
    if (value === null || value === '') delete out[key];
    else {
      check(value);
      out[key] = value;
    }
  }
  return out;
}
