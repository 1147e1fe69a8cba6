import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, removeE2eLeftovers, requireDockerd, TEST_IMAGE, waitFor, E2E_DRIVER, E2E_PLUGIN_SOCKET } from '../support/docker';
import { snapshotListShape } from '../../src/wire/shapes';
import { FerryProcess, REPO_ROOT } from './ferry-process';

const [DRIVER, PLUGIN_SOCKET] = [E2E_DRIVER, E2E_PLUGIN_SOCKET];
/** Writes a counter to /data/counter every 10 ms. */
const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /data/counter; usleep 10000; done';

/*
 * quiesce (issue 7 item 2) through ferry's CLI on a real dockerd: -o quiesce=pause, a failing pre
 * hook, a Compose project's volumes as one group. test/e2e/quiesce.test.ts has the pause's details.
 */
describe('end to end on a real dockerd: consistent snapshots', function () {
  let dir: string;
  let ferry: FerryProcess;
  const start = (name: string, volume: string, labels: Record<string, string> = {}): string => {
    const l = Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    dockerOk(['run', '-d', '--name', name, '--label', E2E_LABEL, ...l, '-v', `${volume}:/data`, TEST_IMAGE, 'sh', '-c', COUNTER]);
    return name;
  };
  const counter = (c: string): number => Number(docker(['exec', c, 'cat', '/data/counter']).stdout || 0);
  const state = (c: string): { Running: boolean; Paused: boolean } => JSON.parse(dockerOk(['inspect', '-f', '{{json .State}}', c]));
  const events = (volume: string): string[] => {
    const r = ferry.cli(['volume', 'inspect', volume]);
    expect(r.code, r.stderr).to.equal(0);
    return (JSON.parse(r.stdout).events as { kind: string; detail: string | null }[]).map((e) => `${e.kind}: ${e.detail}`);
  };

  before(async function () {
    requireRootAndTools('docker', 'btrfs');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('e2e-quiesce');
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

  it('-o quiesce=pause: a container writing a counter is paused for the snapshot and running after', async function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', '-o', 'quiesce=pause', 'qcount']);
    const c = start('ferry-e2e-qcount', 'qcount');
    await waitFor('the counter to run', () => counter(c) > 5, 30_000);
    const made = ferry.cli(['snapshot', 'create', 'qcount', 'paused-once']);
    expect(made.code, made.stderr).to.equal(0);
    expect(events('qcount').some((e) => /^snapshot-paused: paused ferry-e2e-qcount for \d+ ms$/.test(e)), events('qcount').join('\n')).to.equal(true);
    expect(state(c)).to.include({ Running: true, Paused: false });
    const after = counter(c);
    await waitFor('the counter to move on', () => counter(c) > after + 5, 30_000);
    // --quiesce none overrides the volume's option: nothing paused.
    const pausedBefore = events('qcount').filter((e) => e.startsWith('snapshot-paused')).length;
    expect(ferry.cli(['snapshot', 'create', 'qcount', 'crash-consistent', '--quiesce', 'none']).code).to.equal(0);
    expect(events('qcount').filter((e) => e.startsWith('snapshot-paused')).length).to.equal(pausedBefore);
  });

  it('a pre hook that fails fails the snapshot; the container runs on, not paused; the output is in the events', async function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'qhook']);
    const c = start('ferry-e2e-qhook', 'qhook', { 'ferry.pre-snapshot': 'echo database busy; exit 7' });
    await waitFor('the counter to run', () => counter(c) > 5, 30_000);
    const r = ferry.cli(['snapshot', 'create', 'qhook', 'never', '--quiesce', 'pause']);
    expect(r.code).to.equal(4);
    expect(r.stderr).to.match(/snapshot of volume qhook not taken: the pre-snapshot hook of container ferry-e2e-qhook failed: exited 7 .*database busy/);
    expect(state(c)).to.include({ Running: true, Paused: false });
    const ls = snapshotListShape.parse(JSON.parse(ferry.cli(['snapshot', 'ls', 'qhook', '--json']).stdout));
    expect(ls).to.deep.equal([]);
    expect(events('qhook').some((e) => /^snapshot-hook-failed: pre-snapshot hook in container ferry-e2e-qhook exited 7 after \d+ ms: database busy$/.test(e))).to.equal(true);
  });

  it('--group: a Compose project’s two volumes at one instant, each recorded with the group', async function () {
    const project = { 'com.docker.compose.project': 'qshop' };
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'qshop-db']);
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'qshop-files']);
    const a = start('ferry-e2e-qshop-db', 'qshop-db', project);
    const b = start('ferry-e2e-qshop-web', 'qshop-files', project);
    await waitFor('both counters to run', () => counter(a) > 5 && counter(b) > 5, 30_000);
    const r = ferry.cli(['snapshot', 'create', '--group', 'qshop', '--name', 'together', '--quiesce', 'pause']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim().split('\n')).to.deep.equal(['qshop-db@together', 'qshop-files@together']);
    for (const v of ['qshop-db', 'qshop-files']) {
      const ls = snapshotListShape.parse(JSON.parse(ferry.cli(['snapshot', 'ls', v, '--json']).stdout));
      expect(ls.map((s) => [s.name, s.group])).to.deep.equal([['together', 'qshop']]);
      expect(events(v).some((e) => /^snapshot-paused: paused ferry-e2e-qshop-db, ferry-e2e-qshop-web for \d+ ms$/.test(e)), events(v).join('\n')).to.equal(true);
    }
    expect([state(a).Paused, state(b).Paused]).to.deep.equal([false, false]);
  });

  it('group: a policy on a Compose project\'s two volumes snapshots them together on each tick', async function () {
    const project = { 'com.docker.compose.project': 'qsched' };
    const made = ferry.cli(['policy', 'create', 'qeach', '--schedule', '* * * * * *', '--keep', '3']);
    expect(made.code, made.stderr).to.equal(0);
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'qsched-db']);
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'qsched-files']);
    start('ferry-e2e-qsched-db', 'qsched-db', project);
    start('ferry-e2e-qsched-web', 'qsched-files', project);
    for (const v of ['qsched-db', 'qsched-files']) {
      const set = ferry.cli(['volume', 'set', v, 'policy=qeach']);
      expect(set.code, set.stderr).to.equal(0);
    }
    const scheduled = (v: string): { name: string; group: string | null }[] =>
      snapshotListShape.parse(JSON.parse(ferry.cli(['snapshot', 'ls', v, '--json']).stdout)).filter((s) => s.name.startsWith('_schedule.qeach.'));
    // The agent hears of the policy on its next refresh (10 s); then every second's tick takes both.
    let common: string[] = [];
    await waitFor('a scheduled snapshot of both volumes with one name and the group', () => {
      const [a, b] = [scheduled('qsched-db'), scheduled('qsched-files')];
      common = a.filter((s) => s.group === 'qsched' && b.some((t) => t.name === s.name && t.group === 'qsched')).map((s) => s.name);
      return common.length >= 2;
    }, 45_000, 200);
    for (const v of ['qsched-db', 'qsched-files']) expect(ferry.cli(['volume', 'set', v, 'policy=']).code).to.equal(0);
    expect(common[0]).to.match(/^_schedule\.qeach\.\d{8}T\d{6}Z$/);
  });
});
