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

/** INVALID_REQUEST unless offset and length are whole numbers, length above 0. */
export function checkRange(url: string, key: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
    throw new FerryError('INVALID_REQUEST', `bad range ${offset}+${length} of ${key} in bank ${url}: offset and length must be whole numbers, length above 0`);
  }
}

/** The object ends before the range does: a pack cut short. */
export function shortRange(url: string, key: string, offset: number, length: number, got: number): FerryError {
  return new FerryError('BANK_CORRUPT', `object ${key} of bank ${url} ends before byte ${offset + length} (${got} of ${length} bytes from ${offset}); run ferry bank check`, {
    details: { key, offset, length, got },
  });
}
