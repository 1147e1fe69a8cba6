import type { Backend, DatasetSpec, PoolCapacity } from '../../src/agent/backends/backend';
import { FerryError } from '../../src/errors';

/**
 * A real, tiny backend with the core abilities only (no snapshots, clones, streams or usage):
 * datasets are names in memory, mounts are recorded, not made. For tests of what ferry does with
 * a backend that lacks an ability.
 */
export function plainBackend(kind: string): Backend & { mounted: Map<string, string> } {
  const datasets = new Set<string>();
  const mounted = new Map<string, string>();
  return {
    kind,
    mounted,
    sizeRules: { enforcesSize: false, requiresSize: false, minBytes: () => 0 },
    init: () => Promise.resolve(),
    capacity: (): Promise<PoolCapacity> => Promise.resolve({ totalBytes: 1 << 30, freeBytes: 1 << 30 }),
    create: (name: string, _spec: DatasetSpec) => {
      datasets.add(name);
      return Promise.resolve();
    },
    destroy: (name: string) => {
      if (mounted.has(name)) return Promise.reject(new FerryError('VOLUME_BUSY', `dataset ${name} is mounted`));
      datasets.delete(name);
      return Promise.resolve();
    },
    list: () => Promise.resolve([...datasets].sort()),
    exists: (name: string) => Promise.resolve(datasets.has(name)),
    mount: (name: string, target: string) => {
      if (!datasets.has(name)) return Promise.reject(new FerryError('VOLUME_NOT_FOUND', `no dataset ${name}`));
      mounted.set(name, target);
      return Promise.resolve();
    },
    unmount: (name: string) => {
      mounted.delete(name);
      return Promise.resolve();
    },
  };
}

/** The backend with methods of these names added (they fail if called): enough for the type guards. */
export function withAbilities<B extends Backend>(b: B, methods: string[]): B {
  const out = b as B & Record<string, unknown>;
  for (const m of methods) (out as Record<string, unknown>)[m] = () => Promise.reject(new Error(`${m} is not implemented in this test backend`));
  return out;
}
