import { FerryError } from '../errors';

/** Docker's own rule for volume names, plus a length that every backend can store. */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
export const MAX_VOLUME_NAME = 128;

/** Throws INVALID_NAME unless `name` is a Docker volume name that ferry can store. */
export function validateVolumeName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new FerryError('INVALID_NAME', 'volume name is empty: give a name of letters, digits, "_", "." or "-"');
  }
  if (name.length > MAX_VOLUME_NAME) {
    throw new FerryError(
      'INVALID_NAME',
      `volume name is ${name.length} characters long; ferry accepts at most ${MAX_VOLUME_NAME}`,
    );
  }
  if (!VOLUME_NAME.test(name)) {
    throw new FerryError(
      'INVALID_NAME',
      `invalid volume name ${JSON.stringify(name)}: use at least 2 characters of [a-zA-Z0-9_.-], starting with a letter or digit`,
    );
  }
  return name;
}

// Snapshot names, user-facing and stored, live in snapshot-names.ts (they say who owns each snapshot).
