/**
 * The bank's subkeys. Each is HKDF-SHA256 of the key file's bytes, salted with the bank's id (so two
 * banks under one key file share nothing), one `info` string per use. Pure.
 */
import { hkdfSync } from 'node:crypto';
import { FerryError } from '../errors';

/** A key file shorter than this is refused: 32 random bytes is the least the format relies on. */
export const MIN_KEY_BYTES = 32;

/** The three keys a bank's objects are made with, 32 bytes each. */
export interface BankKeys {
  /** HMAC-SHA256 key of chunk ids (the bank reveals no plaintext hashes). */
  chunkId: Buffer;
  /** AES-256-GCM key of every sealed object. */
  seal: Buffer;
  /** Seed of the chunker's gear table (boundaries differ per bank). */
  gear: Buffer;
}

export const KEY_INFO = {
  chunkId: 'ferry-bank chunk-id',
  seal: 'ferry-bank seal',
  gear: 'ferry-bank gear',
} as const;

/** Checks the key file's length; INVALID_OPTION saying how to make a good one. */
export function assertKeyLength(key: Buffer): void {
  if (key.length < MIN_KEY_BYTES) {
    throw new FerryError(
      'INVALID_OPTION',
      `the bank key file holds ${key.length} bytes; a bank key needs at least ${MIN_KEY_BYTES} (make one with: head -c 32 /dev/urandom > bank.key, and keep a copy somewhere safe)`,
    );
  }
}

/** HKDF-SHA256(ikm = key, salt = bankId, info) → 32 bytes. */
export function subkey(key: Buffer, bankId: string, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.from(bankId, 'utf8'), Buffer.from(info, 'utf8'), length));
}

/** The bank's three subkeys from the key file's bytes and the bank id in its config. */
export function deriveKeys(key: Buffer, bankId: string): BankKeys {
  assertKeyLength(key);
  return {
    chunkId: subkey(key, bankId, KEY_INFO.chunkId),
    seal: subkey(key, bankId, KEY_INFO.seal),
    gear: subkey(key, bankId, KEY_INFO.gear),
  };
}
