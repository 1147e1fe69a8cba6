import { join } from 'node:path';
import { parseSize } from '../../../volume/size';
import type { SizeRules } from '../backend';
import { defineBackend } from '../descriptor';

/** btrfs volumes get a qgroup limit; below 16 MiB a subvolume's own metadata does not fit. */
export const btrfsSizeRules: SizeRules = { enforcesSize: true, requiresSize: false, minBytes: () => 16 * 1024 * 1024 };

/** Subvolumes in a btrfs pool: qgroup limits, native snapshots, `btrfs send -p` increments. */
export const btrfsBackend = defineBackend({
  kind: 'btrfs',
  summary: 'subvolumes in a btrfs pool (qgroup size limit, native snapshots, incremental send)',
  configSchema: (z) =>
    z
      .object({
        /** An existing mounted btrfs filesystem to use as the pool; absent: ferry makes a loop-backed pool. */
        path: z.string().startsWith('/').optional(),
        /** The sparse pool file ferry makes when `path` is absent. */
        poolFile: z.string().startsWith('/'),
        /** Its size (sparse: it takes host disk only as data is written). */
        poolSize: z.string(),
        /** Where the pool is mounted when ferry makes it. */
        poolMount: z.string().startsWith('/'),
      })
      .strict(),
  configDefaults: (dataDir: string) => ({
    poolFile: join(dataDir, 'btrfs', 'pool.img'),
    poolSize: '32G',
    poolMount: join(dataDir, 'btrfs', 'pool'),
  }),
  options: {},
  sizeRules: btrfsSizeRules,
  // losetup and truncate make the loop-backed pool when no `path` is configured.
  needs: { base: { tools: ['btrfs', 'mkfs.btrfs', 'losetup', 'truncate', 'mount', 'umount'], filesystems: ['btrfs'] } },
  abilities: ['snapshots', 'clones', 'streams', 'usage'],
  async create(c, runner, log) {
    const { BtrfsBackend } = await import('./index');
    const poolSizeBytes = parseSize(c.poolSize, 'btrfs.poolSize');
    return new BtrfsBackend({ path: c.path, poolFile: c.poolFile, poolSizeBytes, poolMount: c.poolMount }, runner, log);
  },
});
