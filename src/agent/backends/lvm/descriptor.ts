import type { DatasetSpec, SizeRules } from '../backend';
import { defineBackend, type Zod } from '../descriptor';
import { MIN_IMAGE_BYTES } from '../loop/descriptor';

/** The filesystems a thin LV can hold (`-o fs=`). */
export const LVM_FILESYSTEMS = ['ext4', 'xfs'] as const;
export type LvmFilesystem = (typeof LVM_FILESYSTEMS)[number];

/** The LV's (virtual) size is the limit, so a volume needs one, at least its filesystem's minimum (as loop's). */
export const lvmSizeRules: SizeRules = {
  enforcesSize: true,
  requiresSize: true,
  minBytes: (spec: DatasetSpec) => MIN_IMAGE_BYTES[(spec.fs as LvmFilesystem | undefined) ?? 'ext4'] ?? MIN_IMAGE_BYTES.ext4,
};

/** LVM names: a VG or LV name is `[A-Za-z0-9+_.-]`, not starting with `-`. */
const lvmName = (z: Zod) => z.string().regex(/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/, 'an LVM name: letters, digits, + _ . -');

/** Thin LVs in a thin pool of an existing volume group (ferry never creates or removes volume groups). */
export const lvmBackend = defineBackend({
  kind: 'lvm',
  summary: 'a thin LV per volume (ext4 or xfs) in a thin pool of an existing LVM volume group (LV size is the limit)',
  configSchema: (z) =>
    z
      .object({
        /** The volume group; ferry never creates or removes it. */
        vg: lvmName(z),
        /** The thin pool in it. */
        pool: lvmName(z),
        /** Size of the thin pool when ferry makes it (lvcreate -L, or -l with a %: "90%FREE"); absent: never make it. */
        createPool: z.string().regex(/^(\d+[bBkKmMgGtT]?|\d{1,3}%(FREE|VG))$/, 'a size (512M, 20G) or a share ("90%FREE")').optional(),
      })
      .strict(),
  configDefaults: () => ({ vg: 'ferry', pool: 'ferry_pool' }),
  options: { fs: { values: LVM_FILESYSTEMS, defaultValue: 'ext4' } },
  sizeRules: lvmSizeRules,
  abilities: ['snapshots', 'clones', 'streams', 'usage'],
  needs: {
    // lvm2's commands (device-mapper itself, a kernel module, init checks and names when missing).
    base: { tools: ['lvm', 'lvs', 'vgs', 'lvcreate', 'lvchange', 'lvremove', 'lvrename', 'mount', 'umount', 'sync'], filesystems: [] },
    options: { fs: { ext4: { tools: ['mkfs.ext4'], filesystems: ['ext4'] }, xfs: { tools: ['mkfs.xfs'], filesystems: ['xfs'] } } },
  },
  async create(c, runner, log) {
    const { LvmBackend } = await import('./index');
    return new LvmBackend(c, runner, log);
  },
});
