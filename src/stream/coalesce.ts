import type { Writable } from 'node:stream';

/**
 * Makes the writes that `stream` gets within one tick go to the kernel as one writev.
 *
 * ssh2 writes every packet (at most 32 KiB) to its socket on its own, and a transfer then costs a
 * syscall and a trip through the network stack per packet; on the receiving side the same holds for
 * the pipe into `btrfs receive`. Corked until the tick ends, the packets of one chunk leave together.
 */
export function coalesceWrites<T extends Writable>(stream: T): T {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    stream.uncork();
  };
  stream.write = ((...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as T['write'];
  return stream;
}
