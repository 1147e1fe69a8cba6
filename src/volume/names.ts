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

/**
 * The dataset that keeps a removed volume's data (`reclaim=retain`) until it expires or is undeleted:
 * `_removed.<id>`, `id` being its row in control's removed_volumes. A leading `_` is something no
 * volume name can start with (Docker's rule above), so a new volume of the old name never meets it,
 * and every backend stores it (btrfs and zfs leave such names out of their volume lists).
 */
export function retainedDatasetName(id: number): string {
  return `_removed.${id}`;
}

const RETAINED_DATASET = /^_removed\.([1-9][0-9]*)$/;

/** The removal id of a retained dataset's name (pure); undefined for any other name. */
export function retainedDatasetId(name: string): number | undefined {
  const m = RETAINED_DATASET.exec(name);
  return m ? Number(m[1]) : undefined;
}

// Snapshot names, user-facing and stored, live in snapshot-names.ts (they say who owns each snapshot).
