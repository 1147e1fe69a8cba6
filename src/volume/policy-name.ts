import { FerryError } from '../errors';

/** Policy names: lower case, digits, `_` and `-`; they appear inside snapshot names (`_schedule.<policy>.<time>`). */
const POLICY_NAME = /^[a-z0-9][a-z0-9_-]*$/;
export const MAX_POLICY_NAME = 40;

/** Throws INVALID_NAME unless `name` is a valid policy name; answers it. */
export function validatePolicyName(name: unknown): string {
  if (typeof name !== 'string' || name.length > MAX_POLICY_NAME || !POLICY_NAME.test(name)) {
    throw new FerryError(
      'INVALID_NAME',
      `invalid policy name ${JSON.stringify(name)}: use 1 to ${MAX_POLICY_NAME} characters of [a-z0-9_-], starting with a letter or digit (e.g. nightly)`,
    );
  }
  return name;
}
