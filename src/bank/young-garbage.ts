/**
 * A minor collection after every `everyBytes` of short-lived buffers. Node gives each socket read
 * and each cipher call a buffer of its own; V8 counts their bytes only towards its external-memory
 * limit (64 MB an isolate) and, with little else allocated, collects them late: freed then, they
 * leave malloc's arenas fragmented, and the process's resident memory stays up. `gc` is there when
 * Node runs with --expose-gc, as ferry's daemons do (bin/ferry); elsewhere (tests) nothing is asked.
 */
export class YoungGarbage {
  private since = 0;
  private readonly collect = (globalThis as { gc?: (o: { type: 'minor' }) => void }).gc;

  constructor(private readonly everyBytes: number) {}

  /** `bytes` more of such buffers were made (and let go of). */
  made(bytes: number): void {
    if (!this.collect) return;
    this.since += bytes;
    if (this.since < this.everyBytes) return;
    this.since = 0;
    this.collect({ type: 'minor' });
  }
}
