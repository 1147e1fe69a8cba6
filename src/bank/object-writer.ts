/**
 * Objects written in pieces (BankStore.create) for a store that takes each object whole in one
 * request (S3's PutObject): the pieces are copied into one buffer, from a pool, and put at commit.
 * A store that can write in place (file-store.ts) writes each piece as it comes instead.
 */
import { FerryError } from '../errors';
import type { BufferPool } from './buffer-pool';
import type { ObjectWriter } from './types';

/** An ObjectWriter that collects the object in a buffer of `buffers` and hands it to `put` at commit. */
export function collected(put: (body: Buffer) => Promise<void>, buffers: BufferPool<Buffer>, sizeHint: number): ObjectWriter {
  let buf: Buffer | undefined;
  let written = 0;
  let done = false;
  const giveBack = (): void => {
    if (buf) buffers.give(buf);
    buf = undefined;
    done = true;
  };
  return {
    write: async (bytes, at) => {
      if (done) throw new FerryError('INTERNAL', 'a piece was written to an object already committed or aborted');
      const need = at + bytes.length;
      if (!buf || buf.length < need) {
        // The first piece, or past the hint: a (bigger) buffer, the bytes so far moved over.
        const bigger = buffers.take(Math.max(need, sizeHint));
        if (buf) {
          buf.copy(bigger, 0, 0, written);
          buffers.give(buf);
        }
        buf = bigger;
      }
      bytes.copy(buf, at);
      written = Math.max(written, need);
    },
    commit: async (size) => {
      if (done) throw new FerryError('INTERNAL', 'an object was committed twice, or after it was aborted');
      if (size !== written) throw new FerryError('INTERNAL', `an object of ${size} bytes was committed with ${written} bytes written`);
      try {
        await put((buf ?? Buffer.alloc(0)).subarray(0, size));
      } finally {
        // The store is done with the body either way.
        giveBack();
      }
    },
    abort: async () => giveBack(),
  };
}
