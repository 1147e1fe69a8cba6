import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from '../log';
import { writeFileAtomic } from './atomic-file';
import type { VolumeView } from '../wire/records';

/** A lease change made while control was unreachable, to tell control once it answers again. */
export type PendingLeaseOp =
  | { op: 'acquire'; volume: string; mountId: string; mountpoint: string; generation: number; at: string }
  | { op: 'release'; volume: string; mountId: string; at: string };

/**
 * Adds `op` to the ops waiting for control: a release of a Mount ID whose acquire is still waiting
 * cancels both (control never needs to hear of a mount that came and went while it was away).
 */
export function addPending(list: readonly PendingLeaseOp[], op: PendingLeaseOp): PendingLeaseOp[] {
  if (op.op === 'release') {
    const i = list.findIndex((p) => p.op === 'acquire' && p.volume === op.volume && p.mountId === op.mountId);
    if (i >= 0) return [...list.slice(0, i), ...list.slice(i + 1)];
  }
  if (list.some((p) => p.op === op.op && p.volume === op.volume && p.mountId === op.mountId)) return [...list];
  return [...list, op];
}

interface BookFile {
  version: 1;
  /** When control last answered a List (wall time). */
  listedAt: string | null;
  volumes: (VolumeView & { recordedAt: string })[];
  /** Docker Mount IDs granted on this host, by volume (online and offline). */
  mountIds: Record<string, string[]>;
  pending: PendingLeaseOp[];
}

const EMPTY: BookFile = { version: 1, listedAt: null, volumes: [], mountIds: {}, pending: [] };

/**
 * The agent's own knowledge of the cluster's volumes, kept on local disk (`<dataDir>/volume-book.json`,
 * written atomically: a temporary file, fsync, rename) and refreshed from control's answers. When
 * control is unreachable, Docker's Get and List answer from it (never "no such volume" for a volume
 * this host has shown dockerd: dockerd would make an empty `local` volume of that name), and Mounts
 * keeps here the Mount IDs it granted and the lease changes control must still hear of.
 */
export class VolumeBook {
  private data: BookFile;
  private written = '';

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {
    this.data = this.read();
    this.written = JSON.stringify(this.data);
  }

  private read(): BookFile {
    if (!existsSync(this.file)) return structuredClone(EMPTY);
    try {
      const d = JSON.parse(readFileSync(this.file, 'utf8')) as BookFile;
      if (d.version !== 1 || !Array.isArray(d.volumes)) throw new Error(`unknown version ${String(d.version)}`);
      return { ...structuredClone(EMPTY), ...d };
    } catch (err) {
      // A book that cannot be read is rebuilt from control's next answers; it is only a fallback.
      this.log.warn({ err: (err as Error).message, file: this.file }, 'cannot read the volume book; starting an empty one');
      return structuredClone(EMPTY);
    }
  }

  /** Writes the book if it changed: temporary file, fsync, rename (a crash leaves the old or the new). */
  private save(): void {
    const text = JSON.stringify(this.data);
    if (text === this.written) return;
    writeFileAtomic(this.file, text);
    this.written = text;
  }

  /** Control's List: the whole set of volumes (those gone from it are forgotten). */
  rememberAll(views: readonly VolumeView[]): void {
    const at = new Date().toISOString();
    this.data.volumes = views.map((v) => ({ ...strip(v), recordedAt: at }));
    this.data.listedAt = at;
    this.save();
  }

  /** Control's answer about one volume. */
  remember(view: VolumeView): void {
    const at = new Date().toISOString();
    this.data.volumes = [...this.data.volumes.filter((v) => v.name !== view.name), { ...strip(view), recordedAt: at }];
    this.save();
  }

  /** Control says `name` does not exist (any more). */
  forget(name: string): void {
    this.data.volumes = this.data.volumes.filter((v) => v.name !== name);
    this.save();
  }

  /** What control last said of `name`, and when. */
  known(name: string): (VolumeView & { recordedAt: string }) | undefined {
    return this.data.volumes.find((v) => v.name === name);
  }

  all(): (VolumeView & { recordedAt: string })[] {
    return [...this.data.volumes];
  }

  /** Docker Mount ID `mountId` holds `volume` here now. */
  granted(volume: string, mountId: string): void {
    const ids = this.data.mountIds[volume] ?? [];
    if (!ids.includes(mountId)) this.data.mountIds[volume] = [...ids, mountId];
    this.save();
  }

  /** `mountId` let go of `volume`; answers how many Mount IDs still hold it here. */
  released(volume: string, mountId: string): number {
    const left = (this.data.mountIds[volume] ?? []).filter((id) => id !== mountId);
    if (left.length) this.data.mountIds[volume] = left;
    else delete this.data.mountIds[volume];
    this.save();
    return left.length;
  }

  /** Forgets every Mount ID of `volume` here (control's leases are the truth again). */
  setMountIds(volume: string, ids: readonly string[]): void {
    if (ids.length) this.data.mountIds[volume] = [...ids];
    else delete this.data.mountIds[volume];
    this.save();
  }

  mountIdsOf(volume: string): string[] {
    return [...(this.data.mountIds[volume] ?? [])];
  }

  queue(op: PendingLeaseOp): void {
    this.data.pending = addPending(this.data.pending, op);
    this.save();
  }

  pending(): PendingLeaseOp[] {
    return [...this.data.pending];
  }

  /** Control has heard of `op` (or refused it for good). */
  done(op: PendingLeaseOp): void {
    this.data.pending = this.data.pending.filter((p) => !(p.op === op.op && p.volume === op.volume && p.mountId === op.mountId));
    this.save();
  }
}

/** The view as recorded, without what only the answer it came in carries. */
function strip(v: VolumeView): VolumeView {
  const { controlAway: _away, ...rest } = v;
  return rest;
}
