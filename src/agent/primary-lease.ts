/**
 * A primary host's time-bound lease on its primary volumes (DESIGN: "Control away"). Each heartbeat
 * that control answers renews it for `leaseMs`, counted from the moment the heartbeat was SENT, on
 * this host's monotonic clock: control records the heartbeat when it receives it, which is later, so
 * the agent's lease always ends before control's view of it (control adds a margin for clock rates).
 * While the lease is valid and control is unreachable, Mount and Unmount of the volumes it covers
 * work locally; after it, Mount fails.
 */

/** What decides a lease: when the last answered heartbeat was sent, and now (monotonic ms). */
export interface LeaseFacts {
  /** Monotonic ms at which the last heartbeat control answered was sent; null: none yet. */
  renewedAtMs: number | null;
  leaseMs: number;
  nowMs: number;
}

export type LeaseState =
  | { valid: true; expiresAtMs: number; leftMs: number }
  | { valid: false; expiresAtMs: number | null; reason: 'never-renewed' | 'expired' };

/** Whether the lease holds at `nowMs`: valid for [renewedAt, renewedAt + lease), never before a first renewal. */
export function leaseState(f: LeaseFacts): LeaseState {
  if (f.renewedAtMs === null) return { valid: false, expiresAtMs: null, reason: 'never-renewed' };
  const expiresAtMs = f.renewedAtMs + f.leaseMs;
  // A clock that went backwards (it cannot: monotonic) would extend the lease; refuse instead.
  if (f.nowMs < f.renewedAtMs) return { valid: false, expiresAtMs, reason: 'expired' };
  return f.nowMs < expiresAtMs ? { valid: true, expiresAtMs, leftMs: expiresAtMs - f.nowMs } : { valid: false, expiresAtMs, reason: 'expired' };
}

/** The volumes a lease covers: those control named as this host's primaries, at their generation. */
export type LeasedVolumes = ReadonlyMap<string, number>;

/** A clock: monotonic ms for the lease, wall ms for what people read. */
export interface LeaseClock {
  monotonicMs(): number;
  wallMs(): number;
}

export const SYSTEM_CLOCK: LeaseClock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

/** When a mount is refused, the facts the message tells. */
export interface LeaseRefusal {
  /** Wall time of the last heartbeat control answered (null: none since start). */
  lastHeardAt: string | null;
  /** Wall time at which the lease ran out (null: never held). */
  expiredAt: string | null;
}

/**
 * This agent's lease, renewed by Membership after each answered heartbeat and read by Mounts when
 * control is unreachable. Keeps which volumes it covers (control's answer) and when it was renewed.
 */
export class PrimaryLease {
  private renewedAtMono: number | null = null;
  private renewedAtWall: number | null = null;
  private covered: LeasedVolumes = new Map();
  /** Wall time of the first failed heartbeat since the last answered one. */
  private silentSinceWall: number | null = null;

  constructor(
    readonly leaseMs: number,
    private readonly clock: LeaseClock = SYSTEM_CLOCK,
  ) {}

  /** A reading of the clock to take just before sending a heartbeat. */
  mark(): { mono: number; wall: number } {
    return { mono: this.clock.monotonicMs(), wall: this.clock.wallMs() };
  }

  /** Control answered the heartbeat sent at `sent`, naming this host's primary volumes. */
  renew(sent: { mono: number; wall: number }, primaries: readonly { volume: string; generation: number }[]): void {
    // An answer to an older heartbeat arriving late never shortens the lease.
    if (this.renewedAtMono === null || sent.mono >= this.renewedAtMono) {
      this.renewedAtMono = sent.mono;
      this.renewedAtWall = sent.wall;
    }
    this.covered = new Map(primaries.map((p) => [p.volume, p.generation]));
    this.silentSinceWall = null;
  }

  /** A heartbeat failed: control is unreachable from here (since the first failure). */
  missed(): void {
    this.silentSinceWall ??= this.clock.wallMs();
  }

  state(): LeaseState {
    return leaseState({ renewedAtMs: this.renewedAtMono, leaseMs: this.leaseMs, nowMs: this.clock.monotonicMs() });
  }

  /** The generation at which the lease covers `volume`, else undefined. */
  generationOf(volume: string): number | undefined {
    return this.covered.get(volume);
  }

  /** What to tell a user whose mount was refused. */
  refusal(): LeaseRefusal {
    const s = this.state();
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    const expiredAt = s.expiresAtMs === null || this.renewedAtWall === null || this.renewedAtMono === null ? null : this.renewedAtWall + (s.expiresAtMs - this.renewedAtMono);
    return { lastHeardAt: iso(this.renewedAtWall), expiredAt: iso(expiredAt) };
  }

  /** Wall time since which heartbeats fail, if they do. */
  get silentSince(): string | null {
    return this.silentSinceWall === null ? null : new Date(this.silentSinceWall).toISOString();
  }
}
