/**
 * The bank's locks, `locks/<kind>-<16 hex>`: plaintext JSON refreshed every 30 s, stale after 120 s
 * without a refresh (then ignored; gc removes it). Backups share; gc is exclusive. A gc that sees any
 * other live lock removes its own and tries again after a jittered pause (so a gc and a backup that
 * see each other never both wait); a backup that sees a live gc lock keeps its own and waits for the
 * gc to finish. Either gives up with BANK_LOCKED after its wait.
 * `lockConflicts` decides (pure, table-tested); BankLocks acts.
 */
import { randomBytes } from 'node:crypto';
import { FerryError } from '../errors';
import type { BankStore } from './types';

export type LockKind = 'backup' | 'gc';

/** A lock object as stored. */
export interface LockRecord {
  kind: LockKind;
  host: string;
  pid: number;
  /** ISO-8601 UTC. */
  started: string;
  refreshed: string;
}

/** The lock's timings, in ms. */
export interface LockTimings {
  refreshMs: number;
  staleMs: number;
  /** Between two looks at the locks while waiting. */
  pollMs: number;
  /** How long acquire waits for others by default. */
  waitMs: number;
}

export const LOCK_TIMINGS: LockTimings = { refreshMs: 30_000, staleMs: 120_000, pollMs: 2_000, waitMs: 15 * 60_000 };

/** A lock as found in the store: its record (null when unreadable) and when it was last written. */
export interface FoundLock {
  key: string;
  record: LockRecord | null;
  modifiedMs: number;
}

/** When a lock was last refreshed: its record's time, or the object's write time when unreadable. */
function refreshedMs(l: FoundLock): number {
  const t = l.record ? Date.parse(l.record.refreshed) : NaN;
  return Number.isFinite(t) ? t : l.modifiedMs;
}

/**
 * What stands in the way of lock `mine` of `kind` (pure): `blocking`, the live locks it must wait for
 * (gc: every other live lock; backup: live gc locks), and `stale`, the locks nobody refreshes.
 */
export function lockConflicts(kind: LockKind, mine: string, locks: readonly FoundLock[], nowMs: number, staleMs: number): { blocking: FoundLock[]; stale: FoundLock[] } {
  const blocking: FoundLock[] = [];
  const stale: FoundLock[] = [];
  for (const l of locks) {
    if (l.key === mine) continue;
    if (nowMs - refreshedMs(l) > staleMs) {
      stale.push(l);
      continue;
    }
    const otherKind = l.record?.kind ?? 'gc';
    if (kind === 'gc' || otherKind === 'gc') blocking.push(l);
  }
  return { blocking, stale };
}

/** "gc on host h2 (pid 7, since 10:00:00Z)" for messages. */
export function describeLock(l: FoundLock): string {
  const r = l.record;
  return r ? `${r.kind} on host ${r.host} (pid ${r.pid}, since ${r.started})` : `an unreadable lock ${l.key}`;
}

/** A held lock: refreshed in the background until released. */
export interface HeldLock {
  readonly key: string;
  release(): Promise<void>;
}

export interface AcquireOptions {
  waitMs?: number;
  onWait?: (msg: string) => void;
}

export class BankLocks {
  constructor(
    private readonly store: BankStore,
    private readonly t: LockTimings = LOCK_TIMINGS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Every lock in the bank with its record. */
  async list(): Promise<FoundLock[]> {
    const objects = await this.store.list('locks/');
    return Promise.all(objects.map(async (o) => {
      const body = await this.store.get(o.key);
      let record: LockRecord | null = null;
      try {
        record = body ? (JSON.parse(body.toString('utf8')) as LockRecord) : null;
      } catch {
        record = null;
      }
      return { key: o.key, record, modifiedMs: o.modifiedMs };
    }));
  }

  /** Deletes locks nobody has refreshed within staleMs (gc does this); their keys. */
  async removeStale(): Promise<string[]> {
    const { stale } = lockConflicts('backup', '', await this.list(), this.now(), this.t.staleMs);
    const keys = stale.map((l) => l.key);
    if (keys.length) await this.store.delete(keys);
    return keys;
  }

  /** Takes a lock of `kind`, waiting for what blocks it up to `waitMs`; BANK_LOCKED after that. */
  async acquire(kind: LockKind, host: string, o: AcquireOptions = {}): Promise<HeldLock> {
    const deadline = this.now() + (o.waitMs ?? this.t.waitMs);
    for (;;) {
      const held = await this.write(kind, host);
      for (;;) {
        const { blocking } = lockConflicts(kind, held.key, await this.list(), this.now(), this.t.staleMs);
        if (blocking.length === 0) return held;
        const whom = blocking.map(describeLock).join(', ');
        if (this.now() >= deadline) {
          await held.release();
          throw new FerryError(
            'BANK_LOCKED',
            `bank ${this.store.url} is locked by ${whom}; gave up waiting. Retry when it has finished (a lock whose host is gone goes stale ${this.t.staleMs / 1000} s after its last refresh)`,
            { details: { locks: blocking.map((l) => l.key) } },
          );
        }
        o.onWait?.(`waiting for ${whom} to finish`);
        if (kind === 'gc') {
          // gc yields: drop the lock so a backup seeing it does not wait on us, and come back later.
          await held.release();
          await sleep(this.t.pollMs * (0.5 + Math.random()));
          break;
        }
        await sleep(this.t.pollMs);
      }
    }
  }

  /** Writes a new lock of `kind` and keeps it refreshed until released. */
  private async write(kind: LockKind, host: string): Promise<HeldLock> {
    const key = `locks/${kind}-${randomBytes(8).toString('hex')}`;
    const started = new Date(this.now()).toISOString();
    const body = (): Buffer => Buffer.from(JSON.stringify({ kind, host, pid: process.pid, started, refreshed: new Date(this.now()).toISOString() } satisfies LockRecord));
    await this.store.put(key, body());
    let refreshing: Promise<void> = Promise.resolve();
    let released = false;
    const timer = setInterval(() => {
      // A failed refresh is retried at the next tick; the lock goes stale only after staleMs of them.
      refreshing = refreshing.then(() => (released ? undefined : this.store.put(key, body()))).catch(() => undefined);
    }, this.t.refreshMs);
    timer.unref();
    return {
      key,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        // A refresh still under way must not write the lock back after the delete.
        await refreshing;
        await this.store.delete([key]);
      },
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
