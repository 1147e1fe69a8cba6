import { join } from 'node:path';
import type { DatasetSpec, SizeRules } from '../backend';
import { defineBackend } from '../descriptor';

const MiB = 1024 * 1024;

/** The filesystems a loop image can hold (`-o fs=`). */
export const LOOP_FILESYSTEMS = ['ext4', 'xfs'] as const;
export type LoopFilesystem = (typeof LOOP_FILESYSTEMS)[number];

/** Smallest image per filesystem: mkfs.xfs refuses below 300 MiB; ext4 is usable from 8 MiB. */
export const MIN_IMAGE_BYTES: Record<LoopFilesystem, number> = { ext4: 8 * MiB, xfs: 300 * MiB };

/** The image size is the limit, so a loop volume needs one, at least its filesystem's minimum. */
export const loopSizeRules: SizeRules = {
  enforcesSize: true,
  requiresSize: true,
  minBytes: (spec: DatasetSpec) => MIN_IMAGE_BYTES[(spec.fs as LoopFilesystem | undefined) ?? 'ext4'] ?? MIN_IMAGE_BYTES.ext4,
};

/** Sparse image files holding ext4 or xfs, loop-mounted: the image size is the hard limit. */
export const loopBackend = defineBackend({
  kind: 'loop',
  summary: 'a sparse ext4 or xfs image per volume, loop-mounted (image size is the limit)',
  configSchema: (z) => z.object({ dir: z.string().startsWith('/') }).strict(),
  configDefaults: (dataDir: string) => ({ dir: join(dataDir, 'loop') }),
  options: { fs: { values: LOOP_FILESYSTEMS, defaultValue: 'ext4' } },
  sizeRules: loopSizeRules,
  needs: {
    // fsfreeze and cp take snapshots; filefrag finds the ranges worth comparing for a stream.
    base: { tools: ['losetup', 'mount', 'umount', 'fsfreeze', 'cp', 'filefrag', 'sync'], filesystems: [] },
    options: { fs: { ext4: { tools: ['mkfs.ext4'], filesystems: ['ext4'] }, xfs: { tools: ['mkfs.xfs', 'xfs_admin'], filesystems: ['xfs'] } } },
  },
  abilities: ['snapshots', 'clones', 'streams', 'usage'],
  async create(c, runner, log) {
    const { LoopBackend } = await import('./index');
    return new LoopBackend({ dir: c.dir }, runner, log);
  },
});
