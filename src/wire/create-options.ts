import { FerryError } from '../errors';

/**
 * Create options as they arrive in a request (Docker's `Opts`, the local API's `options`): absent
 * or null is none; otherwise an object whose values are strings. `what` names the field in errors.
 */
export function decodeCreateOptions(value: unknown, what: string): Record<string, string> {
  if (value !== undefined && value !== null && (typeof value !== 'object' || Array.isArray(value))) {
    throw new FerryError('INVALID_REQUEST', `${what} must be an object of strings`);
  }
  const opts: Record<string, string> = {};
  for (const [key, v] of Object.entries((value ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new FerryError('INVALID_OPTION', `option ${key} must be a string, got ${JSON.stringify(v)}`);
    opts[key] = v;
  }
  return opts;
}
