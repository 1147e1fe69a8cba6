import { expect } from 'chai';
import { Writable } from 'node:stream';
import { coalesceWrites } from '../../src/stream/coalesce';

/** A sink that records how many chunks each call to the kernel (write or writev) would carry. */
function recordingSink(): { sink: Writable; batches: number[]; bytes: () => Buffer } {
  const batches: number[] = [];
  const got: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      batches.push(1);
      got.push(chunk);
      cb();
    },
    writev(chunks, cb) {
      batches.push(chunks.length);
      for (const c of chunks) got.push(c.chunk as Buffer);
      cb();
    },
  });
  return { sink, batches, bytes: () => Buffer.concat(got) };
}

describe('coalesceWrites', function () {
  it('sends the writes of one tick as one batch, in order', async function () {
    const { sink, batches, bytes } = recordingSink();
    coalesceWrites(sink);
    for (let i = 0; i < 5; i++) sink.write(Buffer.from([i]));
    await new Promise((r) => setImmediate(r));
    for (let i = 5; i < 8; i++) sink.write(Buffer.from([i]));
    await new Promise((r) => setImmediate(r));
    expect(batches).to.deep.equal([5, 3]);
    expect([...bytes()]).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('leaves end() working: everything written arrives and finish fires', async function () {
    const { sink, bytes } = recordingSink();
    coalesceWrites(sink);
    sink.write(Buffer.from('a'));
    sink.end(Buffer.from('b'));
    await new Promise((r) => sink.once('finish', r));
    expect(bytes().toString()).to.equal('ab');
  });
});
