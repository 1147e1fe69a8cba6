import type { z } from 'zod';
import type { Runner } from '../../exec/runner';
import type { Logger } from '../../log';
import type { Ability, Backend, SizeRules } from './backend';

/** zod's namespace, as `config.ts` passes it to each descriptor's `configSchema`. */
export type Zod = typeof z;

/** A Create option a backend takes beyond `size` (e.g. loop's `fs`): its values and the config default. */
export interface BackendOption {
  /** The values `-o KEY=VALUE` accepts. */
  values: readonly string[];
  /** What `defaults.KEY` in the config holds when the config says nothing. */
  defaultValue: string;
}

/** What a backend needs of its host: commands on PATH and filesystems the kernel can mount. */
export interface BackendNeeds {
  readonly tools: readonly string[];
  /** Filesystem types as /proc/filesystems names them (a module that loads on mount counts). */
  readonly filesystems: readonly string[];
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
  /**
   * Its section of the config (`config[kind]`), strict, made with the zod the config module hands
   * in: a descriptor only names zod's types, so the CLI's client commands, which read the registry
   * but no config, never load zod (about 100 ms of every command's start).
   */
  configSchema(zod: Zod): S;
  /** That section's defaults, given the data dir. */
  configDefaults(dataDir: string): z.infer<S>;
  /** The Create options it takes beyond `size`, by key (only `fs` today: the key volumes record). */
  readonly options: Readonly<Partial<Record<'fs', BackendOption>>>;
  /** Size limits on a spec, checked before anything is written. */
  readonly sizeRules: SizeRules;
  /**
   * What it runs and mounts, whatever the volume (`base`), and what one value of a Create option adds
   * (loop's `fs=xfs` needs mkfs.xfs and the xfs filesystem). `ferry doctor` and the contract fixtures
   * read this one place.
   */
  readonly needs: { readonly base: BackendNeeds; readonly options?: Readonly<Partial<Record<'fs', Readonly<Record<string, BackendNeeds>>>>> };
  /** The optional abilities its backend objects have (the registry test checks them against the methods). */
  readonly abilities: readonly Ability[];
  /** Loads the implementation and makes a backend from the config section (nothing touches disk until init). */
  create(section: z.infer<S>, runner: Runner, log: Logger): Promise<Backend>;
}

/** Declares a descriptor, keeping its literal kind and config type for the registry. */
export function defineBackend<const K extends string, S extends z.ZodType>(d: BackendDescriptor<K, S>): BackendDescriptor<K, S> {
  return Object.freeze(d);
}

/** What `d` needs for volumes with `options` (base needs plus each given option value's), without duplicates. */
export function needsOf(d: Pick<BackendDescriptor, 'needs'>, options: Partial<Record<'fs', string>> = {}): BackendNeeds {
  const tools = [...d.needs.base.tools];
  const filesystems = [...d.needs.base.filesystems];
  for (const [key, value] of Object.entries(options) as ['fs', string | undefined][]) {
    const extra = value === undefined ? undefined : d.needs.options?.[key]?.[value];
    for (const t of extra?.tools ?? []) if (!tools.includes(t)) tools.push(t);
    for (const f of extra?.filesystems ?? []) if (!filesystems.includes(f)) filesystems.push(f);
  }
  return { tools, filesystems };
}
