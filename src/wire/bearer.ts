import { createHash, timingSafeEqual } from 'node:crypto';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * True when an `Authorization` header carries `Bearer <token>`. Compared in constant time (over
 * digests, so the length of the token does not show either). The one check of ferry's listeners.
 */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(authorization ?? '');
  return m !== null && timingSafeEqual(digest(m[1]), digest(token));
}
