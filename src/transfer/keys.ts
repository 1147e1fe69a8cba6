import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { utils, type ParsedKey } from 'ssh2';
import { FerryError } from '../errors';

/** This host's transfer identity: one ed25519 key, host key and client key at once. */
export interface TransferKey {
  privateKey: string;
  /** OpenSSH one-line public key, as other hosts and control know it. */
  publicKey: string;
}

/** Loads the key at `path`, making it on first start (0600, written whole then renamed). */
export function loadOrCreateKey(path: string): TransferKey {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const pair = generateUsableKeyPair();
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, pair.private, { mode: 0o600 });
    writeFileSync(`${path}.pub`, pair.public + '\n');
    renameSync(tmp, path);
  }
  chmodSync(path, 0o600);
  const privateKey = readFileSync(path, 'utf8');
  const parsed = parseKey(privateKey, path);
  return { privateKey, publicKey: `${parsed.type} ${parsed.getPublicSSH().toString('base64')}` };
}

/**
 * An ed25519 pair ssh2 can read back. ssh2 (1.x) writes a public key whose first byte is zero as 31
 * bytes, about one key in 220, and then refuses its own key as malformed: such a pair is drawn again.
 */
export function generateUsableKeyPair(draw: () => { private: string; public: string } = () => utils.generateKeyPairSync('ed25519', { comment: 'ferry-transfer' })): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = draw();
    if (!(utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new FerryError('INTERNAL', 'could not make a usable ed25519 transfer key in 20 draws');
}

/** Parses an OpenSSH key; INVALID_CONFIG naming where it came from when it is not one. */
export function parseKey(text: string, where: string): ParsedKey {
  const k = utils.parseKey(text);
  if (k instanceof Error || Array.isArray(k)) {
    throw new FerryError('INVALID_CONFIG', `the transfer key from ${where} is not a usable OpenSSH key: ${k instanceof Error ? k.message : 'several keys'} (if ferry made it, remove it and its .pub and start the agent again to make a new one)`);
  }
  return k;
}

/** True when the offered key is this public key. */
export function sameKey(offered: { algo: string; data: Buffer }, known: ParsedKey): boolean {
  return offered.algo === known.type && offered.data.equals(known.getPublicSSH());
}
