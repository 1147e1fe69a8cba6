import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { delimiter, join } from 'node:path';
import { needsOf, type BackendDescriptor } from '../agent/backends/descriptor';
import { BACKENDS } from '../agent/backends/registry';
import type { DoctorCheck } from '../wire/records';
import { toolsCheck, type LoopDevice } from './checks';

/**
 * What `ferry doctor` reads of this host without running anything: commands on PATH, the kernel's
 * filesystems, loop devices. Reads only; decisions are in checks.ts.
 */

/** True when `tool` is an executable file in one of PATH's directories. */
export function hasTool(tool: string, path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): boolean {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}

/** True when the kernel has `fs`: registered (/proc/filesystems) or a module it can load on mount. */
export function kernelHasFilesystem(fs: string): boolean {
  const registered = readFileSync('/proc/filesystems', 'utf8').split('\n').some((l) => l.split('\t').pop() === fs);
  if (registered) return true;
  const dir = join('/lib/modules', release());
  const mod = new RegExp(`/${fs.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.ko(\\.[a-z]+)?:`, 'm');
  for (const f of ['modules.dep', 'modules.builtin']) {
    const p = join(dir, f);
    // modules.builtin lines have no colon: compare the file's base name instead.
    if (existsSync(p) && (f === 'modules.dep' ? mod.test(readFileSync(p, 'utf8')) : readFileSync(p, 'utf8').split('\n').some((l) => l.endsWith(`/${fs}.ko`)))) return true;
  }
  return false;
}

/**
 * One check per backend, and per value of an option that needs more (loop fs=xfs): what it needs
 * (its descriptor's `needs`) against what this host has. `required`: the kinds whose lack fails the
 * host (the default backend and those holding volumes here); the others are reported, not failed.
 */
export function backendToolChecks(required: ReadonlySet<string>, probe = { hasTool, kernelHasFilesystem }): DoctorCheck[] {
  const out: DoctorCheck[] = [];
  const one = (label: string, needs: { tools: readonly string[]; filesystems: readonly string[] }, isRequired: boolean): void => {
    out.push(
      toolsCheck({
        label,
        missingTools: needs.tools.filter((t) => !probe.hasTool(t)),
        missingFilesystems: needs.filesystems.filter((f) => !probe.kernelHasFilesystem(f)),
        required: isRequired,
      }),
    );
  };
  for (const d of BACKENDS as readonly BackendDescriptor[]) {
    one(d.kind, needsOf(d), required.has(d.kind));
    for (const [key, values] of Object.entries(d.needs.options ?? {})) {
      for (const value of Object.keys(values ?? {})) {
        const label = `${d.kind}:${key}=${value}`;
        // Only what the option adds: the base needs have their own check.
        const added = values![value];
        one(label, added, required.has(label) || (required.has(d.kind) && d.options[key as 'fs']?.defaultValue === value));
      }
    }
  }
  return out;
}

/** Every attached loop device and its backing file, from /sys (no losetup needed). */
export function loopDevices(sysBlock = '/sys/block'): LoopDevice[] {
  const out: LoopDevice[] = [];
  let names: string[];
  try {
    names = readdirSync(sysBlock).filter((n) => /^loop\d+$/.test(n));
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const backingFile = readFileSync(join(sysBlock, n, 'loop', 'backing_file'), 'utf8').trim();
      if (backingFile) out.push({ device: `/dev/${n}`, backingFile });
    } catch {
      // not attached: no loop/backing_file
    }
  }
  return out;
}
