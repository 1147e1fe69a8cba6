import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './host';

/**
 * lvm.conf for a machine without udev (the test VM): lvm2 makes the /dev nodes itself, scans /dev
 * without a devices file, and starts no dmeventd monitoring. scripts/vm/lvm-tests.sh writes it.
 */
export const LVM_CONF_NO_UDEV = `devices { obtain_device_list_from_udev = 0 use_devicesfile = 0 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
`;

/** What the lvm backend's tests need of a machine. */
export const LVM_NEEDS = { tools: ['lvm', 'vgcreate', 'losetup'], filesystems: [] as string[], modules: ['dm_thin_pool'] };

/** A volume group on a loop device over a sparse file, for one test. */
export interface TestVg {
  vg: string;
  device: string;
  /** Removes the VG (its LVs with it), the PV label and the loop device. */
  remove(): void;
}

let counter = 0;

/** Makes volume group `ferrytest_<pid>_<n>` on a sparse file of `sizeBytes` in `dir`. */
export function makeTestVg(dir: string, sizeBytes: number): TestVg {
  mkdirSync(dir, { recursive: true });
  const image = join(dir, 'pv.img');
  sh(['truncate', '-s', String(sizeBytes), image]);
  const device = sh(['losetup', '--find', '--show', image]).trim();
  const vg = `ferrytest_${process.pid}_${++counter}`;
  sh(['vgcreate', '--quiet', vg, device]);
  return {
    vg,
    device,
    remove() {
      spawnSync('vgremove', ['--force', '--force', '--yes', vg], { stdio: 'ignore' });
      spawnSync('pvremove', ['--force', '--yes', device], { stdio: 'ignore' });
      spawnSync('losetup', ['--detach', device], { stdio: 'ignore' });
    },
  };
}

/**
 * Fills thin pool `vg/pool`: a thin LV bigger than the pool, written through its block device
 * until the full pool fails the write (errorwhenfull). Returns how to free it (the LV removed).
 */
export function fillThinPool(vg: string, pool: string, sizeBytes: number): () => void {
  sh(['lvcreate', '--quiet', '--type', 'thin', '--thinpool', pool, '--virtualsize', `${sizeBytes}b`, '--name', 'filler', vg]);
  const dev = `/dev/mapper/${vg.replace(/-/g, '--')}-filler`;
  spawnSync('dd', ['if=/dev/zero', `of=${dev}`, 'bs=1M', 'oflag=direct', 'status=none'], { stdio: 'ignore' });
  return () => {
    sh(['lvremove', '--quiet', '--yes', `${vg}/filler`]);
  };
}
