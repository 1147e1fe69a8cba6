import type { MovableBackend } from '../src/agent/backends/backend';
import { lvmBackend } from '../src/agent/backends/lvm/descriptor';
import { ProcessRunner } from '../src/exec/runner';
import { silentLogger } from '../src/log';
import { missingNeeds } from '../test/contract/backend-contract';
import { LVM_NEEDS, makeTestVg, type TestVg } from '../test/support/lvm';
import { MiB } from './random-files';

const runner = new ProcessRunner(silentLogger());
const vgs: TestVg[] = [];

/**
 * The lvm backend in the backends bench (`--only backends`): a thin pool of 3 GiB in a test VG on
 * a loop device, per pool. It runs only where device-mapper is, so on this project's machines in
 * the VM: `sudo scripts/vm/lvm-tests.sh --bench`, where its figures are emulated (TCG) and compare
 * only with the other backends of the same run, in the same VM.
 */
export const lvmBenchBackend = {
  label: 'lvm ext4',
  missing: (): string[] => missingNeeds({ ...LVM_NEEDS, tools: [...LVM_NEEDS.tools, 'mkfs.ext4'] }),
  spec: { sizeBytes: 1536 * MiB, fs: 'ext4' },
  async make(dir: string): Promise<MovableBackend> {
    const tvg = makeTestVg(dir, 3500 * MiB);
    vgs.push(tvg);
    const b = await lvmBackend.create({ vg: tvg.vg, pool: 'pool', createPool: '3G' }, runner, silentLogger());
    await b.init();
    return b as MovableBackend;
  },
  cleanup: (): void => {
    for (const v of vgs.splice(0)) v.remove();
  },
};
