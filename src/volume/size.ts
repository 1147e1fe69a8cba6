import { FerryError } from '../errors';

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
// "64M", "64MiB", "64MB", "1.5G", "1048576": units are binary (1024), as in Docker's own --shm-size.
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i;

/** Parses a size like `10G`, `64MiB` or `1048576` into bytes; throws INVALID_OPTION otherwise. */
export function parseSize(value: unknown, what = 'size'): number {
  const text = typeof value === 'number' ? String(value) : value;
  const m = typeof text === 'string' ? SIZE.exec(text) : null;
  if (!m) {
    throw new FerryError(
      'INVALID_OPTION',
      `invalid ${what} ${JSON.stringify(value)}: give a positive number with an optional unit k, M, G or T (binary; "iB" or "B" may follow), e.g. 64M or 10GiB`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]);
  if (!Number.isFinite(bytes) || bytes <= 0) {
    throw new FerryError('INVALID_OPTION', `invalid ${what} ${JSON.stringify(value)}: it must be larger than 0`);
  }
  if (!Number.isSafeInteger(bytes)) {
    throw new FerryError('INVALID_OPTION', `invalid ${what} ${JSON.stringify(value)}: it is too large`);
  }
  return bytes;
}

/** Formats bytes for people: `64.0 MiB`, `1.5 GiB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
