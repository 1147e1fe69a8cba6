/**
 * One error type for the whole of ferry. Callers branch on `code`, never on message text.
 * Messages say what happened, to what, and what to do next: Docker shows them to users verbatim.
 */

export type ErrorKind = 'not_found' | 'invalid' | 'conflict' | 'unavailable' | 'unauthorized' | 'internal';

const CODE_KINDS = {
  VOLUME_NOT_FOUND: 'not_found',
  SNAPSHOT_NOT_FOUND: 'not_found',
  NODE_NOT_FOUND: 'not_found',
  POLICY_NOT_FOUND: 'not_found',
  // bank: no bank of that name in control, or no checkpoint of that name in the bank.
  BANK_NOT_FOUND: 'not_found',
  CHECKPOINT_NOT_FOUND: 'not_found',
  INVALID_NAME: 'invalid',
  INVALID_OPTION: 'invalid',
  INVALID_REQUEST: 'invalid',
  INVALID_CONFIG: 'invalid',
  VOLUME_EXISTS: 'conflict',
  VOLUME_IN_USE: 'conflict',
  VOLUME_BUSY: 'conflict',
  MOVE_CONFLICT: 'conflict',
  // quiesce: a pre-snapshot hook or a pause failed (the snapshot was not taken), or a container stayed paused.
  QUIESCE_FAILED: 'conflict',
  NOT_PRIMARY: 'conflict',
  POLICY_EXISTS: 'conflict',
  POLICY_IN_USE: 'conflict',
  BANK_EXISTS: 'conflict',
  // bank: a policy backs up to it (bank rm refused until no policy names it).
  BANK_IN_USE: 'conflict',
  // bank: added --read-only, or the store refuses writes.
  BANK_READ_ONLY: 'conflict',
  // bank: another process holds a lock that excludes this one (gc while backups run, or the reverse).
  BANK_LOCKED: 'conflict',
  // bank: the key given does not open this bank (its key check fails to decrypt).
  BANK_KEY_WRONG: 'invalid',
  POOL_FULL: 'unavailable',
  BACKEND_UNAVAILABLE: 'unavailable',
  NODE_UNREACHABLE: 'unavailable',
  // fence: a primary host's time-bound lease ran out while control was unreachable.
  LEASE_EXPIRED: 'unavailable',
  // bank: the store is unreachable, refuses the credentials, is full, or answers with errors.
  BANK_UNAVAILABLE: 'unavailable',
  UNAUTHORIZED: 'unauthorized',
  STREAM_CORRUPT: 'internal',
  // bank: an object is missing, fails to decrypt, or its contents do not hash to its id.
  BANK_CORRUPT: 'internal',
  COMMAND_FAILED: 'internal',
  INTERNAL: 'internal',
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof CODE_KINDS;

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  /** Structured facts for logs and API bodies (never needed to understand the message). */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FerryError';
    this.code = code;
    this.kind = CODE_KINDS[code];
    this.details = opts.details;
  }
}

export function isFerryError(err: unknown, code?: ErrorCode): err is FerryError {
  return err instanceof FerryError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a FerryError, keeping the original as `cause`. */
export function toFerryError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FerryError('INTERNAL', `internal error: ${message}`, { cause: err });
}
