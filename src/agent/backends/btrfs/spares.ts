import type { Logger } from '../../../log';

/** Spares kept per size: enough for a few Creates in a row; each costs a subvolume and a qgroup. */
export const SPARES_PER_SIZE = 2;
/** Sizes kept spares for: the most recently asked for ones. */
export const SPARE_SIZES = 2;

/** A spare's size: bytes of its qgroup limit, or none (the pool is its only limit). */
export type SpareSize = number | undefined;

/** What the pool does on disk; the btrfs backend gives the real thing, unit tests a fake. */
export interface SpareOps {
  /** Makes one empty subvolume already limited to `size` and returns its path; nothing is left on failure. */
  make(size: SpareSize): Promise<string>;
  /** Deletes spares that are no longer wanted. */
  remove(paths: readonly string[]): Promise<void>;
}

const keyOf = (size: SpareSize): string => (size === undefined ? 'none' : String(size));

/**
 * Empty subvolumes made ahead of Create, each already under the qgroup limit of a size that was
 * asked for recently, so that Create is one rename(2) instead of two btrfs-progs processes
 * (subvolume create, qgroup limit). A qgroup follows its subvolume's id through a rename, so the
 * volume holds its limit from the moment it has its name: there is no window without one.
 *
 * Spares are made one at a time, in the background, after a Create (never before anything was
 * asked: an idle host makes none). A spare is either ready or being made; a crash at any point
 * leaves only spares and half-made spares, which the backend deletes at start.
 */
export class SparePool {
  /** Ready spares by size key. */
  private readonly ready = new Map<string, string[]>();
  /** Size keys to keep spares for, most recent first. */
  private recent: { key: string; size: SpareSize }[] = [];
  /** The spare being made right now. */
  private making?: { key: string; done: Promise<unknown> };
  private running = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly ops: SpareOps,
    private readonly log: Logger,
  ) {}

  /**
   * A ready spare limited to `size`, now the caller's (gone from the pool), or undefined. When the
   * one spare being made is of that size, waits for it: it is further along than a new one would be.
   */
  async take(size: SpareSize): Promise<string | undefined> {
    const key = keyOf(size);
    const now = this.pop(key);
    if (now !== undefined || this.making?.key !== key) return now;
    await this.making.done.catch(() => undefined);
    return this.pop(key);
  }

  /** Notes that `size` was asked for and makes spares of it in the background. */
  want(size: SpareSize): void {
    const key = keyOf(size);
    this.recent = [{ key, size }, ...this.recent.filter((r) => r.key !== key)].slice(0, SPARE_SIZES);
    if (this.running || this.stopped) return;
    this.running = true;
    // Next turn of the event loop: spawning a process blocks it for milliseconds (fork copies the page
    // tables), and the Create that asked should have answered first.
    setImmediate(() => void this.fill());
  }

  /** Resolves once no spare is being made or removed (tests; shutdown). */
  idle(): Promise<void> {
    return this.running ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  /** Makes no more spares; resolves when the one under way is done. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.idle();
  }

  private pop(key: string): string | undefined {
    return this.ready.get(key)?.shift();
  }

  /** The one worker: removes spares of sizes no longer asked for, then tops up the recent sizes. */
  private async fill(): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) return;
        const stale = [...this.ready.keys()].filter((k) => !this.recent.some((r) => r.key === k));
        if (stale.length > 0) {
          const paths = stale.flatMap((k) => this.ready.get(k) ?? []);
          for (const k of stale) this.ready.delete(k);
          if (paths.length > 0) await this.ops.remove(paths).catch((err: unknown) => this.log.warn({ err, paths }, 'cannot delete spare subvolumes'));
          continue;
        }
        const next = this.recent.find((r) => (this.ready.get(r.key)?.length ?? 0) < SPARES_PER_SIZE);
        if (!next) return;
        const done = this.ops.make(next.size).then((path) => {
          // Into the pool before `done` resolves, so that a Create waiting on it finds it.
          const list = this.ready.get(next.key) ?? [];
          this.ready.set(next.key, list);
          list.push(path);
        });
        this.making = { key: next.key, done };
        try {
          await done;
        } catch (err) {
          // Most likely a full pool: stop until the next Create asks again, rather than retry in a loop.
          this.log.warn({ err, sizeBytes: next.size }, 'cannot make a spare subvolume; Create makes its own');
          return;
        } finally {
          this.making = undefined;
        }
      }
    } finally {
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
