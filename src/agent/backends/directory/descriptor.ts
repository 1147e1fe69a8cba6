import { join } from 'node:path';
import type { SizeRules } from '../backend';
import { defineBackend } from '../descriptor';

/** A plain directory has no limit to enforce: a size option is refused rather than ignored. */
export const directorySizeRules: SizeRules = { enforcesSize: false, requiresSize: false, minBytes: () => 0 };

/** Plain directories, bind-mounted: no size limit, copies for snapshots, file-level deltas. */
export const directoryBackend = defineBackend({
  kind: 'directory',
  summary: 'a plain directory per volume, bind-mounted (no size limit)',
  configSchema: (z) => z.object({ dir: z.string().startsWith('/') }).strict(),
  configDefaults: (dataDir: string) => ({ dir: join(dataDir, 'directory') }),
  options: {},
  sizeRules: directorySizeRules,
  needs: { base: { tools: ['cp', 'du', 'mount', 'umount', 'sync'], filesystems: [] } },
  abilities: ['snapshots', 'clones', 'streams', 'usage'],
  async create(c, runner, log) {
    const { DirectoryBackend } = await import('./index');
    return new DirectoryBackend({ dir: c.dir }, runner, log);
  },
});
