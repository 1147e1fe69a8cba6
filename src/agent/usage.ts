import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import { hasUsage, type Backend } from './backends/backend';

/**
 * Measures the used bytes of `names` (all of the backend's datasets when absent) and records them
 * with control. Measuring is never worth failing an operation for: a failure is logged and the next
 * usage pass tries again.
 */
export async function recordUsageOf(backend: Backend, control: ControlClient, log: Logger, names?: readonly string[]): Promise<void> {
  if (!hasUsage(backend)) return;
  try {
    const used = await backend.usage(names);
    if (used.size) await control.recordUsage(used);
  } catch (err) {
    log.warn({ err, backend: backend.kind, volumes: names }, 'cannot measure usage');
  }
}
