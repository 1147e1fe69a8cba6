import { expect } from 'chai';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMountPoint } from '../../src/agent/mount-table';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, removeE2eLeftovers, requireDockerd, restartDockerd, TEST_IMAGE, waitFor, E2E_DRIVER, E2E_PLUGIN_SOCKET } from '../support/docker';
import { FerryProcess, REPO_ROOT } from './ferry-process';

const [DRIVER, PLUGIN_SOCKET] = [E2E_DRIVER, E2E_PLUGIN_SOCKET];

function run(volumeArgs: string[], script: string): ReturnType<typeof docker> {
  return docker(['run', '--rm', '--label', E2E_LABEL, ...volumeArgs, TEST_IMAGE, 'sh', '-c', script]);
}

describe('end to end on a real dockerd', function () {
  let dir: string;
  let ferry: FerryProcess;
  const mountpoint = (name: string): string => join(ferry.dataDir, 'mounts', name);
  const inspect = (name: string): Record<string, unknown> => JSON.parse(dockerOk(['volume', 'inspect', name]))[0];

  before(async function () {
    requireRootAndTools('docker', 'btrfs');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('e2e');
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

  it('creates a sized volume; what one container writes another reads', function () {
    expect(dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'shared'])).to.equal('shared');
    const w = run(['-v', 'shared:/data'], 'echo hello-from-a > /data/msg && seq 1 10000 > /data/numbers && sync');
    expect(w.code, w.stderr).to.equal(0);
    const r = run(['-v', 'shared:/data'], 'cat /data/msg && wc -l < /data/numbers');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.split('\n')).to.deep.equal(['hello-from-a', '10000']);
    expect(isMountPoint(mountpoint('shared')), 'unmounted once no container uses it').to.equal(false);
  });

  it('fails writes past the size inside the container and breaks nothing else', function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'small']);
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'backend=loop', '-o', 'size=64M', 'smallloop']);
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'neighbour']);
    // btrfs enforces size with a quota group: the kernel answers EDQUOT ("Disk quota exceeded").
    const b = run(['-v', 'small:/data'], 'dd if=/dev/zero of=/data/big bs=1M count=100');
    expect(b.code).to.not.equal(0);
    expect(b.stderr).to.match(/Disk quota exceeded|No space left on device/);
    // A loop image's filesystem is full: ENOSPC.
    const l = run(['-v', 'smallloop:/data'], 'dd if=/dev/zero of=/data/big bs=1M count=100');
    expect(l.code).to.not.equal(0);
    expect(l.stderr).to.match(/No space left on device/);
    // The volume works again once space is freed, and its neighbour never noticed.
    const again = run(['-v', 'small:/data'], 'rm /data/big && echo ok > /data/after && cat /data/after');
    expect(again.stdout, again.stderr).to.equal('ok');
    const n = run(['-v', 'neighbour:/data'], 'dd if=/dev/zero of=/data/f bs=1M count=8 2>/dev/null && echo fine');
    expect(n.stdout).to.equal('fine');
  });

  it('lists, inspects with Status, and removes; refuses to remove a volume in use, saying where', function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=32M', 'listed']);
    const ls = dockerOk(['volume', 'ls', '--filter', `driver=${DRIVER}`, '--format', '{{.Name}}']).split('\n');
    expect(ls).to.include.members(['shared', 'small', 'listed']);
    const v = inspect('listed');
    expect(v.Driver).to.equal(DRIVER);
    expect(v.Status).to.deep.include({ backend: 'btrfs', size: '32.0 MiB', primary: 'e2e', generation: 1, state: 'ready' });
    expect(new Date(v.CreatedAt as string).getTime()).to.be.closeTo(Date.now(), 5 * 60_000);

    dockerOk(['run', '-d', '--name', 'ferry-e2e-holder', '--label', E2E_LABEL, '-v', 'listed:/data', TEST_IMAGE, 'sleep', '600']);
    const refused = docker(['volume', 'rm', 'listed']);
    expect(refused.code).to.not.equal(0);
    // dockerd itself refuses first, naming the container; ferry refuses too, naming host and path.
    expect(refused.stderr).to.match(/in use/);
    const viaCli = ferry.cli(['volume', 'rm', 'listed']);
    expect(viaCli.code).to.equal(4);
    expect(viaCli.stderr).to.match(/volume listed is in use: mounted on host e2e at .*listed by 1 container mount/);
    dockerOk(['rm', '-f', 'ferry-e2e-holder']);
    dockerOk(['volume', 'rm', 'listed']);
    expect(docker(['volume', 'inspect', 'listed']).code).to.not.equal(0);
    expect(ferry.cli(['volume', 'inspect', 'listed']).code).to.equal(3);
  });

  it('refuses bad names and options through the docker CLI with ferry’s message', function () {
    const bad = docker(['volume', 'create', '-d', DRIVER, '-o', 'colour=red', 'x1']);
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr).to.match(/unknown option "colour": valid options are size, backend, fs, profile/);
    const big = docker(['volume', 'create', '-d', DRIVER, '-o', 'size=100T', 'x2']);
    expect(big.stderr).to.match(/larger than the btrfs pool/);
  });

  it('creates a volume on first use with docker run --volume-driver', function () {
    const r = docker(['run', '--rm', '--label', E2E_LABEL, '--volume-driver', DRIVER, '-v', 'implicit:/data', TEST_IMAGE, 'sh', '-c', 'echo made > /data/m && cat /data/m']);
    expect(r.stdout, r.stderr).to.equal('made');
    expect(inspect('implicit').Driver).to.equal(DRIVER);
  });

  it('works from docker-compose with driver and driver_opts', function () {
    requireRootAndTools('docker-compose');
    const project = join(dir, 'compose');
    require('node:fs').mkdirSync(project);
    writeFileSync(
      join(project, 'docker-compose.yml'),
      [
        'version: "3.7"',
        'services:',
        '  writer:',
        `    image: ${TEST_IMAGE}`,
        '    command: ["sh", "-c", "echo from-compose > /data/c && df -k /data | tail -1"]',
        '    labels: ["ferry-e2e"]',
        '    volumes: ["appdata:/data"]',
        'volumes:',
        '  appdata:',
        `    driver: ${DRIVER}`,
        '    driver_opts:',
        '      backend: loop',
        '      size: 96M',
        '',
      ].join('\n'),
    );
    const up = require('node:child_process').spawnSync('docker-compose', ['-p', 'ferrye2e', 'up', '--abort-on-container-exit'], {
      cwd: project,
      encoding: 'utf8',
    });
    expect(up.status, up.stderr + up.stdout).to.equal(0);
    const v = inspect('ferrye2e_appdata');
    expect(v.Status).to.deep.include({ backend: 'loop', fs: 'ext4', size: '96.0 MiB' });
    const r = run(['-v', 'ferrye2e_appdata:/data'], 'cat /data/c');
    expect(r.stdout).to.equal('from-compose');
    const down = require('node:child_process').spawnSync('docker-compose', ['-p', 'ferrye2e', 'down', '-v'], { cwd: project, encoding: 'utf8' });
    expect(down.status, down.stderr).to.equal(0);
    expect(docker(['volume', 'inspect', 'ferrye2e_appdata']).code).to.not.equal(0);
  });

  it('keeps a container writing through SIGKILL and restart of ferry, then unmounts cleanly at stop', async function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'killme']);
    dockerOk(['run', '-d', '--name', 'ferry-e2e-writer', '--label', E2E_LABEL, '-v', 'killme:/data', TEST_IMAGE, 'sh', '-c',
      'i=0; while true; do i=$((i+1)); echo $i >> /data/log; sleep 0.05; done']);
    const logFile = join(mountpoint('killme'), 'log');
    const lines = (): number => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).length : 0);
    await waitFor('the writer to start', () => lines() > 5);

    await ferry.kill('SIGKILL');
    const atKill = lines();
    await waitFor('the writer to go on while ferry is dead', () => lines() > atKill + 10);
    expect(dockerOk(['inspect', '-f', '{{.State.Running}}', 'ferry-e2e-writer'])).to.equal('true');

    await ferry.start();
    const afterRestart = lines();
    await waitFor('the writer to go on after the restart', () => lines() > afterRestart + 10);
    const inspected = JSON.parse(ferry.cli(['volume', 'inspect', 'killme']).stdout);
    expect(inspected.volume.mounts).to.equal(1);

    dockerOk(['stop', '-t', '1', 'ferry-e2e-writer']);
    await waitFor('the volume to be unmounted', () => !isMountPoint(mountpoint('killme')), 30_000);
    expect(JSON.parse(ferry.cli(['volume', 'inspect', 'killme']).stdout).volume.mounts).to.equal(0);
    dockerOk(['rm', 'ferry-e2e-writer']);

    // Every line is there, in order, none lost.
    const all = run(['-v', 'killme:/data'], 'cat /data/log').stdout.split('\n').map(Number);
    expect(all.length).to.be.above(30);
    all.forEach((n, i) => expect(n).to.equal(i + 1));
  });

  it('keeps volumes and data across a dockerd restart', async function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=32M', 'survivor']);
    expect(run(['-v', 'survivor:/data'], 'echo kept > /data/k').code).to.equal(0);
    await restartDockerd();
    await waitFor('dockerd to list ferry volumes again', () =>
      docker(['volume', 'ls', '--filter', `driver=${DRIVER}`, '--format', '{{.Name}}']).stdout.split('\n').includes('survivor'),
    30_000, 500);
    const r = run(['-v', 'survivor:/data'], 'cat /data/k');
    expect(r.stdout, r.stderr).to.equal('kept');
  });

  it('shows the volumes in ferry volume ls and ferry status', function () {
    const ls = ferry.cli(['volume', 'ls']);
    expect(ls.code, ls.stderr).to.equal(0);
    expect(ls.stdout).to.match(/^NAME\s+BACKEND\s+SIZE/);
    expect(ls.stdout).to.match(/\nshared\s+btrfs\s+64\.0 MiB/);
    const st = ferry.cli(['status']);
    expect(st.stdout).to.match(/node: e2e/);
    expect(st.stdout).to.match(/btrfs: ok/);
  });
});
