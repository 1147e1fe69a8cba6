import { randomFillSync } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';

/** The data of a move benchmark is random, so that neither btrfs nor ssh nor rsync can compress it. */

export const MiB = 1024 * 1024;
/** Files of 64 MiB: a few for small volumes, many for large ones. */
export const FILE_BYTES = 64 * MiB;
const CHUNK = 4 * MiB;

/** File i of a volume's data, under `dir`. */
export function dataFile(dir: string, i: number): string {
  return join(dir, 'data', `f${String(i).padStart(4, '0')}`);
}

async function writeRandom(path: string, flags: 'w' | 'r+', offset: number, bytes: number): Promise<void> {
  const buf = Buffer.allocUnsafe(CHUNK);
  const fh = await open(path, flags);
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(CHUNK, bytes - done);
      randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n, offset + done);
      done += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `bytes` of random data under `dir`/data as files of FILE_BYTES (the last one shorter), each
 * fsynced. Node's CSPRNG is ten times faster than /dev/urandom here, so the disk sets the pace.
 */
export async function writeRandomFiles(dir: string, bytes: number): Promise<number> {
  await mkdir(join(dir, 'data'), { recursive: true });
  let files = 0;
  for (let done = 0; done < bytes; files++) {
    const n = Math.min(FILE_BYTES, bytes - done);
    await writeRandom(dataFile(dir, files), 'w', 0, n);
    done += n;
  }
  return files;
}

/** Overwrites `bytes` in place in an existing file at `offset`, fsynced: a change as a database makes it. */
export async function overwriteRandom(path: string, offset: number, bytes: number): Promise<void> {
  await writeRandom(path, 'r+', offset, bytes);
}
