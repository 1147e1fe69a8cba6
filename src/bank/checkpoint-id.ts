/** Checkpoint ids: `yyyymmddThhmmssZ-<8 hex>`, sortable by time (pure). */
import { randomBytes } from 'node:crypto';
import { FerryError } from '../errors';

const CHECKPOINT_ID = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/** A new id for a checkpoint taken at `at`; `suffix` (8 hex) is random unless given (tests). */
export function newCheckpointId(at: Date, suffix: string = randomBytes(4).toString('hex')): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${suffix}`;
}

export function isCheckpointId(id: string): boolean {
  return CHECKPOINT_ID.test(id);
}

/** INVALID_NAME unless `id` has the checkpoint id's shape (keeps odd strings out of object keys). */
export function assertCheckpointId(id: string): void {
  if (!isCheckpointId(id)) {
    throw new FerryError('INVALID_NAME', `"${id}" is not a checkpoint id (they look like 20260102T030405Z-0a1b2c3d; ferry backup ls lists them)`);
  }
}

/** The object key of a checkpoint's manifest. */
export function checkpointKey(id: string): string {
  return `checkpoints/${id}`;
}
