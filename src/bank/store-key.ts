import { FerryError } from '../errors';

/** A key's characters: what the bank's layout uses (hex ids, checkpoint ids, lock names), nothing a path or URL would read twice. */
const KEY_SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * Throws INVALID_REQUEST unless `key` is a store key: '/'-separated segments of [A-Za-z0-9._-], none
 * empty, '.' or '..' (so a key can never leave the bank's root on file://). A listing prefix may end
 * in '/' or in a partial segment (`partial`).
 */
export function checkKey(key: string, partial = false): void {
  const segments = key.split('/');
  if (partial && segments[segments.length - 1] === '') segments.pop();
  const ok =
    key.length > 0 &&
    key.length <= 1024 &&
    segments.every((s) => KEY_SEGMENT.test(s) && s !== '.' && s !== '..');
  if (!ok) {
    throw new FerryError('INVALID_REQUEST', `bad bank object key ${JSON.stringify(key)}: keys are '/'-separated names of letters, digits, '.', '_' and '-'`, {
      details: { key },
    });
  }
}
