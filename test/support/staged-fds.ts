import { readdirSync, readlinkSync } from 'node:fs';

/**
 * This process's descriptors open on a staged pack (src/bank/object-writer.ts's spool files, unlinked
 * as soon as they are open: a descriptor is all that is left of one, until it is closed).
 */
export function stagedFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.includes('ferry-spool-')) out.push(target);
    } catch {
      // closed while listed
    }
  }
  return out;
}
