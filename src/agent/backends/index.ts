import type { Config } from '../../config/config';
import { toFerryError } from '../../errors';
import type { Runner } from '../../exec/runner';
import type { Logger } from '../../log';
import type { Backend } from './backend';
import type { BackendDescriptor } from './descriptor';
import { BACKENDS, type BackendKind } from './registry';

/** A backend and whether it came up at start. */
export interface BackendSlot {
  backend: Backend;
  /** Why the backend is unusable (its pool could not be made or mounted); absent when it works. */
  error?: string;
}

/** Makes every registered backend from its config section (nothing touches disk until init). */
export async function createBackends(config: Config, runner: Runner, log: Logger): Promise<Map<BackendKind, Backend>> {
  const backends = new Map<BackendKind, Backend>();
  for (const d of BACKENDS as readonly BackendDescriptor[]) {
    const section = config[d.kind as BackendKind];
    backends.set(d.kind as BackendKind, await d.create(section, runner, log.child({ component: 'backend', backend: d.kind })));
  }
  return backends;
}

/**
 * Brings every backend up; one that fails (no btrfs tools, pool cannot be made) is kept with the
 * reason, so the others still serve and its volumes answer with that reason.
 */
export async function initBackends(backends: Map<BackendKind, Backend>, log: Logger): Promise<Map<BackendKind, BackendSlot>> {
  const slots = new Map<BackendKind, BackendSlot>();
  for (const [kind, backend] of backends) {
    try {
      await backend.init();
      slots.set(kind, { backend });
    } catch (err) {
      const e = toFerryError(err);
      log.warn({ err: e, backend: kind }, 'backend unavailable on this host; volumes of the other backends work');
      slots.set(kind, { backend, error: e.message });
    }
  }
  return slots;
}
