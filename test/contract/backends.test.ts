import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { backendContract, type BackendFixture } from './backend-contract';
import { BACKENDS, type BackendKind } from '../../src/agent/backends/registry';
import { btrfsBackend } from '../../src/agent/backends/btrfs/descriptor';
import { directoryBackend } from '../../src/agent/backends/directory/descriptor';
import { loopBackend } from '../../src/agent/backends/loop/descriptor';
import { lvmBackend } from '../../src/agent/backends/lvm/descriptor';
import { zfsBackend } from '../../src/agent/backends/zfs/descriptor';
import { needsOf, type BackendNeeds } from '../../src/agent/backends/descriptor';
import { ProcessRunner } from '../../src/exec/runner';
import { silentLogger } from '../../src/log';
import { makeLoopFs, sh } from '../support/host';
import { destroyPools, poolFileIn, testPoolName, zfsMissing } from '../support/zfs';
import { LVM_NEEDS, fillThinPool, makeTestVg } from '../support/lvm';

const MiB = 1024 * 1024;
const runner = new ProcessRunner(silentLogger());
const log = silentLogger();

/** A backend's needs plus what the test itself uses (to make the filesystem its pool lives on). */
function withNeeds(a: BackendNeeds, b: BackendNeeds): BackendNeeds {
  return { tools: [...new Set([...a.tools, ...b.tools])], filesystems: [...new Set([...a.filesystems, ...b.filesystems])] };
}

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
      needs: needsOf(btrfsBackend),
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
      needs: needsOf(loopBackend, { fs }),
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
      // The test's own: the directories live on a small ext4 it makes.
      needs: withNeeds(needsOf(directoryBackend), { tools: ['mkfs.ext4'], filesystems: ['ext4'] }),
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
  zfs: [zfsFixture()],
  // Device-mapper thin pools: on a host without them (this project's CI kernel) these skip, and
  // test/vm/lvm.test.ts runs them in a VM (scripts/vm/lvm-tests.sh).
  lvm: (['ext4', 'xfs'] as const).map(
    (fs): BackendFixture => ({
      label: `lvm ${fs}`,
      kind: 'lvm',
      needs: { ...withNeeds(needsOf(lvmBackend, { fs }), LVM_NEEDS), modules: LVM_NEEDS.modules },
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

/**
 * zfs on a pool of its own per make() (zfs-fuse here, OpenZFS in the VM), on a sparse file in the
 * temp dir (or FERRY_ZFS_POOL_DIR). The pool's root filesystem is mounted in the dir: the filler.
 */
function zfsFixture(): BackendFixture {
  const pools = new Map<string, string[]>();
  return {
    label: 'zfs',
    kind: 'zfs',
    needs: { ...needsOf(zfsBackend), check: zfsMissing },
    spec: { sizeBytes: 64 * MiB },
    async make(dir) {
      const pool = testPoolName();
      const top = dir.slice(0, dir.lastIndexOf('/'));
      pools.set(top, [...(pools.get(top) ?? []), pool]);
      const poolFile = poolFileIn(dir, pool);
      // Made here, with its root filesystem mounted in the dir (the filler), and found by init() as
      // ferry's own (same name, same file); ferry making its pool at the first Create is covered by
      // the move-snapshots and cluster tests.
      mkdirSync(dirname(poolFile), { recursive: true });
      sh(['truncate', '-s', String(256 * MiB), poolFile]);
      sh(['zpool', 'create', '-o', 'cachefile=none', '-m', join(dir, 'root'), pool, poolFile]);
      const section = { poolName: pool, poolFile, poolSize: '256M', workDir: join(dir, 'work') };
      const backend = await zfsBackend.create(section, runner, log);
      await backend.init();
      return { backend, fillPath: join(dir, 'root', 'filler') };
    },
    cleanup(top) {
      destroyPools(pools.get(top) ?? []);
      pools.delete(top);
    },
  };
}

for (const d of BACKENDS) for (const fx of fixtures[d.kind]) backendContract(fx);
