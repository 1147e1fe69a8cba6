import type { BackendDescriptor, BackendOption } from './descriptor';
import { btrfsBackend } from './btrfs/descriptor';
import { directoryBackend } from './directory/descriptor';
import { loopBackend } from './loop/descriptor';
import { zfsBackend } from './zfs/descriptor';
import { lvmBackend } from './lvm/descriptor';

/**
 * Every backend ferry knows, one line each; the first is the default. Config sections and
 * validation, Create option checks, the CLI's `--backend` choices, `ferry status` and the contract
 * fixtures all derive from this list. Descriptors are light: no implementation loads until an
 * agent makes its backends.
 */
export const BACKENDS = [
  btrfsBackend,
  loopBackend,
  directoryBackend,
  zfsBackend,
  lvmBackend,
] as const;

export type BackendKind = (typeof BACKENDS)[number]['kind'];

/** The kinds, in registry order. */
export const BACKEND_KINDS = BACKENDS.map((d) => d.kind) as [BackendKind, ...BackendKind[]];

/** The descriptor of `kind`, or undefined for a name no backend registered. */
export function descriptorOf(kind: string): BackendDescriptor | undefined {
  return (BACKENDS as readonly BackendDescriptor[]).find((d) => d.kind === kind);
}

/** Every Create option key some backend takes beyond `size`, with the union of their values. */
export function backendOptions(): Map<string, { values: string[]; defaultValue: string; kinds: BackendKind[] }> {
  const out = new Map<string, { values: string[]; defaultValue: string; kinds: BackendKind[] }>();
  for (const d of BACKENDS) {
    for (const [key, opt] of Object.entries(d.options) as [string, BackendOption][]) {
      const seen = out.get(key) ?? { values: [], defaultValue: opt.defaultValue, kinds: [] };
      for (const v of opt.values) if (!seen.values.includes(v)) seen.values.push(v);
      seen.kinds.push(d.kind);
      out.set(key, seen);
    }
  }
  return out;
}
