/**
 * Synchronous file-system calls are much cheaper than their promise forms for the many small
 * lstats and reads of a backup (each promise call is a trip through libuv's thread pool), but they
 * hold the event loop: the agent that runs a backup also answers dockerd. `turns(n)` gives a
 * function to await after each unit of such work; every n-th call lets the event loop run once.
 */
export function turns(every: number): () => Promise<void> | undefined {
  let since = 0;
  return () => {
    if (++since < every) return undefined;
    since = 0;
    return new Promise<void>((resolve) => setImmediate(resolve));
  };
}
