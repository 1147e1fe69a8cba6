import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerHost } from '../../src/agent/docker-host';
import { ContainerQuiescer } from '../../src/agent/quiesce';
import { CgroupFreezer, detectCgroupLayout, freezerDirOf } from '../../src/agent/cgroup-freezer';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { silentLogger } from '../../src/log';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, requireDockerd, TEST_IMAGE, waitFor } from '../support/docker';
import { REPO_ROOT } from './ferry-process';

/**
 * Quiescing on a real dockerd: real containers, real `docker exec` hooks, the cgroup freezer. The
 * containers use Docker's own `local` volumes here (ContainerQuiescer finds containers by volume name,
 * whatever the driver); test/e2e/snapshot-quiesce.test.ts drives the same through ferry's CLI.
 */
const PREFIX = 'ferry-e2e-q';
/** Writes a counter to /data/counter every 10 ms. */
const COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > /data/counter; usleep 10000; done';

function cleanup(): void {
  const ids = docker(['ps', '-aq', '--filter', `label=${E2E_LABEL}`, '--filter', `name=${PREFIX}`]).stdout.split('\n').filter(Boolean);
  if (ids.length) docker(['rm', '-f', ...ids]);
  // Filtered by driver: an unfiltered list, or a name dockerd does not know, makes it ask every plugin
  // it ever knew, waiting out the sockets of ferry processes gone (30 s each).
  const vols = docker(['volume', 'ls', '-q', '--filter', 'driver=local', '--filter', `name=${PREFIX}`]).stdout.split('\n').filter(Boolean);
  if (vols.length) docker(['volume', 'rm', '-f', ...vols]);
}

/** Starts a detached container named PREFIX-name using volume PREFIX-volume at /data. */
function start(name: string, volume: string, labels: Record<string, string> = {}, script = COUNTER): string {
  const l = Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
  // Made first with its driver named, for the same reason as in cleanup().
  dockerOk(['volume', 'create', '-d', 'local', `${PREFIX}-${volume}`]);
  dockerOk(['run', '-d', '--name', `${PREFIX}-${name}`, '--label', E2E_LABEL, ...l, '-v', `${PREFIX}-${volume}:/data`, TEST_IMAGE, 'sh', '-c', script]);
  return `${PREFIX}-${name}`;
}

function state(container: string): { Running: boolean; Paused: boolean } {
  return JSON.parse(dockerOk(['inspect', '-f', '{{json .State}}', container]));
}

function fileIn(volume: string, file: string): string {
  const mountpoint = dockerOk(['volume', 'inspect', '-f', '{{.Mountpoint}}', `${PREFIX}-${volume}`]);
  try {
    return readFileSync(join(mountpoint, file), 'utf8').trim();
  } catch {
    return '';
  }
}

const counter = (volume: string): number => Number(fileIn(volume, 'counter') || 0);

/** group: whether container `c`'s cgroup freezer reports it frozen (what dockerd's Paused does not show). */
function frozen(c: string): boolean {
  const layout = detectCgroupLayout();
  const pid = Number(dockerOk(['inspect', '-f', '{{.State.Pid}}', c]));
  const d = layout && freezerDirOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), layout);
  if (!d) throw new Error(`no cgroup freezer for ${c}`);
  return d.kind === 'v2' ? readFileSync(join(d.dir, 'cgroup.events'), 'utf8').includes('frozen 1') : readFileSync(join(d.dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
}

// group: every test twice, paused through dockerd and through the cgroup freezer directly.
for (const how of ['dockerd', 'cgroup freezer'] as const) describe(`quiesce on a real dockerd (pause by ${how})`, function () {
  let control: LocalControl;
  let quiescer: ContainerQuiescer;
  let dir: string;
  let freezer: CgroupFreezer | undefined;
  /** Paused the way this run pauses. */
  const paused = (c: string): boolean => (how === 'dockerd' ? state(c).Paused : frozen(c));

  before(function () {
    requireRootAndTools('docker');
    requireDockerd(REPO_ROOT);
    if (how === 'cgroup freezer' && !detectCgroupLayout()) {
      console.log('      SKIPPED cgroup freezer: this host lacks a cgroup freezer ferry can write');
      this.skip();
    }
    cleanup();
    dir = makeTempDir('e2e-freezer');
  });
  after(() => dir && cleanupDir(dir));
  beforeEach(function () {
    control = new LocalControl(openDb(':memory:'));
    freezer = how === 'dockerd' ? undefined : new CgroupFreezer(join(dir, 'frozen.json'), detectCgroupLayout()!, silentLogger());
    quiescer = new ContainerQuiescer('e2e', control, new DockerHost('/var/run/docker.sock', silentLogger()), silentLogger(), 10_000, freezer);
  });
  afterEach(cleanup);

  it('pauses a container writing a counter for the instant of the action; it runs again after; the pause is measured', async function () {
    const c = start('counter', 'count');
    await waitFor('the counter to run', () => counter('count') > 5, 30_000);
    const { value, report } = await quiescer.aroundAll([`${PREFIX}-count`], 'pause', async () => {
      expect(paused(c), 'paused').to.equal(true);
      const frozen = counter('count');
      // A window to watch in: a running writer would add ~30 in 300 ms.
      await new Promise((r) => setTimeout(r, 300));
      expect(counter('count'), 'the counter moved while paused').to.equal(frozen);
      return frozen;
    });
    expect(report.paused).to.deep.equal([c]);
    expect(report.pausedMs).to.be.at.least(300);
    expect(state(c)).to.include({ Running: true, Paused: false });
    expect(paused(c), 'paused after').to.equal(false);
    await waitFor('the counter to move on', () => counter('count') > value + 5, 30_000);
    expect((await control.eventsOf(`${PREFIX}-count`)).map((e) => e.kind)).to.include('snapshot-paused');
  });

  it('a pre hook that fails fails it, with its output in the event log; the container is left running, not paused', async function () {
    const c = start('refuser', 'refused', { 'ferry.pre-snapshot': 'echo cannot flush now; exit 3', 'ferry.post-snapshot': 'echo released > /data/post' });
    await waitFor('the counter to run', () => counter('refused') > 5, 30_000);
    let ran = false;
    const err = await quiescer
      .aroundAll([`${PREFIX}-refused`], 'pause', async () => (ran = true))
      .then(() => undefined, (e: unknown) => e as { code?: string; message: string });
    expect(err?.code).to.equal('QUIESCE_FAILED');
    expect(err?.message).to.match(new RegExp(`pre-snapshot hook of container ${c} failed: exited 3 .*cannot flush now`));
    expect(ran).to.equal(false);
    expect(state(c)).to.include({ Running: true, Paused: false });
    expect(fileIn('refused', 'post'), 'its post hook ran').to.equal('released');
    const events = (await control.eventsOf(`${PREFIX}-refused`)).map((e) => `${e.kind}: ${e.detail}`);
    expect(events.some((e) => /^snapshot-hook-failed: pre-snapshot hook in container .* exited 3 after \d+ ms: cannot flush now$/.test(e)), events.join('\n')).to.equal(true);
    const before = counter('refused');
    await waitFor('the counter to move on', () => counter('refused') > before + 5, 30_000);
  });

  it('a pre hook past its time is killed and fails it', async function () {
    const c = start('slow', 'slow', { 'ferry.pre-snapshot': 'sleep 300', 'ferry.hook-timeout': '1s' });
    await waitFor('the counter to run', () => counter('slow') > 5, 30_000);
    const t0 = Date.now();
    const err = await quiescer
      .aroundAll([`${PREFIX}-slow`], 'pause', async () => 'never')
      .then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).to.match(/timed out after 1000 ms/);
    expect(Date.now() - t0).to.be.below(10_000);
    expect(state(c)).to.include({ Running: true, Paused: false });
    await waitFor('the hook to be killed', () => !dockerOk(['top', c]).includes('sleep 300'), 10_000);
  });

  it('a Compose project’s two containers and two volumes: hooked and paused together, released after', async function () {
    const labels = (v: string) => ({
      'com.docker.compose.project': `${PREFIX}-x`,
      'ferry.pre-snapshot': `["sh", "-c", "echo pre >> /data/hooks"]`,
      'ferry.post-snapshot': `echo post >> /data/hooks`,
      'com.docker.compose.service': v,
    });
    const a = start('xa', 'xa', labels('a'));
    const b = start('xb', 'xb', labels('b'));
    await waitFor('both counters to run', () => counter('xa') > 5 && counter('xb') > 5, 30_000);
    const volumes = await quiescer.projectVolumes(`${PREFIX}-x`);
    expect(volumes).to.deep.equal([`${PREFIX}-xa`, `${PREFIX}-xb`]);
    const { report } = await quiescer.aroundAll(volumes, 'pause', async () => {
      expect([paused(a), paused(b)]).to.deep.equal([true, true]);
      expect([fileIn('xa', 'hooks'), fileIn('xb', 'hooks')]).to.deep.equal(['pre', 'pre']);
    });
    expect(report.paused).to.deep.equal([a, b]);
    expect([fileIn('xa', 'hooks'), fileIn('xb', 'hooks')]).to.deep.equal(['pre\npost', 'pre\npost']);
    expect([state(a), state(b)].map((s) => s.Paused)).to.deep.equal([false, false]);
    expect([paused(a), paused(b)]).to.deep.equal([false, false]);
  });

  // Only where ferry freezes cgroups itself (dockerd keeps its own pauses).
  if (how === 'cgroup freezer') it('a container a killed ferry left frozen (in the journal) is thawed at the next start', async function () {
    const c = start('left', 'left');
    await waitFor('the counter to run', () => counter('left') > 5, 30_000);
    const pid = Number(dockerOk(['inspect', '-f', '{{.State.Pid}}', c]));
    const d = await freezer!.resolve(pid);
    expect(d, 'its cgroup freezer').to.not.equal(null);
    // What a ferry killed mid-snapshot leaves: the cgroup frozen, and in the journal.
    await freezer!.freeze(c, d!);
    expect(frozen(c)).to.equal(true);
    expect(JSON.parse(readFileSync(join(dir, 'frozen.json'), 'utf8'))).to.have.length(1);
    const stuck = counter('left');
    const next = new CgroupFreezer(join(dir, 'frozen.json'), detectCgroupLayout()!, silentLogger());
    expect(await next.thawLeftovers()).to.deep.equal([c]);
    expect(frozen(c)).to.equal(false);
    expect(JSON.parse(readFileSync(join(dir, 'frozen.json'), 'utf8'))).to.deep.equal([]);
    await waitFor('the counter to move on', () => counter('left') > stuck + 5, 30_000);
  });
});
