import { FerryError } from '../errors';
import { descriptorOf } from '../agent/backends/registry';
import { formatSize } from './size';

/** What a checkpoint says of its source volume (CheckpointSummary's fields a restore reads). */
export interface RestoreSource {
  volume: string;
  id: string;
  backend: string;
  sizeBytes?: number;
  fs?: string;
  dataBytes: number;
}

/** What `ferry backup restore ... --as NEW -o backend=... -o size=... -o fs=...` asked. */
export interface RestoreAsked {
  backend?: string;
  /** As typed (`10G`): the Create option. */
  size?: string;
  fs?: string;
}

/**
 * bank-ops (issue 8): the Create options of a restore's new volume (pure). Each of backend, size and
 * fs as asked, else the checkpoint's own where it fits: its backend when this host has that kind
 * (else the host's default), its size when the backend enforces sizes, its fs when the backend takes
 * that fs. A backend that needs a size with none known is refused, naming the data's size. Always
 * `restoring` (Mount refuses the volume until the restore clears it).
 */
export function restoreCreateOptions(cp: RestoreSource, asked: RestoreAsked, here: readonly string[], defaultBackend: string, restoring: string): Record<string, string> {
  const backend = asked.backend ?? (here.includes(cp.backend) ? cp.backend : defaultBackend);
  const d = descriptorOf(backend);
  const out: Record<string, string> = { backend, restoring };
  const fsValues = d?.options.fs?.values;
  if (asked.fs !== undefined) out.fs = asked.fs;
  else if (fsValues && cp.fs && fsValues.includes(cp.fs)) out.fs = cp.fs;
  if (asked.size !== undefined) out.size = asked.size;
  else if (d?.sizeRules.enforcesSize && cp.sizeBytes) out.size = String(cp.sizeBytes);
  else if (d?.sizeRules.requiresSize) {
    throw new FerryError(
      'INVALID_OPTION',
      `backend ${backend} needs a size and checkpoint ${cp.volume}@${cp.id} has none (its ${cp.backend} volume had no limit; its data is ${formatSize(cp.dataBytes)}): add -o size=...`,
    );
  }
  return out;
}
