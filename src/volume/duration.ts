import { FerryError } from '../errors';

/** Seconds in each unit a duration may use: s, m (minutes), h, d, w. */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };
// "30s", "5m", "1h30m", "7d", "90" (seconds): whole numbers, units in decreasing order not enforced.
const DURATION = /^(?:\d+[smhdw])+$|^\d+$/;
const PART = /(\d+)([smhdw])/g;

/**
 * Parses a duration like `30s`, `5m`, `1h30m`, `7d` or `2w` (a bare number is seconds) into whole
 * seconds; throws INVALID_OPTION naming `what` otherwise. Months are not a duration here: their length varies.
 */
export function parseDuration(value: unknown, what = 'duration'): number {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim().toLowerCase() : '';
  if (!DURATION.test(text)) {
    throw new FerryError(
      'INVALID_OPTION',
      `invalid ${what} ${JSON.stringify(value)}: give a whole number with a unit s, m, h, d or w (e.g. 30s, 5m, 1h30m, 7d); a bare number is seconds`,
    );
  }
  let seconds = 0;
  if (/^\d+$/.test(text)) seconds = Number(text);
  else for (const m of text.matchAll(PART)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]];
  if (seconds <= 0) throw new FerryError('INVALID_OPTION', `invalid ${what} ${JSON.stringify(value)}: it must be longer than 0 s`);
  if (!Number.isSafeInteger(seconds)) throw new FerryError('INVALID_OPTION', `invalid ${what} ${JSON.stringify(value)}: it is too long`);
  return seconds;
}

/** Formats seconds for people in the largest units that divide them: `30s`, `5m`, `1h30m`, `7d`. */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return '0s';
  let left = Math.round(seconds);
  let out = '';
  for (const [unit, size] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (left >= size) {
      out += `${Math.floor(left / size)}${unit}`;
      left %= size;
    }
  }
  return out;
}
