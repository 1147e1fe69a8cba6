import type { z } from 'zod';
import type { Runner } from '../../exec/runner';
import type { Logger } from '../../log';
import type { Ability, Backend, SizeRules } from './backend';

/** A Create option a backend takes beyond `size` (e.g. loop's `fs`): its values and the config default. */
export interface BackendOption {
  /** The values `-o KEY=VALUE` accepts. */
  values: readonly string[];
  /** What `defaults.KEY` in the config holds when the config says nothing. */
  defaultValue: string;
}

/**
 * Everything ferry knows about one kind of backend without loading its implementation: config,
 * validation and the CLI read this; only the agent calls `create`, which loads the code.
 */
export interface BackendDescriptor<K extends string = string, S extends z.ZodType = z.ZodType> {
  /** The name in `-o backend=`, in `--backend`, and the config section that holds its settings. */
  readonly kind: K;
  /** One line for help and `ferry status`. */
  readonly summary: string;
  /** Its section of the config (`config[kind]`), strict. */
  readonly configSchema: S;
  /** That section's defaults, given the data dir. */
  configDefaults(dataDir: string): z.infer<S>;
  /** The Create options it takes beyond `size`, by key (only `fs` today: the key volumes record). */
  readonly options: Readonly<Partial<Record<'fs', BackendOption>>>;
  /** Size limits on a spec, checked before anything is written. */
  readonly sizeRules: SizeRules;
  /** The optional abilities its backend objects have (the registry test checks them against the methods). */
  readonly abilities: readonly Ability[];
  /** Loads the implementation and makes a backend from the config section (nothing touches disk until init). */
  create(section: z.infer<S>, runner: Runner, log: Logger): Promise<Backend>;
}

/** Declares a descriptor, keeping its literal kind and config type for the registry. */
export function defineBackend<const K extends string, S extends z.ZodType>(d: BackendDescriptor<K, S>): BackendDescriptor<K, S> {
  return Object.freeze(d);
}
