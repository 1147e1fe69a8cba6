import { FerryError } from '../errors';
import { validateVolumeName } from '../volume/names';
import { validateStoredSnapshotName } from '../volume/snapshot-names';

/**
 * What one host may ask of another over the transfer channel: dataset streams and the little they
 * need, never a shell. Each request is one exec line of space-separated, validated words.
 */
export type TransferRequest =
  | { op: 'snapshots'; volume: string }
  | { op: 'send'; volume: string; snapshot: string; base?: string }
  | { op: 'send-final'; volume: string; snapshot: string; base?: string }
  /** Deletes the move-owned snapshots of the volume other than `keep`; nobody else's. */
  | { op: 'prune'; volume: string; keep: string }
  | { op: 'drop'; volume: string }
  /** snap: a stream of an existing snapshot (never taken for the request), with `base` an increment. */
  | { op: 'send-snapshot'; volume: string; snapshot: string; base?: string }
  /** replicate: deletes the volume's replication snapshots older than `oldest` (every standby's base or newer stays). */
  | { op: 'prune-replication'; volume: string; oldest: string }
  /**
   * A move of `volume` that the asked host takes part in was requested through the asking one: the
   * asked host heartbeats now, and control's answer hands it its part (the target the move, a source
   * told to restart containers the stop), which would come with its next heartbeat.
   */
  | { op: 'wake'; volume: string };

/** Encodes a request as an exec line. */
export function encodeRequest(r: TransferRequest): string {
  switch (r.op) {
    case 'snapshots':
      return `snapshots ${r.volume}`;
    case 'send':
    case 'send-final':
    case 'send-snapshot':
      return [r.op, r.volume, r.snapshot, ...(r.base ? [r.base] : [])].join(' ');
    case 'prune':
      return `prune ${r.volume} ${r.keep}`;
    case 'drop':
      return `drop ${r.volume}`;
    case 'wake':
      return `wake ${r.volume}`;
    case 'prune-replication':
      return `prune-replication ${r.volume} ${r.oldest}`;
  }
}

/** Parses an exec line (pure); INVALID_REQUEST for anything that is not exactly a known request. */
export function parseRequest(line: string): TransferRequest {
  const w = line.trim().split(/ +/);
  const bad = (): FerryError => new FerryError('INVALID_REQUEST', `transfer accepts only dataset requests, not ${JSON.stringify(line.slice(0, 80))}`);
  switch (w[0]) {
    case 'snapshots':
      if (w.length !== 2) throw bad();
      return { op: 'snapshots', volume: validateVolumeName(w[1]) };
    case 'send':
    case 'send-final':
    case 'send-snapshot':
      if (w.length !== 3 && w.length !== 4) throw bad();
      return {
        op: w[0],
        volume: validateVolumeName(w[1]),
        snapshot: validateStoredSnapshotName(w[2]),
        ...(w[3] ? { base: validateStoredSnapshotName(w[3]) } : {}),
      };
    case 'prune':
      if (w.length !== 3) throw bad();
      return { op: 'prune', volume: validateVolumeName(w[1]), keep: validateStoredSnapshotName(w[2]) };
    case 'drop':
      if (w.length !== 2) throw bad();
      return { op: 'drop', volume: validateVolumeName(w[1]) };
    case 'wake':
      if (w.length !== 2) throw bad();
      return { op: 'wake', volume: validateVolumeName(w[1]) };
    case 'prune-replication':
      if (w.length !== 3) throw bad();
      return { op: 'prune-replication', volume: validateVolumeName(w[1]), oldest: validateStoredSnapshotName(w[2]) };
    default:
      throw bad();
  }
}
