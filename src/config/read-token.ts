import { readFileSync } from 'node:fs';
import { FerryError } from '../errors';

/** Reads the cluster token; a missing or short token stops control with what to do. */
export function readToken(path: string | undefined): string {
  if (!path) throw new FerryError('INVALID_CONFIG', 'cluster mode needs a token: set control.tokenFile (or --token-file) to a file holding a long random secret');
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new FerryError('INVALID_CONFIG', `cannot read the cluster token file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (token.length < 16) throw new FerryError('INVALID_CONFIG', `the cluster token in ${path} is shorter than 16 characters: use a long random secret (openssl rand -hex 32)`);
  return token;
}
