import { join } from 'node:path';
import { backendContract, type BackendFixture } from './backend-contract';
import { BtrfsBackend } from '../../src/agent/backends/btrfs';
import { LoopBackend } from '../../src/agent/backends/loop';
import { DirectoryBackend } from '../../src/agent/backends/directory';
import { ProcessRunner } from '../../src/exec/runner';
import { silentLogger } from '../../src/log';
import { makeLoopFs, requireRootAndTools } from '../support/host';

const MiB = 1024 * 1024;
const runner = new ProcessRunner(silentLogger());
const log = silentLogger();

before(function () {
  requireRootAndTools('btrfs', 'mkfs.btrfs', 'mkfs.ext4', 'mkfs.xfs', 'losetup', 'fsfreeze');
});

const fixtures: BackendFixture[] = [
  {
    label: 'btrfs',
    spec: { sizeBytes: 64 * MiB },
    async make(dir) {
      const poolMount = join(dir, 'pool');
      const backend = new BtrfsBackend({ poolFile: join(dir, 'pool.img'), poolSizeBytes: 512 * MiB, poolMount }, runner, log);
      await backend.init();
      return { backend, fillPath: join(poolMount, 'filler') };
    },
  },
  ...(['ext4', 'xfs'] as const).map(
    (fs): BackendFixture => ({
      label: `loop ${fs}`,
      spec: { fs, sizeBytes: fs === 'xfs' ? 300 * MiB : 64 * MiB },
      async make(dir) {
        // The images live on a small xfs (reflinks) for the xfs case, ext4 (plain copies) for ext4.
        const fsRoot = join(dir, 'fs');
        makeLoopFs(join(dir + '.img'), fsRoot, 1536 * MiB, fs);
        const backend = new LoopBackend({ dir: join(fsRoot, 'loop') }, runner, log);
        await backend.init();
        return { backend, fillPath: join(fsRoot, 'filler') };
      },
    }),
  ),
  {
    label: 'directory',
    spec: {},
    async make(dir) {
      const fsRoot = join(dir, 'fs');
      makeLoopFs(join(dir + '.img'), fsRoot, 256 * MiB, 'ext4');
      const backend = new DirectoryBackend({ dir: join(fsRoot, 'directory') }, runner, log);
      await backend.init();
      return { backend, fillPath: join(fsRoot, 'filler') };
    },
  },
];

for (const fx of fixtures) backendContract(fx);
