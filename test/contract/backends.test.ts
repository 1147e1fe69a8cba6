import { join } from 'node:path';
import { backendContract, type BackendFixture } from './backend-contract';
import { BACKENDS, type BackendKind } from '../../src/agent/backends/registry';
import { btrfsBackend } from '../../src/agent/backends/btrfs/descriptor';
import { directoryBackend } from '../../src/agent/backends/directory/descriptor';
import { loopBackend } from '../../src/agent/backends/loop/descriptor';
import { lvmBackend } from '../../src/agent/backends/lvm/descriptor';
import { ProcessRunner } from '../../src/exec/runner';
import { silentLogger } from '../../src/log';
import { makeLoopFs } from '../support/host';
import { LVM_NEEDS, fillThinPool, makeTestVg } from '../support/lvm';

const MiB = 1024 * 1024;
const runner = new ProcessRunner(silentLogger());
const log = silentLogger();

/**
 * One or more fixtures per registered backend, each made through its descriptor's factory from a
 * config section in a temp dir. The type makes a newly registered backend without a fixture a
 * compile error.
 */
const fixtures: { [K in BackendKind]: BackendFixture[] } = {
  btrfs: [
    {
      label: 'btrfs',
      kind: 'btrfs',
      needs: { tools: ['btrfs', 'mkfs.btrfs', 'losetup'], filesystems: ['btrfs'] },
      spec: { sizeBytes: 64 * MiB },
      async make(dir) {
        const poolMount = join(dir, 'pool');
        const backend = await btrfsBackend.create({ poolFile: join(dir, 'pool.img'), poolSize: '512M', poolMount }, runner, log);
        await backend.init();
        return { backend, fillPath: join(poolMount, 'filler') };
      },
    },
  ],
  loop: (['ext4', 'xfs'] as const).map(
    (fs): BackendFixture => ({
      label: `loop ${fs}`,
      kind: 'loop',
      // The images live on a small xfs (reflinks) for the xfs case, ext4 (plain copies) for ext4.
      needs: { tools: [`mkfs.${fs}`, 'losetup', 'fsfreeze', 'cp'], filesystems: [fs] },
      spec: { fs, sizeBytes: fs === 'xfs' ? 300 * MiB : 64 * MiB },
      async make(dir) {
        const fsRoot = join(dir, 'fs');
        makeLoopFs(join(dir + '.img'), fsRoot, 1536 * MiB, fs);
        const backend = await loopBackend.create({ dir: join(fsRoot, 'loop') }, runner, log);
        await backend.init();
        return { backend, fillPath: join(fsRoot, 'filler') };
      },
    }),
  ),
  directory: [
    {
      label: 'directory',
      kind: 'directory',
      needs: { tools: ['mkfs.ext4', 'cp', 'du'], filesystems: ['ext4'] },
      spec: {},
      async make(dir) {
        const fsRoot = join(dir, 'fs');
        makeLoopFs(join(dir + '.img'), fsRoot, 256 * MiB, 'ext4');
        const backend = await directoryBackend.create({ dir: join(fsRoot, 'directory') }, runner, log);
        await backend.init();
        return { backend, fillPath: join(fsRoot, 'filler') };
      },
    },
  ],
  // Device-mapper thin pools: on a host without them (this project's CI kernel) these skip, and
  // test/vm/lvm.test.ts runs them in a VM (scripts/vm/lvm-tests.sh).
  lvm: (['ext4', 'xfs'] as const).map(
    (fs): BackendFixture => ({
      label: `lvm ${fs}`,
      kind: 'lvm',
      needs: { ...LVM_NEEDS, tools: [...LVM_NEEDS.tools, `mkfs.${fs}`] },
      spec: { fs, sizeBytes: fs === 'xfs' ? 300 * MiB : 64 * MiB },
      async make(dir) {
        const tvg = makeTestVg(dir, 1024 * MiB);
        const pool = 'pool';
        try {
          const backend = await lvmBackend.create({ vg: tvg.vg, pool, createPool: fs === 'xfs' ? '700M' : '256M' }, runner, log);
          await backend.init();
          return {
            backend,
            fillPath: dir,
            fill: async () => {
              const free = fillThinPool(tvg.vg, pool, 2048 * MiB);
              return async () => free();
            },
            cleanup: async () => tvg.remove(),
          };
        } catch (err) {
          tvg.remove();
          throw err;
        }
      },
    }),
  ),
};

for (const d of BACKENDS) for (const fx of fixtures[d.kind]) backendContract(fx);
