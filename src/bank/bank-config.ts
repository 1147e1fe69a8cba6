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

/** The `config` object as stored. */
export interface BankConfig {
  format: 'ferry-bank';
  version: 1;
  id: string;
  created: string;
  chunker: ChunkerParams;
  /** base64 of seal('ferry-bank key check v1') with the seal key, AD 'config'. */
  keyCheck: string;
}

/** A new bank's config and its keys (a fresh random id). */
export function newBankConfig(key: Buffer, now: Date, id: string = randomUUID()): { config: BankConfig; keys: BankKeys } {
  const keys = deriveKeys(key, id);
  const config: BankConfig = {
    format: 'ferry-bank',
    version: 1,
    id,
    created: now.toISOString(),
    chunker: { ...DEFAULT_CHUNKER },
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
  const c = raw as Partial<BankConfig> | null;
  if (!c || typeof c !== 'object' || c.format !== 'ferry-bank') {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} is not a ferry bank's; check the URL`);
  }
  if (c.version !== 1) {
    throw new FerryError('BANK_CORRUPT', `bank ${url} has format version ${String(c.version)}; this ferry reads version 1 (upgrade ferry)`);
  }
  if (typeof c.id !== 'string' || !c.id || typeof c.keyCheck !== 'string' || typeof c.created !== 'string' || !c.chunker) {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} lacks its id, created time, chunker or key check`);
  }
  try {
    checkChunkerParams(c.chunker);
  } catch (err) {
    throw new FerryError('BANK_CORRUPT', `the config object of bank ${url} has chunker sizes this ferry cannot use: ${JSON.stringify(c.chunker)}`, { cause: err });
  }
  return c as BankConfig;
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
