import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupDir, makeTempDir } from '../support/host';

const REPO = join(__dirname, '..', '..', '..');
/** The VM's run, boot to power-off: the lvm ext4 contract suites take about 12 minutes under TCG on an idle 2-core machine. */
const VM_TIMEOUT_MS = 40 * 60 * 1000;

/** The failures mocha printed inside the VM: the numbered blocks after "N failing". */
export function innerFailures(output: string): string[] {
  const at = output.search(/^\s*\d+ failing/m);
  if (at < 0) return [];
  return output
    .slice(at)
    .split(/\n(?=\s*\d+\) )/)
    .slice(1)
    .map((b) => b.trim().split('\n').slice(0, 6).join('\n'));
}

/**
 * This host's kernel has no device-mapper, so the lvm backend's contract suites run in a QEMU VM
 * (scripts/vm/lvm-tests.sh). This test runs that script and fails with the VM's failures listed.
 */
describe('lvm backend in a VM (scripts/vm/lvm-tests.sh)', function () {
  this.timeout(VM_TIMEOUT_MS + 60_000);
  let dir: string;

  before(function () {
    if (process.env.FERRY_IN_VM) this.skip(); // no VM inside the VM
    const missing = ['qemu-system-x86_64', 'apt-get', 'dpkg-deb', 'depmod', 'busybox'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
    if (missing.length > 0) {
      console.log(`    SKIPPED lvm backend in a VM: this machine lacks ${missing.join(', ')} (scripts/install-deps.sh installs qemu-system-x86)`);
      this.skip();
    }
    dir = makeTempDir('lvm-vm');
  });
  after(function () {
    if (dir) cleanupDir(dir);
  });

  it('passes the lvm ext4 contract suite (every ability) and the move-snapshot contract inside the VM', async function () {
    const out = join(dir, 'out');
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('scripts/vm/lvm-tests.sh', ['--out', out], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
      const timer = setTimeout(() => child.kill('SIGTERM'), VM_TIMEOUT_MS);
      child.on('error', reject);
      child.on('close', (c) => {
        clearTimeout(timer);
        if (c === 124 || c === 125) reject(new Error(`the VM did not run the tests (exit ${c}): ${stderr}`));
        else resolve(c ?? -1);
      });
    });
    const output = readFileSync(join(out, 'output.log'), 'utf8');
    const failures = innerFailures(output);
    expect(failures, `failures inside the VM:\n${failures.join('\n\n')}`).to.deep.equal([]);
    expect(output, 'the lvm suites were skipped inside the VM').not.to.match(/SKIPPED.*lvm/);
    const passing = Number(/(\d+) passing/.exec(output)?.[1] ?? 0);
    expect(passing, 'tests that passed inside the VM').to.be.at.least(21);
    expect(code, `mocha's exit code inside the VM; output in ${out}`).to.equal(0);
  });
});
