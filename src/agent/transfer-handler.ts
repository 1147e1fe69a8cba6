import { Readable } from 'node:stream';
import type { ControlClient } from '../wire/control-client';
import { FerryError } from '../errors';
import type { TransferHandler } from '../transfer/server';
import type { TransferRequest } from '../transfer/protocol';
import { moveOfSnapshot, parseSnapshotName } from '../volume/snapshot-names';
import type { Snapshots } from './snapshots';
import { isActiveMove } from '../control/move-states';

const isActiveMoveState = (s: Parameters<typeof isActiveMove>[0] | undefined): boolean => s !== undefined && isActiveMove(s);
import { prunableReplicationSnapshots } from '../volume/replication-names';
import type { MovableBackend } from './backends/backend';

/** What the source side of a move needs from the agent. */
export interface SourceSide {
  readonly node: string;
  backendOf(volume: string): Promise<MovableBackend>;
  withVolumeLock<T>(volume: string, work: () => Promise<T>): Promise<T>;
  /** Unmounts the volume here; VOLUME_IN_USE while a lease is held here. */
  releaseForMove(volume: string): Promise<void>;
  /** Destroys this host's copy if control asks for it to go; true when it did. */
  destroyCopy(volume: string): Promise<boolean>;
}

/**
 * Answers another host's transfer requests: the source side of a move. It streams only volumes this
 * host is primary for, and takes the final snapshot only with the volume released and unmounted.
 */
export class SourceTransferHandler implements TransferHandler {
  constructor(
    private readonly agent: SourceSide,
    private readonly control: ControlClient,
    /** replicate: replication snapshots are taken and removed through the snapshot part (registry). */
    private readonly snapshots?: Pick<Snapshots, 'take' | 'remove'>,
    /** wake: heartbeats now, so that control hands this host a move to it that a peer just asked for. */
    private readonly wake?: () => void,
  ) {}

  async handle(req: TransferRequest, peer: string): Promise<Readable | undefined> {
    // Before any backend: the volume is not on this host yet. Only the heartbeat comes sooner; the
    // move itself is control's to hand out, as ever.
    if (req.op === 'wake') {
      this.wake?.();
      return undefined;
    }
    const backend = await this.agent.backendOf(req.volume);
    switch (req.op) {
      case 'snapshots':
        return Readable.from([JSON.stringify(await backend.listSnapshots(req.volume))]);
      case 'prune':
        // The replica keeps `keep` (the base of a move back) and every snapshot a move does not own.
        for (const s of await backend.listSnapshots(req.volume)) {
          if (s !== req.keep && moveOfSnapshot(s) !== undefined) await backend.deleteSnapshot(req.volume, s);
        }
        return undefined;
      case 'prune-replication':
        // replicate: a standby's round ended; what no standby needs as a base goes (the rule is pure).
        // Not while the volume moves: the move may have chosen one of them as its base.
        if (isActiveMoveState((await this.control.moveOf(req.volume))?.state)) return undefined;
        for (const s of prunableReplicationSnapshots(await backend.listSnapshots(req.volume), req.oldest)) {
          if (this.snapshots) await this.snapshots.remove(req.volume, s);
          else await backend.deleteSnapshot(req.volume, s);
        }
        return undefined;
      case 'drop':
        // Control decides which copies go (heartbeat answers carry them); a peer's request only hurries
        // that along, and never removes a copy that control keeps.
        if (!(await this.agent.destroyCopy(req.volume))) {
          throw new FerryError('NOT_PRIMARY', `host ${this.agent.node} keeps its copy of ${req.volume}: control does not ask for its removal`);
        }
        return undefined;
      case 'send':
        if (this.snapshots && parseSnapshotName(req.snapshot)?.owner === 'replication') {
          await this.takeReplication(req.volume, req.snapshot);
          return backend.send(req.volume, req.snapshot, req.base);
        }
        await this.agent.withVolumeLock(req.volume, async () => {
          await this.requirePrimary(req.volume);
          await this.snapshotOnce(backend, req.volume, req.snapshot);
        });
        return backend.send(req.volume, req.snapshot, req.base);
      case 'send-snapshot':
        // snap: a snapshot that exists (a user's, a schedule's, replication's), for the snapshot chain;
        // never taken for the request, so a snapshot removed meanwhile is SNAPSHOT_NOT_FOUND, not made anew.
        if (!(await backend.listSnapshots(req.volume)).includes(req.snapshot)) {
          throw new FerryError('SNAPSHOT_NOT_FOUND', `host ${this.agent.node} holds no snapshot ${req.snapshot} of ${req.volume}`);
        }
        return backend.send(req.volume, req.snapshot, req.base);
      case 'send-final':
        await this.agent.withVolumeLock(req.volume, async () => {
          await this.requirePrimary(req.volume);
          const m = await this.control.moveOf(req.volume);
          if (!m || m.state !== 'final' || m.source !== this.agent.node || m.target !== peer) {
            throw new FerryError('MOVE_CONFLICT', `no final step of a move of ${req.volume} to ${peer} is under way`);
          }
          // Nothing may write while the last snapshot is taken: released and unmounted, under the lock
          // that Mount takes too, and control refuses new leases while the move is final.
          await this.agent.releaseForMove(req.volume);
          await this.snapshotOnce(backend, req.volume, req.snapshot);
        });
        return backend.send(req.volume, req.snapshot, req.base);
    }
  }

  /**
   * replicate: a standby's round asks for replication snapshot `name`; the primary takes it now
   * (Snapshots.take: primary only, under the volume's lock, recorded in control's registry), or finds
   * it taken by another standby's round of the same second.
   */
  private async takeReplication(volume: string, name: string): Promise<void> {
    try {
      await this.snapshots!.take(volume, { name, origin: 'replication' });
    } catch (err) {
      if (!(err instanceof FerryError && err.code === 'VOLUME_EXISTS')) throw err;
    }
  }

  private async requirePrimary(volume: string): Promise<void> {
    const v = await this.control.getVolume(volume);
    if (!v || v.primaryNode !== this.agent.node) {
      throw new FerryError('NOT_PRIMARY', `host ${this.agent.node} is not primary for ${volume}${v ? ` (${v.primaryNode} is)` : ''}`);
    }
  }

  /** A retried request finds its snapshot already taken. */
  private async snapshotOnce(backend: MovableBackend, volume: string, snap: string): Promise<void> {
    if (!(await backend.listSnapshots(volume)).includes(snap)) await backend.snapshot(volume, snap);
  }
}
