import { FerryError } from '../errors';
import { validateVolumeName } from './names';

/**
 * bank-ops (issue 8): the names and references a user types for banks and backups (pure): a bank's
 * name, `VOLUME@CHECKPOINT` (`latest` for the newest), the `restoring` option a volume carries while
 * a restore fills it, and `--read-data 10%`.
 */

const BANK_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;
/** A checkpoint id as the bank makes it: `yyyymmddThhmmssZ-<8 hex>`. */
const CHECKPOINT_ID = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;
/** What `VOLUME@latest` names: the newest checkpoint of the volume in the bank. */
export const LATEST = 'latest';

/** Throws INVALID_NAME unless `name` is a bank name: 1 to 40 of [a-z0-9_-], starting with a letter or digit. */
export function validateBankName(name: unknown): string {
  if (typeof name !== 'string' || !BANK_NAME.test(name)) {
    throw new FerryError('INVALID_NAME', `invalid bank name ${JSON.stringify(name)}: use 1 to 40 characters of [a-z0-9_-], starting with a letter or digit`);
  }
  return name;
}

/** Throws INVALID_NAME unless `id` is a checkpoint id (`20261202T101500Z-1a2b3c4d`) or `latest`. */
export function validateCheckpointId(id: unknown): string {
  if (typeof id !== 'string' || (id !== LATEST && !CHECKPOINT_ID.test(id))) {
    throw new FerryError('INVALID_NAME', `invalid checkpoint ${JSON.stringify(id)}: a checkpoint is named like 20261202T101500Z-1a2b3c4d (ferry backup ls), or latest`);
  }
  return id;
}

/** A checkpoint of one volume, as `VOLUME@CHECKPOINT` names it. */
export interface CheckpointRef {
  volume: string;
  /** A checkpoint id, or `latest`. */
  checkpoint: string;
}

/** Reads `VOLUME@CHECKPOINT` (pure); INVALID_REQUEST saying the form when it is not one. */
export function parseCheckpointRef(text: string): CheckpointRef {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) {
    throw new FerryError('INVALID_REQUEST', `name a checkpoint as VOLUME@CHECKPOINT (e.g. db@latest or db@20261202T101500Z-1a2b3c4d), not ${JSON.stringify(text)}`);
  }
  return { volume: validateVolumeName(text.slice(0, at)), checkpoint: validateCheckpointId(text.slice(at + 1)) };
}

/** The `restoring` option a volume carries while a restore fills it: `BANK/CHECKPOINT`. */
export function restoringValue(bank: string, checkpoint: string): string {
  return `${bank}/${checkpoint}`;
}

/** Checks a `restoring` option's value (INVALID_OPTION when it is not `BANK/CHECKPOINT`). */
export function checkRestoring(value: string): void {
  const slash = value.indexOf('/');
  const ok = slash > 0 && BANK_NAME.test(value.slice(0, slash)) && CHECKPOINT_ID.test(value.slice(slash + 1));
  if (!ok) throw new FerryError('INVALID_OPTION', `invalid restoring ${JSON.stringify(value)}: it is BANK/CHECKPOINT, set by ferry backup restore only`);
}

/** `--read-data 10%` (or `10`): a share of 0 to 100 percent, as a number. INVALID_OPTION otherwise. */
export function parsePercent(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text);
  const n = m ? Number(m[1]) : NaN;
  if (!(n >= 0 && n <= 100)) throw new FerryError('INVALID_OPTION', `invalid share ${JSON.stringify(text)}: give a percentage from 0 to 100, e.g. 10%`);
  return n;
}
