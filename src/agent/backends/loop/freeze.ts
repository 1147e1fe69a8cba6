/**
 * Freezing a mounted filesystem for the length of a copy, and never leaving it frozen: every freeze
 * is recorded in a marker file first, so that a process that dies mid-copy is followed by a thaw at
 * the next start (a frozen volume blocks every write of its container).
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../../../errors';
import { CommandFailedError, type Runner } from '../../../exec/runner';
import type { Logger } from '../../../log';
import { isMountPoint } from '../../mount-table';
import * as cmd from './commands';

/** Tries at thawing before giving up loudly, with a growing pause between them. */
const THAW_TRIES = 5;
const THAW_PAUSE_MS = 100;

/** Freezes and thaws the filesystems of one loop pool's mounted images. */
export class Freezer {
  /** `markerDir` holds one file per frozen dataset, naming its mount point. */
  constructor(
    private readonly runner: Runner,
    private readonly log: Logger,
    private readonly markerDir: string,
  ) {}

  /**
   * Runs `work` with the filesystem at `mountPoint` frozen (when there is one; without, it just
   * runs), and always thaws it. Returns how long the filesystem stayed frozen, in milliseconds.
   * Throws what `work` throws, or INTERNAL when the thaw fails (the volume then still blocks writes).
   */
  async whileFrozen(name: string, mountPoint: string | undefined, work: () => Promise<unknown>): Promise<number> {
    if (!mountPoint) {
      await work();
      return 0;
    }
    // Flush while writes still flow, so that the freeze itself has little left to write.
    await this.runner.run(cmd.syncFilesystem(mountPoint));
    await mkdir(this.markerDir, { recursive: true });
    await writeFile(join(this.markerDir, name), mountPoint);
    // Writers block from the start of the freeze (it flushes after stopping them) until the thaw.
    const frozenAt = Date.now();
    try {
      await this.runner.run(cmd.freeze(mountPoint));
    } catch (err) {
      await rm(join(this.markerDir, name), { force: true });
      throw err;
    }
    try {
      await work();
    } finally {
      await this.thaw(name, mountPoint);
    }
    return Date.now() - frozenAt;
  }

  /** Thaws what an earlier process left frozen (the markers it left). Idempotent. */
  async thawLeftovers(): Promise<void> {
    await mkdir(this.markerDir, { recursive: true });
    for (const name of await readdir(this.markerDir)) {
      const mountPoint = (await readFile(join(this.markerDir, name), 'utf8')).trim();
      if (mountPoint && isMountPoint(mountPoint)) {
        this.log.warn({ volume: name, mountPoint }, 'thawing a filesystem an earlier run may have left frozen');
        await this.thaw(name, mountPoint);
      } else {
        await rm(join(this.markerDir, name), { force: true });
      }
    }
  }

  /** Thaws the filesystem at `mountPoint`, retrying; "not frozen" counts as thawed. Throws INTERNAL when it cannot. */
  private async thaw(name: string, mountPoint: string): Promise<void> {
    let last: unknown;
    for (let i = 0; i < THAW_TRIES; i++) {
      try {
        await this.runner.run(cmd.unfreeze(mountPoint));
        last = undefined;
        break;
      } catch (err) {
        if (err instanceof CommandFailedError && err.exitCode === cmd.UNFREEZE_FAILED && /invalid argument/i.test(err.stderrTail)) {
          last = undefined;
          break;
        }
        last = err;
        await new Promise((r) => setTimeout(r, THAW_PAUSE_MS * (i + 1)));
      }
    }
    if (last !== undefined) {
      this.log.error({ err: last, volume: name, mountPoint }, 'cannot thaw a frozen filesystem');
      throw new FerryError(
        'INTERNAL',
        `cannot thaw the filesystem of volume ${name} at ${mountPoint}, so writes to it are blocked: run "fsfreeze --unfreeze ${mountPoint}"`,
        { cause: last },
      );
    }
    await rm(join(this.markerDir, name), { force: true });
  }
}
