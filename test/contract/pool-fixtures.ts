import { join } from 'node:path';
import type { CloneCapable, DatasetSpec, MovableBackend } from '../../src/agent/backends/backend';
import { BtrfsBackend } from '../../src/agent/backends/btrfs';
import { DirectoryBackend } from '../../src/agent/backends/directory';
import { LoopBackend } from '../../src/agent/backends/loop';
import { LvmBackend } from '../../src/agent/backends/lvm';
import { ZfsBackend } from '../../src/agent/backends/zfs';
import { ProcessRunner } from '../../src/exec/runner';
import { silentLogger } from '../../src/log';
import { makeLoopFs } from '../support/host';
import { LVM_NEEDS, makeTestVg, type TestVg } from '../support/lvm';
import { missingNeeds } from './backend-contract';
import { destroyPools, poolFileIn, testPoolName, zfsMissing } from '../support/zfs';

/*
 * One pool per host for the tests that move data between two hosts (move-snapshots, snapshot-chain):
 * every backend, each with the size spec its volumes are made with.
 */

const MiB = 1024 * 1024;
const runner = new ProcessRunner(silentLogger());
const log = silentLogger();

/** A fresh pool of one backend kind in `dir` (one per host). */
export interface PoolFixture {
  label: string;
  kind: 'btrfs' | 'loop' | 'directory' | 'zfs' | 'lvm';
  spec: DatasetSpec;
  /** What this machine lacks for it beyond the common tools, in words; [] when it can run. */
  missing?(): string[];
  make(dir: string): Promise<MovableBackend & CloneCapable>;
  /** Removes what make() made outside `dir` (ZFS pools live in a daemon); before `dir` goes. */
  cleanup?(): void;
}

const zfsPools: string[] = [];

export const fixtures: PoolFixture[] = [
  {
    label: 'btrfs',
    kind: 'btrfs',
    spec: { sizeBytes: 64 * MiB },
    async make(dir) {
      const b = new BtrfsBackend({ poolFile: join(dir, 'pool.img'), poolSizeBytes: 512 * MiB, poolMount: join(dir, 'pool') }, runner, log);
      await b.init();
      return b;
    },
  },
  ...(['ext4', 'xfs'] as const).map(
    (fs): PoolFixture => ({
      label: `loop ${fs}`,
      kind: 'loop',
      spec: { fs, sizeBytes: fs === 'xfs' ? 300 * MiB : 64 * MiB },
      async make(dir) {
        makeLoopFs(join(dir + '.img'), join(dir, 'fs'), 1536 * MiB, fs);
        const b = new LoopBackend({ dir: join(dir, 'fs', 'loop') }, runner, log);
        await b.init();
        return b;
      },
    }),
  ),
  {
    label: 'directory',
    kind: 'directory',
    spec: {},
    async make(dir) {
      makeLoopFs(join(dir + '.img'), join(dir, 'fs'), 256 * MiB, 'ext4');
      const b = new DirectoryBackend({ dir: join(dir, 'fs', 'directory') }, runner, log);
      await b.init();
      return b;
    },
  },
  {
    label: 'zfs',
    kind: 'zfs',
    spec: { sizeBytes: 64 * MiB },
    missing: zfsMissing,
    async make(dir) {
      const pool = testPoolName();
      zfsPools.push(pool);
      const b = new ZfsBackend({ poolName: pool, poolFile: poolFileIn(dir, pool), poolSizeBytes: 256 * MiB, workDir: join(dir, 'work') }, runner, log);
      await b.init();
      return b;
    },
    cleanup: () => destroyPools(zfsPools.splice(0)),
  },
  {
    // Runs where device-mapper thin pools are: in the VM of scripts/vm/lvm-tests.sh.
    label: 'lvm',
    kind: 'lvm',
    spec: { fs: 'ext4', sizeBytes: 64 * MiB },
    missing: () => missingNeeds({ ...LVM_NEEDS, tools: [...LVM_NEEDS.tools, 'mkfs.ext4'] }),
    async make(dir) {
      const tvg = makeTestVg(dir, 512 * MiB);
      testVgs.push(tvg);
      const b = new LvmBackend({ vg: tvg.vg, pool: 'pool', createPool: '256M' }, runner, log);
      await b.init();
      return b;
    },
    cleanup: () => {
      for (const v of testVgs.splice(0)) v.remove();
    },
  },
];

/** Volume groups the lvm fixture made, removed after each suite. */
const testVgs: TestVg[] = [];

