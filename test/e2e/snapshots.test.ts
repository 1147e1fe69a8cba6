import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, removeE2eLeftovers, requireDockerd, TEST_IMAGE, waitFor, E2E_DRIVER, E2E_PLUGIN_SOCKET } from '../support/docker';
import { snapshotListShape } from '../../src/wire/shapes';
import { FerryProcess, REPO_ROOT } from './ferry-process';

const [DRIVER, PLUGIN_SOCKET] = [E2E_DRIVER, E2E_PLUGIN_SOCKET];

function run(volumeArgs: string[], script: string): ReturnType<typeof docker> {
  return docker(['run', '--rm', '--label', E2E_LABEL, ...volumeArgs, TEST_IMAGE, 'sh', '-c', script]);
}

/*
 * snap (issue 7 item 1) on a real dockerd: a user's snapshot, writes after it, rollback, a new
 * volume from the snapshot with Docker alone (-o from=), and docker volume inspect's Status.
 */
describe('end to end on a real dockerd: snapshots, rollback, clones', function () {
  let dir: string;
  let ferry: FerryProcess;
  const inspect = (name: string): { Status: Record<string, unknown> } => JSON.parse(dockerOk(['volume', 'inspect', name]))[0];
  const snapshots = (volume: string) => {
    const r = ferry.cli(['snapshot', 'ls', volume, '--json']);
    expect(r.code, r.stderr).to.equal(0);
    return snapshotListShape.parse(JSON.parse(r.stdout));
  };

  before(async function () {
    requireRootAndTools('docker', 'btrfs');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('e2e-snap');
    ferry = new FerryProcess(dir, PLUGIN_SOCKET);
    await ferry.start();
    removeE2eLeftovers(DRIVER);
  });
  after(async function () {
    if (ferry) {
      removeE2eLeftovers(DRIVER);
      await ferry.kill('SIGTERM');
    }
    if (dir) cleanupDir(dir);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) {
      console.log(`--- ferry log tail (${ferry.logFile}) ---\n${readFileSync(ferry.logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
    }
  });

  for (const backend of ['btrfs', 'loop', 'directory']) {
    it(`${backend}: snapshot, write, rollback; a clone with -o from=; inspect Status counts them`, async function () {
      const vol = `snapvol-${backend}`;
      const opts = backend === 'directory' ? ['-o', 'backend=directory'] : ['-o', `backend=${backend}`, '-o', 'size=64M'];
      dockerOk(['volume', 'create', '-d', DRIVER, ...opts, vol]);
      expect(inspect(vol).Status).to.deep.include({ snapshots: 0, newestSnapshot: null });
      expect(run(['-v', `${vol}:/data`], 'echo one > /data/f && sync').code).to.equal(0);

      const made = ferry.cli(['snapshot', 'create', vol, 'before']);
      expect(made.code, made.stderr).to.equal(0);
      expect(made.stdout.trim()).to.equal('before');
      const auto = ferry.cli(['snapshot', 'create', vol]);
      expect(auto.stdout.trim(), auto.stderr).to.match(/^\d{8}T\d{6}Z$/);
      expect(run(['-v', `${vol}:/data`], 'echo two > /data/f && echo extra > /data/g && sync').code).to.equal(0);

      const list = snapshots(vol);
      expect(list.map((s) => [s.name, s.origin, s.hosts])).to.deep.equal([
        ['before', 'manual', ['e2e']],
        [auto.stdout.trim(), 'manual', ['e2e']],
      ]);
      const status = inspect(vol).Status;
      expect(status).to.deep.include({ snapshots: 2, newestSnapshot: auto.stdout.trim() });
      expect(ferry.cli(['snapshot', 'ls']).stdout).to.match(new RegExp(`${vol}\\s+before\\s+\\S+Z\\s+e2e\\s+\\S+.*\\s+manual`));

      // Rollback: refused while a container has it mounted, saying where and naming the container
      // (looked up from dockerd shortly after its Mount), then back to "one".
      dockerOk(['run', '-d', '--name', `holder-${backend}`, '--label', E2E_LABEL, '-v', `${vol}:/data`, TEST_IMAGE, 'sleep', '600']);
      try {
        let refused = ferry.cli(['volume', 'rollback', vol, 'before']);
        expect(refused.code).to.equal(4);
        expect(refused.stderr).to.match(new RegExp(`volume ${vol} is in use: mounted on host e2e at .* by 1 container mount.*docker ps --filter volume=${vol}`));
        await waitFor('the refusal to name the container', () => {
          refused = ferry.cli(['volume', 'rollback', vol, 'before']);
          return refused.code === 4 && refused.stderr.includes(`(containers: holder-${backend})`);
        }, 30_000, 500);
      } finally {
        dockerOk(['rm', '-f', `holder-${backend}`]);
      }
      const rb = ferry.cli(['volume', 'rollback', vol, 'before']);
      expect(rb.code, rb.stderr).to.equal(0);
      const after = run(['-v', `${vol}:/data`], 'cat /data/f; ls /data | grep -v lost+found');
      expect(after.stdout.split('\n')).to.deep.equal(['one', 'f']);
      // Every snapshot stays: forward again to the newer one.
      expect(ferry.cli(['volume', 'rollback', vol, auto.stdout.trim()]).code).to.equal(0);
      expect(run(['-v', `${vol}:/data`], 'cat /data/f').stdout).to.equal('one');

      // A new volume from the snapshot with Docker alone; the source is untouched by what the clone does.
      const clone = `${vol}-clone`;
      dockerOk(['volume', 'create', '-d', DRIVER, '-o', `from=${vol}@before`, clone]);
      expect(run(['-v', `${clone}:/data`], 'cat /data/f && echo changed > /data/f').stdout).to.equal('one');
      expect(run(['-v', `${vol}:/data`], 'cat /data/f').stdout).to.equal('one');
      expect(inspect(clone).Status).to.deep.include({ backend, snapshots: 0 });
      const unknown = docker(['volume', 'create', '-d', DRIVER, '-o', `from=${vol}@nope`, `${vol}-x`]);
      expect(unknown.stderr).to.match(new RegExp(`${vol} has no snapshot nope`));
      const noVol = docker(['volume', 'create', '-d', DRIVER, '-o', 'from=absent@before', `${vol}-y`]);
      expect(noVol.stderr).to.match(/volume absent does not exist/);

      // Users remove what they took; the count follows.
      const rm = ferry.cli(['snapshot', 'rm', vol, 'before']);
      expect(rm.code, rm.stderr).to.equal(0);
      expect(snapshots(vol).map((s) => s.name)).to.deep.equal([auto.stdout.trim()]);
      expect(inspect(vol).Status).to.deep.include({ snapshots: 1 });
      expect(ferry.cli(['snapshot', 'rm', vol, 'before']).code).to.equal(3);
      dockerOk(['volume', 'rm', clone]);
      dockerOk(['volume', 'rm', vol]);
    });
  }

  it('refuses a snapshot name a move uses, and names the owner of one it did not take', function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'names']);
    const bad = ferry.cli(['snapshot', 'create', 'names', 'm1-final']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/one that moves use/);
    const none = ferry.cli(['snapshot', 'create', 'nosuch']);
    expect(none.code).to.equal(3);
    dockerOk(['volume', 'rm', 'names']);
  });
});
