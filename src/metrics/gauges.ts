import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Sample } from './series';

/** Makes a gauge in `registry`. */
export function gauge(registry: Registry, name: string, help: string, labelNames: readonly string[] = []): Gauge {
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

/** Replaces every sample of `g` with `samples` (a volume removed since the last scrape disappears). */
export function setSamples(g: Gauge, samples: readonly Sample[]): void {
  g.reset();
  for (const s of samples) g.set(s.labels, s.value);
}

/** Replaces the value of a counter read from a store that only grows (control's events table). */
export function setCounted(c: Counter, samples: readonly Sample[]): void {
  c.reset();
  for (const s of samples) c.inc(s.labels, s.value);
}

/** A registry of its own (never prom-client's global one: tests run several ferries in one process). */
export function newRegistry(opts: { processMetrics: boolean }): Registry {
  const registry = new Registry();
  // process_* (CPU, resident memory, open fds) and nodejs_* (event loop lag, heap, GC) of this process.
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Runs scrapes one at a time: each resets gauges and sets them again, and two interleaved ones would
 * show a mix. A failed scrape does not block the next.
 */
export class OneAtATime {
  private last: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.last.then(fn, fn);
    this.last = next.catch(() => undefined);
    return next;
  }
}
