/**
 * A bank's `config` object: plaintext JSON saying what the bank is (format, version, id, chunker
 * sizes) and a key check, so a wrong key is refused at once instead of failing chunk by chunk.
 */
import { randomUUID } from 'node:crypto';
import { FerryError } from '../errors';
import { deriveKeys, type BankKeys } from './bank-keys';
import { checkChunkerParams, DEFAULT_CHUNKER, type ChunkerParams } from './gear-chunker';
import { openSealed, seal } from './seal';

export const CONFIG_KEY = 'config';
const KEY_CHECK_TEXT = 'ferry-bank key check v1';

/** The format this ferry writes and reads: 2 = chunks in packs with indexes (1 was one object per chunk). */
export const BANK_VERSION = 2;
/** A pack is closed once it passes this size. */
export const DEFAULT_PACK_BYTES = 16 * 1024 * 1024;

/** The `config` object as stored. */
export interface BankConfig {
  format: 'ferry-bank';
  version: 2;
  id: string;
  created: string;
  chunker: ChunkerParams;
  /** Packs are closed once they pass targetBytes. */
  pack: { targetBytes: number };
  /** base64 of seal('ferry-bank key check v1') with the seal key, AD 'config'. */
  keyCheck: string;
}

/** A new bank's config and its keys (a fresh random id). */
export function newBankConfig(key: Buffer, now: Date, id: string = randomUUID(), packBytes = DEFAULT_PACK_BYTES): { config: BankConfig; keys: BankKeys } {
  const keys = deriveKeys(key, id);
  const config: BankConfig = {
    format: 'ferry-bank',
    version: BANK_VERSION,
    id,
    created: now.toISOString(),
    chunker: { ...DEFAULT_CHUNKER },
    pack: { targetBytes: packBytes },
    keyCheck: seal(keys.seal, Buffer.from(KEY_CHECK_TEXT, 'utf8'), CONFIG_KEY).toString('base64'),
  };
  return { config, keys };
}

export function encodeConfig(config: BankConfig): Buffer {
  return Buffer.from(`${JSON.stringify(config, null, 2)}\n`, 'utf8');
}

/** Parses a stored config; BANK_CORRUPT when it is not a ferry bank's config of a version this reads. */
export function decodeConfig(body: Buffer, url: string): BankConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} is not JSON; is this URL a ferry bank?`, { cause: err });
  }
  const c = raw as (Omit<Partial<BankConfig>, 'version'> & { version?: unknown }) | null;
  if (!c || typeof c !== 'object' || c.format !== 'ferry-bank') {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} is not a ferry bank's; check the URL`);
  }
  if (c.version === 1) {
    // Version 1 (one object per chunk) was written only by builds before packs; its data is intact.
    throw new FerryError(
      'BANK_CORRUPT',
      `bank ${url} has format version 1 (one object per chunk), written by an earlier ferry; this ferry reads version ${BANK_VERSION} (chunks in packs). Restore its checkpoints with the earlier build, or add a new bank (another URL) for new backups`,
      { details: { url, version: 1 } },
    );
  }
  if (c.version !== BANK_VERSION) {
    throw new FerryError('BANK_CORRUPT', `bank ${url} has format version ${String(c.version)}; this ferry reads version ${BANK_VERSION} (upgrade ferry)`, { details: { url, version: c.version } });
  }
  if (typeof c.id !== 'string' || !c.id || typeof c.keyCheck !== 'string' || typeof c.created !== 'string' || !c.chunker) {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} lacks its id, created time, chunker or key check`);
  }
  const target = c.pack?.targetBytes;
  if (typeof target !== 'number' || !Number.isSafeInteger(target) || target < 64 * 1024 || target > 1024 * 1024 * 1024) {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} has no usable pack size (pack.targetBytes ${JSON.stringify(target)}; 64 KiB to 1 GiB)`);
  }
  try {
    checkChunkerParams(c.chunker);
  } catch (err) {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} has chunker sizes this ferry cannot use: ${JSON.stringify(c.chunker)}`, { cause: err });
  }
  return c as unknown as BankConfig;
}

/** The keys of this bank from the key file; BANK_KEY_WRONG when the key check does not open. */
export function unlockConfig(config: BankConfig, key: Buffer, url: string): BankKeys {
  const keys = deriveKeys(key, config.id);
  let text = '';
  try {
    text = openSealed(keys.seal, Buffer.from(config.keyCheck, 'base64'), CONFIG_KEY, url).toString('utf8');
  } catch {
    // A wrong key is the usual cause; the message below says so.
  }
  if (text !== KEY_CHECK_TEXT) {
    throw new FerryError(
      'BANK_KEY_WRONG',
      `the key file does not open bank ${url}; the right key file is needed (a lost key means the bank's data cannot be read)`,
      { details: { bankId: config.id } },
    );
  }
  return keys;
}
