import { FerryError } from '../errors';
import type { CloneSource } from '../volume/clone-source';
import { hasClones, hasStreams, type Backend, type DatasetSpec } from './backends/backend';

/**
 * Makes dataset `target` with the contents of snapshot `from` (snap: `-o from=VOLUME@SNAPSHOT`), on
 * this host: the backend's own clone where it has one (btrfs, zfs, lvm: instant, shared blocks; loop
 * and directory: a copy), else a local send | receive of that snapshot, made live and the received
 * snapshot dropped. INVALID_REQUEST for a backend with neither. Nothing of `target` is left on failure.
 */
export async function cloneDataset(backend: Backend, from: CloneSource, target: string, spec: DatasetSpec): Promise<void> {
  if (hasClones(backend)) {
    await backend.clone(from.volume, from.snapshot, target, spec);
    return;
  }
  if (!hasStreams(backend)) {
    throw new FerryError('INVALID_REQUEST', `cannot make ${target} from ${from.volume}@${from.snapshot}: backend ${backend.kind} has neither clones nor streams`);
  }
  try {
    await backend.receive(target, from.snapshot, backend.send(from.volume, from.snapshot));
    await backend.rollback(target, from.snapshot, spec);
    await backend.deleteSnapshot(target, from.snapshot);
  } catch (err) {
    await backend.destroy(target).catch(() => undefined);
    throw err;
  }
}
