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

/**
 * One volume's used bytes, measured right after a Create or the last Unmount rather than at the
 * next usage pass (up to 30 s later). The measurement runs beside the operation, which answers
 * without waiting for it (it spawns a tool on some backends: more than a whole Create costs); a
 * Get or inspect of that volume waits for it, so that what it shows is measured, never null.
 */
export class UsageMeter {
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly control: ControlClient,
    private readonly log: Logger,
  ) {}

  /** Starts measuring `name` on `backend`; returns at once. */
  measure(backend: Backend, name: string): void {
    if (!hasUsage(backend)) return;
    const before = this.pending.get(name) ?? Promise.resolve();
    // One after another per volume: a later figure never lands before an earlier one.
    const p = before.then(() => recordUsageOf(backend, this.control, this.log, [name]));
    this.pending.set(name, p);
    void p.finally(() => {
      if (this.pending.get(name) === p) this.pending.delete(name);
    });
  }

  /** Resolves once the measurements under way of `name` (of every volume, without one) are recorded. */
  async settled(name?: string): Promise<void> {
    if (name === undefined) await Promise.all(this.pending.values());
    else await this.pending.get(name);
  }
}
