/**
 * Objects written in pieces (BankStore.create) for a store that takes each object whole in one
 * request of known length (S3's PutObject): the pieces are staged in a file on local disk, where
 * each is written at its offset as it comes, and the file is streamed to the store at commit, as
 * restic stages its packs. A pack then costs the agent no memory (the page cache holds it, and
 * gives it back), where one buffer per pack cost ~21 MiB each, three at once. The file is unlinked
 * as soon as it is open: a crash leaves nothing behind. A store that can write in place
 * (file-store.ts) writes each piece where it belongs instead.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FerryError } from '../errors';
import type { ObjectWriter } from './types';

/** What a spooled object is read back through: a fresh stream of its bytes for each attempt to store it. */
export type SpoolReader = () => Readable;

/** Reads of the staged file: large enough that a 16 MiB pack goes out in few socket writes. */
const READ_CHUNK = 256 * 1024;

/**
 * An ObjectWriter that stages the object in an unlinked file under `dir` (made if missing) and, at
 * commit, hands `put` a way to read it back and its size. `what` names the object in messages.
 */
export function spooled(dir: string, what: string, put: (read: SpoolReader, size: number) => Promise<void>): ObjectWriter {
  let opened: Promise<FileHandle> | undefined;
  let written = 0;
  let done = false;
  const open = (): Promise<FileHandle> =>
    (opened ??= (async () => {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const path = join(dir, `ferry-spool-${randomBytes(8).toString('hex')}`);
      const fh = await fs.open(path, 'wx+', 0o600);
      await fs.unlink(path).catch(async (err: unknown) => {
        await fh.close();
        throw err;
      });
      return fh;
    })());
  const close = async (): Promise<void> => {
    done = true;
    const fh = await opened?.catch(() => undefined);
    await fh?.close().catch(() => undefined);
  };
  const failure = (err: unknown): FerryError =>
    err instanceof FerryError
      ? err
      : new FerryError(
          'BACKEND_UNAVAILABLE',
          `cannot stage ${what} in ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}): a backup to an S3 bank stages each pack there (up to 3 of ~21 MiB at once); free space there or make it writable`,
          { cause: err, details: { dir } },
        );
  return {
    write: async (bytes, at) => {
      if (done) throw new FerryError('INTERNAL', `a piece was written to ${what} after it was committed or aborted`);
      try {
        const fh = await open();
        for (let n = 0; n < bytes.length; ) n += (await fh.write(bytes, n, bytes.length - n, at + n)).bytesWritten;
      } catch (err) {
        throw failure(err);
      }
      written = Math.max(written, at + bytes.length);
    },
    commit: async (size) => {
      if (done) throw new FerryError('INTERNAL', `${what} was committed twice, or after it was aborted`);
      try {
        if (size !== written) throw new FerryError('INTERNAL', `${what} of ${size} bytes was committed with ${written} bytes written`);
        const fh = size > 0 ? await open().catch((err: unknown) => Promise.reject(failure(err))) : undefined;
        const read: SpoolReader = () => (fh ? Readable.from(staged(fh, size, what)) : Readable.from([]));
        await put(read, size);
      } finally {
        // The store is done with the file either way.
        await close();
      }
    },
    abort: close,
  };
}

/**
 * The staged bytes, read by position: nothing closes the file but the writer (an fs.ReadStream over
 * it closes the descriptor when destroyed, and a failed attempt's stream is destroyed before the next).
 */
async function* staged(fh: FileHandle, size: number, what: string): AsyncGenerator<Buffer> {
  for (let at = 0; at < size; ) {
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - at));
    const { bytesRead } = await fh.read(buf, 0, buf.length, at);
    if (bytesRead === 0) throw new FerryError('INTERNAL', `the staged copy of ${what} ended at byte ${at} of ${size}`);
    at += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}
