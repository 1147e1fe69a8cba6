import { join } from 'node:path';
import { parseSize } from '../../../volume/size';
import type { SizeRules } from '../backend';
import { defineBackend } from '../descriptor';

/** zfs volumes get a refquota; below 16 MiB a filesystem's own metadata leaves little room. */
export const zfsSizeRules: SizeRules = { enforcesSize: true, requiresSize: false, minBytes: () => 16 * 1024 * 1024 };

/** ZFS pool names: a letter, then letters, digits and `_-.:` (zpool(8)). */
const POOL_NAME = /^[A-Za-z][A-Za-z0-9_.:-]*$/;

/** Filesystems `POOL/ferry/NAME` in a ZFS pool: refquota limits, native snapshots, `zfs send -i` increments. */
export const zfsBackend = defineBackend({
  kind: 'zfs',
  summary: 'filesystems in a ZFS pool, OpenZFS or zfs-fuse (refquota size limit, native snapshots and clones, zfs send -i)',
  configSchema: (z) =>
    z
      .object({
        /** An existing, imported pool to use; ferry never makes, imports or destroys it. Absent: ferry's own pool on a file. */
        pool: z.string().regex(POOL_NAME).optional(),
        /** The name of the pool ferry makes on `poolFile` when `pool` is absent (pool names are global to a host). */
        poolName: z.string().regex(POOL_NAME),
        /** The sparse file that pool lives on. */
        poolFile: z.string().startsWith('/'),
        /** Its size (sparse: it takes host disk only as data is written). */
        poolSize: z.string(),
        /** Scratch space on the host: a received stream waits here, checked whole, before `zfs receive` reads it; a rollback to an older snapshot mounts here. */
        workDir: z.string().startsWith('/'),
      })
      .strict(),
  configDefaults: (dataDir: string) => ({
    poolName: 'ferry',
    poolFile: join(dataDir, 'zfs', 'pool.img'),
    poolSize: '32G',
    workDir: join(dataDir, 'zfs', 'work'),
  }),
  options: {},
  sizeRules: zfsSizeRules,
  // rsync rolls back to an older snapshot while keeping the newer ones; truncate makes ferry's pool file.
  // The kernel module (OpenZFS) or the zfs-fuse daemon is checked at init: the pool must answer.
  needs: { base: { tools: ['zfs', 'zpool', 'rsync', 'truncate'], filesystems: [] } },
  abilities: ['snapshots', 'clones', 'streams', 'usage'],
  async create(c, runner, log) {
    const { ZfsBackend } = await import('./index');
    const poolSizeBytes = parseSize(c.poolSize, 'zfs.poolSize');
    return new ZfsBackend({ pool: c.pool, poolName: c.poolName, poolFile: c.poolFile, poolSizeBytes, workDir: c.workDir }, runner, log);
  },
});
