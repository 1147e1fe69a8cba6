/**
 * argv builders for the tools the lvm backend runs (lvm2 2.03, e2fsprogs 1.47, xfsprogs 6.1,
 * util-linux 2.38). Pure: they only build arrays; parsers live in parse.ts. Every report asks for
 * JSON in bytes without unit suffixes.
 */
import type { LvmFilesystem } from './descriptor';

/** Machine-readable reports: JSON, sizes in bytes, no "B" suffix. */
const REPORT = ['--reportformat', 'json', '--units', 'b', '--nosuffix'];

/** The LV columns ferry reads (parse.ts's LvRow). */
export const LV_COLUMNS = 'lv_name,lv_attr,lv_size,lv_tags,data_percent,metadata_percent,lv_when_full';

/** `lvm version`: exits 0 when the lvm2 tools are there (and says which). */
export function lvmVersion(): string[] {
  return ['lvm', 'version'];
}

/** Loads device-mapper's thin-pool target (and dm-mod with it) where the kernel has them as modules. */
export function loadThinPool(): string[] {
  return ['modprobe', 'dm-thin-pool'];
}

/** The volume group's size, free space and extent size. */
export function vgReport(vg: string): string[] {
  return ['vgs', ...REPORT, '-o', 'vg_name,vg_size,vg_free,vg_extent_size', vg];
}

/** Every LV of the volume group (ferry's are told apart by their tags). */
export function lvReport(vg: string): string[] {
  return ['lvs', ...REPORT, '-o', LV_COLUMNS, vg];
}

/** Makes the thin pool: `size` as a size ("20G": -L) or a share of the VG ("90%FREE": -l). */
export function createPool(vg: string, pool: string, size: string): string[] {
  // --yes: wipe a stale signature in the new LV without asking (there is nobody to ask).
  return ['lvcreate', '--yes', '--type', 'thin-pool', size.includes('%') ? '--extents' : '--size', size, '--name', pool, vg];
}

/** A full pool fails writes at once with EIO instead of queueing them for 60 s (lvcreate cannot set it). */
export function errorWhenFull(vg: string, pool: string): string[] {
  return ['lvchange', '--errorwhenfull', 'y', `${vg}/${pool}`];
}

/** Activates an LV, snapshots included (-K: ignore their activation-skip flag). Idempotent. */
export function activate(vg: string, lv: string): string[] {
  return ['lvchange', '--activate', 'y', '--ignoreactivationskip', `${vg}/${lv}`];
}

function tagArgs(tags: readonly string[]): string[] {
  return tags.flatMap((t) => ['--addtag', t]);
}

/** A new thin LV of `bytes` (a multiple of the extent size) in the pool, tagged, active. */
export function createThin(vg: string, pool: string, lv: string, bytes: number, tags: readonly string[]): string[] {
  return ['lvcreate', '--type', 'thin', '--thinpool', pool, '--virtualsize', `${bytes}b`, '--name', lv, ...tagArgs(tags), vg];
}

/**
 * A thin snapshot `lv` of `origin` (a thin LV or another thin snapshot), tagged. `skip`: flagged
 * to stay inactive at VG activation (what snapshots are); otherwise a volume, active now.
 * LVM suspends the origin for it, and the suspend freezes a filesystem mounted on it.
 */
export function snapshot(vg: string, origin: string, lv: string, tags: readonly string[], skip: boolean): string[] {
  return ['lvcreate', '--snapshot', '--name', lv, '--setactivationskip', skip ? 'y' : 'n', ...(skip ? [] : ['--activate', 'y', '--ignoreactivationskip']), ...tagArgs(tags), `${vg}/${origin}`];
}

/** Removes LVs (active ones are deactivated first; an open one fails). */
export function remove(vg: string, lvs: readonly string[]): string[] {
  return ['lvremove', '--yes', ...lvs.map((lv) => `${vg}/${lv}`)];
}

/** Renames LV `from` to `to` (one metadata commit). */
export function rename(vg: string, from: string, to: string): string[] {
  return ['lvrename', vg, from, to];
}

/** Formats the fresh thin LV `device` with `fs`. */
export function mkfs(fs: LvmFilesystem, device: string): string[] {
  if (fs === 'xfs') {
    // -K: no discard (a fresh thin LV has nothing mapped; discarding it only costs time).
    return ['mkfs.xfs', '-q', '-f', '-K', device];
  }
  return [
    'mkfs.ext4',
    '-q',
    '-b', '4096', // 4 KiB blocks even for small volumes
    '-m', '0', // no blocks reserved for root: a volume's whole size is the container's
    // A fresh thin LV reads as zeros: tables and journal need no writing, and no discard.
    '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
    device,
  ];
}

/**
 * Mounts the filesystem on `device` at `target`. discard: freed blocks go back to the thin pool.
 * nouuid (xfs): a clone or rolled-back volume shares its snapshot's UUID.
 */
export function mount(fs: LvmFilesystem, device: string, target: string, readOnly: boolean): string[] {
  const opts = ['discard', ...(fs === 'xfs' ? ['nouuid'] : []), ...(readOnly ? ['ro'] : [])];
  return ['mount', '-t', fs, '-o', opts.join(','), device, target];
}

/** Flushes the filesystem mounted at `mountPoint` (syncfs) while writes still flow. */
export function syncFilesystem(mountPoint: string): string[] {
  return ['sync', '--file-system', mountPoint];
}
