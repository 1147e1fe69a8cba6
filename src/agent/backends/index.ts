import type { Config } from '../../config/config';
import { toFerryError } from '../../errors';
import type { Runner } from '../../exec/runner';
import type { Logger } from '../../log';
import { parseSize } from '../../volume/size';
import type { BackendKind, FullBackend } from './backend';
import { BtrfsBackend } from './btrfs';
import { DirectoryBackend } from './directory';
import { LoopBackend } from './loop';

/** Makes every built-in backend from the config (nothing touches disk until init). */
export function createBackends(config: Config, runner: Runner, log: Logger): Map<BackendKind, FullBackend> {
  const child = (kind: string): Logger => log.child({ component: 'backend', backend: kind });
  return new Map<BackendKind, FullBackend>([
    [
      'btrfs',
      new BtrfsBackend(
        {
          path: config.btrfs.path,
          poolFile: config.btrfs.poolFile,
          poolSizeBytes: parseSize(config.btrfs.poolSize, 'btrfs.poolSize'),
          poolMount: config.btrfs.poolMount,
        },
        runner,
        child('btrfs'),
      ),
    ],
    ['loop', new LoopBackend({ dir: config.loop.dir }, runner, child('loop'))],
    ['directory', new DirectoryBackend({ dir: config.directory.dir }, runner, child('directory'))],
  ]);
}

/** A backend and whether it came up at start. */
export interface BackendSlot {
  backend: FullBackend;
  /** Why the backend is unusable (its pool could not be made or mounted); absent when it works. */
  error?: string;
}

/**
 * Brings every backend up; one that fails (no btrfs tools, pool cannot be made) is kept with the
 * reason, so the others still serve and its volumes answer with that reason.
 */
export async function initBackends(backends: Map<BackendKind, FullBackend>, log: Logger): Promise<Map<BackendKind, BackendSlot>> {
  const slots = new Map<BackendKind, BackendSlot>();
  for (const [kind, backend] of backends) {
    try {
      await backend.init();
      slots.set(kind, { backend });
    } catch (err) {
      const e = toFerryError(err);
      log.error({ err: e, backend: kind }, 'backend unavailable');
      slots.set(kind, { backend, error: e.message });
    }
  }
  return slots;
}
