import { FerryError, isFerryError } from '../errors';
import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import type { VolumeView } from '../wire/records';
import type { KeyedLock } from './keyed-lock';
import type { PrimaryLease } from './primary-lease';
import type { PendingLeaseOp, VolumeBook } from './volume-book';

/**
 * Errors that mean "control did not answer" (the HTTP control client marks them), as opposed to an
 * answer that refuses, or another host being down.
 */
export function isControlUnreachable(err: unknown): boolean {
  return isFerryError(err, 'NODE_UNREACHABLE') && err.details?.controlUnreachable === true;
}

/**
 * What the agent does while control is unreachable (cluster mode): answers Docker's Get and List from
 * its volume book, mounts and unmounts its primary volumes locally while its time-bound lease holds
 * (keeping the Mount IDs it granted), and tells control of them once control answers again.
 */
export class ControlAway {
  constructor(
    private readonly node: string,
    private readonly controlUrl: string,
    private readonly book: VolumeBook,
    private readonly lease: PrimaryLease,
    private readonly control: ControlClient,
    private readonly lock: KeyedLock,
    private readonly log: Logger,
  ) {}

  /** Control answered about one volume (undefined: it does not exist). */
  seen(name: string, v: VolumeView | undefined): void {
    if (v && v.state !== 'creating') this.book.remember(v);
    else if (!v) this.book.forget(name);
  }

  /** Control answered a List (every volume, those being removed included). */
  seenAll(vs: readonly VolumeView[]): void {
    this.book.rememberAll(vs.filter((v) => v.state !== 'creating'));
  }

  private marked(v: VolumeView & { recordedAt: string }): VolumeView {
    const { recordedAt, ...view } = v;
    return { ...view, controlAway: { since: this.lease.silentSince, recordedAt } };
  }

  /**
   * Get while control is unreachable: the volume as last recorded, marked so. A volume the book does
   * not know rethrows `err` (the plugin then gives dockerd no answer at all rather than "absent").
   */
  view(name: string, err: unknown): VolumeView {
    const v = this.book.known(name);
    if (!v) throw err;
    return this.marked(v);
  }

  /** What the book last recorded of `name`. */
  known(name: string): VolumeView | undefined {
    return this.book.known(name);
  }

  /** List while control is unreachable: every volume the book knows. */
  list(): VolumeView[] {
    return this.book.all().map((v) => this.marked(v));
  }

  /**
   * May this host mount `name` now, control being unreachable? Only a volume whose primary this host
   * was at control's last heartbeat answer, while the lease holds. Answers the volume at that generation.
   */
  grantOffline(name: string): VolumeView {
    const v = this.book.known(name);
    const since = this.lease.silentSince ?? 'just now';
    if (!v) {
      throw new FerryError(
        'NODE_UNREACHABLE',
        `volume ${name} cannot be mounted on ${this.node}: control at ${this.controlUrl} is unreachable (since ${since}) and this host has no record of the volume; retry once control answers (check it with ferry doctor)`,
      );
    }
    const generation = this.lease.generationOf(name);
    if (generation === undefined) {
      throw new FerryError(
        'NOT_PRIMARY',
        `volume ${name} cannot be mounted on ${this.node}: its primary is ${v.primaryNode} (as control last said), and control at ${this.controlUrl} is unreachable (since ${since}), so it cannot move here now; run the container on ${v.primaryNode}, or retry once control answers`,
      );
    }
    const s = this.lease.state();
    if (!s.valid) {
      const r = this.lease.refusal();
      throw new FerryError(
        'LEASE_EXPIRED',
        `volume ${name} cannot be mounted on ${this.node}: control at ${this.controlUrl} has been unreachable since ${since}` +
          (r.expiredAt ? ` and this host's lease on its primary volumes expired at ${r.expiredAt} (${this.lease.leaseMs / 1000} s after the last heartbeat control answered, at ${r.lastHeardAt})` : ' and this host has held no lease since it started') +
          `; another host may take the volume over meanwhile. Check that ferry control runs and that ${this.node} reaches it (ferry doctor): mounts work again as soon as control answers`,
        { details: { lastHeardAt: r.lastHeardAt, expiredAt: r.expiredAt } },
      );
    }
    return { ...v, generation, controlAway: { since: this.lease.silentSince, recordedAt: v.recordedAt } };
  }

  /** A Mount granted here (by control, or offline: `offline` keeps it for control to hear of). */
  granted(name: string, mountId: string, offline?: { mountpoint: string; generation: number }): void {
    this.book.granted(name, mountId);
    if (offline) this.book.queue({ op: 'acquire', volume: name, mountId, ...offline, at: new Date().toISOString() });
  }

  /** An Unmount here; `offline`: control did not hear it. Answers how many Mount IDs still hold it here. */
  released(name: string, mountId: string, offline: boolean): number {
    if (offline) this.book.queue({ op: 'release', volume: name, mountId, at: new Date().toISOString() });
    return this.book.released(name, mountId);
  }

  /** Whether a Mount granted here while control was away is still to be told to control. */
  awaitingControl(name: string): boolean {
    return this.book.pending().some((p) => p.op === 'acquire' && p.volume === name);
  }

  /**
   * Control answers again: tells it, in order, of the mounts and unmounts made meanwhile. A mount
   * control refuses (the volume failed over meanwhile) is logged as an error and dropped: its lease
   * is not the truth any more; control's generation keeps the stale copy from being mounted again.
   */
  async catchUp(): Promise<void> {
    for (const op of this.book.pending()) {
      await this.lock.run(op.volume, async () => {
        try {
          if (op.op === 'acquire') await this.control.acquireLease({ volume: op.volume, mountId: op.mountId, node: this.node, mountpoint: op.mountpoint, generation: op.generation });
          else await this.control.releaseLease(op.volume, op.mountId);
          this.book.done(op);
          this.log.info({ volume: op.volume, mountId: op.mountId, op: op.op, at: op.at }, 'told control of a lease change made while it was away');
        } catch (err) {
          if (isControlUnreachable(err)) throw err;
          this.book.done(op);
          this.log.error({ err, volume: op.volume, mountId: op.mountId, op: op.op }, 'control refused a lease change made while it was away');
        }
      });
    }
  }

  /** The lease changes still to tell control. */
  pending(): PendingLeaseOp[] {
    return this.book.pending();
  }
}
