import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, requireDockerd, restartDockerd, TEST_IMAGE, waitFor } from '../support/docker';
import {
  buildAndPush,
  buildBase,
  installPlugin,
  LocalRegistry,
  pluginBuild,
  pluginInfo,
  pluginPaths,
  pluginPid,
  pluginVolumes,
  removePlugin,
} from '../support/managed-plugin';
import { FERRY, REPO_ROOT } from './ferry-process';

// Its own alias, so that the test never touches a ferry plugin that serves this host for real.
const ALIAS = 'ferry-managed-e2e';
// The API socket the plugin's entrypoint fixes: /run/host/ferry/ferry.sock inside, this outside.
const API_SOCKET = '/run/ferry/ferry.sock';
const VERSION: string = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version;

function run(volumeArgs: string[], script: string): ReturnType<typeof docker> {
  return docker(['run', '--rm', '--label', E2E_LABEL, ...volumeArgs, TEST_IMAGE, 'sh', '-c', script]);
}

/** The host's ferry CLI, talking to the plugin through the /run it shares with the host. */
function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(FERRY, ['--api-socket', API_SOCKET, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The plugin's ferry log: dockerd copies a plugin's stdout and stderr into its own log. */
function dockerdLogTail(lines: number): string {
  const log = '/var/log/ferry-dockerd.log';
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-lines).join('\n') : '(no /var/log/ferry-dockerd.log)';
}

/**
 * `local` volumes of this test's names: a `docker run -v mp-x:/data` after a failed
 * create makes a `local` volume of that name, which would then block the next run's create.
 */
function removeStrays(): void {
  const names = docker(['volume', 'ls', '-q', '--filter', 'driver=local', '--filter', 'name=^mp-']).stdout.split('\n').filter((n) => n.startsWith('mp-'));
  if (names.length) docker(['volume', 'rm', '-f', ...names]);
}

describe('the managed plugin, built here and installed from a registry', function () {
  let dir: string;
  let registry: LocalRegistry | undefined;
  let ref: string;
  const inspect = (name: string): Record<string, unknown> => JSON.parse(dockerOk(['volume', 'inspect', name]))[0];
  /** Where a mounted volume is on the host: ferry's /var/lib/ferry/mounts/NAME in the propagated mount. */
  const hostPath = (name: string): string => join(pluginPaths(pluginInfo(ALIAS).Id).propagated, 'mounts', name);
  const timings: string[] = [];

  before(async function () {
    this.timeout(1_800_000);
    requireRootAndTools('docker', 'docker-registry', 'debootstrap');
    requireDockerd(REPO_ROOT);
    // The plugin serves the API socket the host's `ferry` CLI uses: a ferry running on this host
    // (scripts/install.sh) holds it, and the two must not both run.
    if (existsSync(API_SOCKET) && cli(['status']).code === 0) {
      throw new Error(`a ferry already answers at ${API_SOCKET} (scripts/install.sh's?): stop it before this test, which installs ferry as a managed plugin`);
    }
    removePlugin(ALIAS);
    removeStrays();
    dir = makeTempDir('managed-plugin');
    registry = await LocalRegistry.start(dir);
    const base = buildBase(REPO_ROOT);
    timings.push(`base image ${(base.ms / 1000).toFixed(1)} s${base.cached ? ' (cached)' : ''}`);
    ref = `${registry.address}/ferry:${VERSION}`;
    const built = buildAndPush(REPO_ROOT, ref, `e2e first ${process.pid}`);
    timings.push(`build+push ${(built.ms / 1000).toFixed(1)} s`);
    const start = Date.now();
    installPlugin(ref, ALIAS);
    timings.push(`install ${((Date.now() - start) / 1000).toFixed(1)} s`);
  });
  after(async function () {
    this.timeout(600_000);
    removePlugin(ALIAS);
    removeStrays();
    await registry?.stop();
    if (dir) cleanupDir(dir);
    if (timings.length) console.log(`      managed plugin: ${timings.join(', ')}`);
  });
  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    console.log(`--- dockerd log tail (the plugin's output is in it) ---\n${dockerdLogTail(40)}`);
    // A failed test must not leave the next one a container that holds a name or a volume.
    docker(['rm', '-f', 'ferry-mp-holder', 'ferry-mp-writer']);
  });

  it('runs ferry in the plugin, installed from the registry with its mounts and capability', function () {
    const p = pluginInfo(ALIAS);
    expect(p.Enabled).to.equal(true);
    expect(p.PluginReference).to.equal(ref);
    expect(p.Config.PropagatedMount).to.equal('/var/lib/ferry');
    expect(p.Config.Linux).to.deep.include({ Capabilities: ['CAP_SYS_ADMIN'], AllowAllDevices: true });
    expect(pluginBuild(ALIAS)).to.equal(`e2e first ${process.pid}`);
    expect(pluginPid(ALIAS), 'ferry runs inside the plugin rootfs').to.be.a('number');
    // The host's CLI reaches it through the /run the plugin shares.
    const st = cli(['status']);
    expect(st.code, st.stderr).to.equal(0);
    expect(st.stdout).to.match(/btrfs: ok/);
  });

  it('creates a sized volume; what one container writes another reads; docker volume inspect shows it', function () {
    dockerOk(['volume', 'create', '-d', ALIAS, '-o', 'size=64M', 'mp-data']);
    const w = run(['-v', 'mp-data:/data'], 'echo hello-managed > /data/msg && seq 1 10000 > /data/numbers && sync');
    expect(w.code, w.stderr).to.equal(0);
    const r = run(['-v', 'mp-data:/data'], 'cat /data/msg && wc -l < /data/numbers');
    expect(r.stdout.split('\n'), r.stderr).to.deep.equal(['hello-managed', '10000']);

    const v = inspect('mp-data');
    expect(v.Driver).to.equal(pluginInfo(ALIAS).Name);
    expect(v.Status).to.deep.include({ backend: 'btrfs', size: '64.0 MiB', sizeBytes: 64 * 1024 * 1024, generation: 1, state: 'ready', mounts: 0 });

    // While a container holds it, the volume is mounted in the plugin's propagated mount.
    dockerOk(['run', '-d', '--name', 'ferry-mp-holder', '--label', E2E_LABEL, '-v', 'mp-data:/data', TEST_IMAGE, 'sleep', '600']);
    const held = inspect('mp-data');
    expect(held.Status).to.deep.include({ mounts: 1 });
    // `docker volume inspect` shows the path as the plugin answered it; containers get it scoped
    // into the plugin's propagated mount on the host, where the data is.
    expect(held.Mountpoint).to.equal('/var/lib/ferry/mounts/mp-data');
    expect(readFileSync(join(hostPath('mp-data'), 'msg'), 'utf8')).to.equal('hello-managed\n');
    dockerOk(['rm', '-f', 'ferry-mp-holder']);
  });

  it('fails writes past the size inside the container, with ENOSPC on a loop volume', function () {
    dockerOk(['volume', 'create', '-d', ALIAS, '-o', 'backend=loop', '-o', 'size=64M', 'mp-loop']);
    dockerOk(['volume', 'create', '-d', ALIAS, '-o', 'size=64M', 'mp-quota']);
    const l = run(['-v', 'mp-loop:/data'], 'echo before > /data/b; dd if=/dev/zero of=/data/big bs=1M count=100');
    expect(l.code).to.not.equal(0);
    expect(l.stderr).to.match(/No space left on device/);
    const b = run(['-v', 'mp-quota:/data'], 'dd if=/dev/zero of=/data/big bs=1M count=100');
    expect(b.code).to.not.equal(0);
    expect(b.stderr).to.match(/Disk quota exceeded|No space left on device/);
    const again = run(['-v', 'mp-loop:/data'], 'rm /data/big && cat /data/b');
    expect(again.stdout, again.stderr).to.equal('before');
  });

  it('keeps a container writing across a dockerd restart, and its data', async function () {
    this.timeout(600_000);
    dockerOk(['volume', 'create', '-d', ALIAS, '-o', 'size=64M', 'mp-restart']);
    // --restart always: dockerd (live-restore off) stops it at shutdown and starts it again,
    // which needs the plugin up again and the volume mounted again.
    dockerOk(['run', '-d', '--name', 'ferry-mp-writer', '--restart', 'always', '--label', E2E_LABEL, '-v', 'mp-restart:/data', TEST_IMAGE, 'sh', '-c',
      'i=$(cat /data/log 2>/dev/null | wc -l); while true; do i=$((i+1)); echo $i >> /data/log; sleep 0.05; done']);
    const logFile = join(hostPath('mp-restart'), 'log');
    const lines = (): number => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).length : 0);
    await waitFor('the writer to start', () => lines() > 10);
    const firstPid = pluginPid(ALIAS);

    await restartDockerd();
    await waitFor('the writer to run again', () => docker(['inspect', '-f', '{{.State.Running}}', 'ferry-mp-writer']).stdout === 'true', 120_000, 500);
    expect(pluginPid(ALIAS), 'dockerd started the plugin anew').to.be.a('number').and.not.equal(firstPid);
    const afterRestart = lines();
    await waitFor('the writer to go on after the restart', () => lines() > afterRestart + 10, 60_000);
    dockerOk(['rm', '-f', 'ferry-mp-writer']);

    // Every line is there, in order: what was written before the restart was kept.
    const all = run(['-v', 'mp-restart:/data'], 'cat /data/log').stdout.split('\n').map(Number);
    expect(all.length).to.be.above(afterRestart);
    all.forEach((n, i) => expect(n).to.equal(i + 1));
    expect(run(['-v', 'mp-data:/data'], 'cat /data/msg').stdout).to.equal('hello-managed');
  });

  it('refuses docker plugin disable while its volumes are in use', function () {
    dockerOk(['run', '-d', '--name', 'ferry-mp-holder', '--label', E2E_LABEL, '-v', 'mp-data:/data', TEST_IMAGE, 'sleep', '600']);
    const refused = docker(['plugin', 'disable', ALIAS]);
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.match(/in use/);
    expect(pluginInfo(ALIAS).Enabled).to.equal(true);
    // Still answering: the container's volume is readable from another container.
    expect(run(['-v', 'mp-data:/data'], 'cat /data/msg').stdout).to.equal('hello-managed');
    dockerOk(['rm', '-f', 'ferry-mp-holder']);
    // Volumes that exist count as in use to dockerd too: only -f disables the plugin then.
    expect(docker(['plugin', 'disable', ALIAS]).code).to.not.equal(0);
  });

  it('takes its args from docker plugin set: default backend and log level', async function () {
    this.timeout(600_000);
    dockerOk(['plugin', 'disable', '-f', ALIAS], { timeoutMs: 120_000 });
    dockerOk(['plugin', 'set', ALIAS, 'args=--backend loop --log-level debug']);
    dockerOk(['plugin', 'enable', ALIAS], { timeoutMs: 120_000 });
    expect(pluginInfo(ALIAS).Settings.Args).to.deep.equal(['--backend', 'loop', '--log-level', 'debug']);
    const pid = pluginPid(ALIAS);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).to.include.members(['--backend', 'loop', '--log-level', 'debug']);

    dockerOk(['volume', 'create', '-d', ALIAS, '-o', 'size=32M', 'mp-default']);
    expect(inspect('mp-default').Status).to.deep.include({ backend: 'loop' });
    // Volumes made before are all there after the plugin's restart.
    expect(pluginVolumes(ALIAS)).to.include.members(['mp-data', 'mp-loop', 'mp-quota', 'mp-restart', 'mp-default']);
    expect(run(['-v', 'mp-data:/data'], 'cat /data/msg').stdout).to.equal('hello-managed');
  });

  it('upgrades to a newer build from the registry, keeping every volume and its data', async function () {
    this.timeout(1_200_000);
    const next = `${registry!.address}/ferry:${VERSION}-next`;
    const built = buildAndPush(REPO_ROOT, next, `e2e next ${process.pid}`);
    timings.push(`second build+push ${(built.ms / 1000).toFixed(1)} s`);
    const before = pluginVolumes(ALIAS).sort();
    const id = pluginInfo(ALIAS).Id;
    // A volume in use at upgrade time: the container is stopped, its data must survive.
    dockerOk(['run', '--rm', '--label', E2E_LABEL, '-v', 'mp-default:/data', TEST_IMAGE, 'sh', '-c', 'echo made-before-upgrade > /data/u']);

    dockerOk(['plugin', 'disable', '-f', ALIAS], { timeoutMs: 120_000 });
    const start = Date.now();
    // The CLI asks "Plugin images do not match, are you sure?" for another tag; a user answers y.
    const up = dockerOk(['plugin', 'upgrade', '--grant-all-permissions', ALIAS, next], { input: 'y\n', timeoutMs: 600_000 });
    expect(up).to.match(/Upgraded plugin/);
    timings.push(`upgrade ${((Date.now() - start) / 1000).toFixed(1)} s`);
    dockerOk(['plugin', 'enable', ALIAS], { timeoutMs: 120_000 });

    const p = pluginInfo(ALIAS);
    expect(p.Id, 'the same plugin, so the same propagated mount').to.equal(id);
    expect(p.PluginReference).to.equal(next);
    expect(pluginBuild(ALIAS)).to.equal(`e2e next ${process.pid}`);
    expect(p.Settings.Args, 'docker plugin set survives the upgrade').to.deep.equal(['--backend', 'loop', '--log-level', 'debug']);
    expect(pluginVolumes(ALIAS).sort()).to.deep.equal(before);
    const ls = cli(['volume', 'ls']);
    expect(ls.code, ls.stderr).to.equal(0);
    for (const name of before) expect(ls.stdout).to.match(new RegExp(`\\n${name}\\s`));
    expect(run(['-v', 'mp-data:/data'], 'cat /data/msg && wc -l < /data/numbers').stdout.split('\n')).to.deep.equal(['hello-managed', '10000']);
    expect(run(['-v', 'mp-loop:/data'], 'cat /data/b').stdout).to.equal('before');
    expect(run(['-v', 'mp-default:/data'], 'cat /data/u').stdout).to.equal('made-before-upgrade');
    expect(inspect('mp-data').Status).to.deep.include({ backend: 'btrfs', size: '64.0 MiB', state: 'ready' });
  });
});
