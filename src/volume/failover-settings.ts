import { FerryError } from '../errors';

/** fence: what control does when a volume's primary host is lost: promote a standby itself, or wait for a person. */
export type FailoverSetting = 'auto' | 'manual';

/** The Create option failover reads (`-o failover=auto`), until a volume's policy says it. */
export const FAILOVER_OPTIONS = ['failover'] as const;

/**
 * A volume's failover mode (pure): its own `-o failover=` first, else its policy's `failover`, else
 * `manual`. The one place that reads it. INVALID_OPTION for another value.
 */
export function failoverOf(options: Readonly<Record<string, string>>, policy?: { failover: FailoverSetting }): FailoverSetting {
  const own = options.failover;
  if (own === undefined) return policy?.failover ?? 'manual';
  if (own !== 'auto' && own !== 'manual') throw new FerryError('INVALID_OPTION', `invalid failover ${JSON.stringify(own)}: valid values are auto, manual`);
  return own;
}
