import { FerryError } from '../errors';
import type { Config } from '../config/config';
import { validateVolumeName } from './names';
import { resolveCreateOptions, type VolumeSpec } from './options';
import { parseSnapshotName, validateStoredSnapshotName } from './snapshot-names';

/** Where a new volume's data comes from: `-o from=VOLUME@SNAPSHOT` (snap, issue 7 item 1). */
export interface CloneSource {
  volume: string;
  snapshot: string;
}

/** Reads `-o from=VOLUME@SNAPSHOT` (pure); INVALID_OPTION saying the form for anything else. */
export function parseCloneSource(value: string): CloneSource {
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) {
    throw new FerryError('INVALID_OPTION', `invalid from ${JSON.stringify(value)}: give VOLUME@SNAPSHOT, e.g. -o from=db@before-upgrade (ferry snapshot ls shows them)`);
  }
  const volume = validateVolumeName(value.slice(0, at));
  const snapshot = validateStoredSnapshotName(value.slice(at + 1));
  if (parseSnapshotName(snapshot)?.owner === 'move') {
    throw new FerryError('INVALID_OPTION', `snapshot ${snapshot} belongs to a move, not to ${volume}'s snapshots: pick one that ferry snapshot ls ${volume} shows`);
  }
  return { volume, snapshot };
}

/**
 * The spec of a volume cloned from a snapshot of `source` (pure): the source's backend and `fs`
 * (a clone is the same kind of dataset), its size unless `-o size` asks for another. INVALID_OPTION
 * for a `backend` or `fs` other than the source's.
 */
export function cloneSpec(
  opts: Readonly<Record<string, string>>,
  source: { name: string; backend: string; fs: string | null; sizeBytes: number | null },
  config: Config,
): VolumeSpec {
  const { from: _from, ...rest } = opts;
  if (rest.backend !== undefined && rest.backend !== source.backend) {
    throw new FerryError('INVALID_OPTION', `a clone of ${source.name} is a ${source.backend} volume like it: drop -o backend=${rest.backend}`);
  }
  if (rest.fs !== undefined && rest.fs !== (source.fs ?? undefined)) {
    throw new FerryError('INVALID_OPTION', `a clone of ${source.name} has its filesystem${source.fs ? ` (${source.fs})` : ''}: drop -o fs=${rest.fs}`);
  }
  if (rest.profile !== undefined) {
    throw new FerryError('INVALID_OPTION', `a clone takes its backend and size from ${source.name}, not from a profile: drop -o profile=${rest.profile}`);
  }
  return resolveCreateOptions(
    {
      ...rest,
      backend: source.backend,
      ...(source.fs ? { fs: source.fs } : {}),
      ...(rest.size === undefined && source.sizeBytes !== null ? { size: String(source.sizeBytes) } : {}),
    },
    config,
  );
}
