import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { z } from 'zod';
import { doctorReportShape, nodeListShape, statusShape, volumeInspectShape, volumeListShape } from '../../src/wire/shapes';
import type { DoctorReport } from '../../src/wire/records';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, removeE2eLeftovers, requireDockerd, TEST_IMAGE, waitFor, E2E_DRIVER, E2E_PLUGIN_SOCKET } from '../support/docker';
import { unixRequest } from '../support/unix-http';
import { FERRY, FerryProcess, REPO_ROOT } from './ferry-process';

const MiB = 1024 * 1024;

/** Parses what a `--json` command printed against its documented shape (throws naming the field). */
function shaped<T extends z.ZodType>(shape: T, stdout: string): z.infer<T> {
  return shape.parse(JSON.parse(stdout));
}

function byCheck(r: DoctorReport, name: string): DoctorReport['checks'][number] {
  const c = r.checks.find((x) => x.check === name);
  if (!c) throw new Error(`no check ${name} in ${r.checks.map((x) => x.check).join(', ')}`);
  return c;
}

function failed(r: DoctorReport): string {
  return r.checks
    .filter((c) => !c.ok)
    .map((c) => `${c.check}: ${c.problem}`)
    .join('; ');
}

describe('ferry doctor, JSON and used bytes on a real host (ferry serve + dockerd)', function () {
  const [DRIVER, PLUGIN_SOCKET] = [E2E_DRIVER, E2E_PLUGIN_SOCKET];
  let dir: string;
  let small: string;
  let ferry: FerryProcess;
  const doctor = (...args: string[]): { code: number; report: DoctorReport; stdout: string } => {
    const r = ferry.cli(['doctor', '--plugin-socket', PLUGIN_SOCKET, '--json', ...args]);
    return { code: r.code, stdout: r.stdout, report: shaped(doctorReportShape, r.stdout) };
  };

  before(async function () {
    requireRootAndTools('docker', 'btrfs', 'fallocate');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('doctor');
    // The directory backend's pool on a small tmpfs of its own: "nearly full" is then 30 MiB away.
    small = join(dir, 'small');
    mkdirSync(small);
    spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', small]);
    const config = join(dir, 'ferry.json');
    writeFileSync(config, JSON.stringify({ directory: { dir: join(small, 'directory') } }));
    ferry = new FerryProcess(dir, PLUGIN_SOCKET, ['-c', config]);
    await ferry.start();
    removeE2eLeftovers(DRIVER);
    // dockerd activates a legacy plugin on first use.
    await waitFor('dockerd to activate the plugin', () => docker(['info', '--format', '{{json .Plugins.Volume}}']).stdout.includes(DRIVER), 30_000);
  });
  after(async function () {
    if (ferry) {
      removeE2eLeftovers(DRIVER);
      await ferry.kill('SIGTERM');
    }
    if (small) spawnSync('umount', [small]);
    if (dir) cleanupDir(dir);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) {
      console.log(`--- ferry log tail ---\n${readFileSync(ferry.logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
    }
  });

  it('docker volume inspect shows used bytes from the moment a volume exists, and after a container wrote', function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'size=64M', 'doc-used']);
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'backend=directory', 'doc-dir']);
    for (const name of ['doc-used', 'doc-dir']) {
      const status = JSON.parse(dockerOk(['volume', 'inspect', name]))[0].Status as { usedBytes: number | null };
      expect(status.usedBytes, `${name} right after create`).to.be.a('number');
    }
    const w = docker(['run', '--rm', '--label', E2E_LABEL, '-v', 'doc-used:/data', TEST_IMAGE, 'sh', '-c', 'dd if=/dev/urandom of=/data/f bs=1M count=6 2>/dev/null && sync']);
    expect(w.code, w.stderr).to.equal(0);
    // Measured at the last Unmount, not at the next usage pass (30 s away).
    const after = JSON.parse(dockerOk(['volume', 'inspect', 'doc-used']))[0].Status as { usedBytes: number };
    expect(after.usedBytes).to.be.at.least(6 * MiB);
  });

  it('passes every check on a healthy host and exits 0, in JSON and in text', function () {
    const { code, report } = doctor();
    expect(report.ok, failed(report)).to.equal(true);
    expect(code).to.equal(0);
    expect(report.node).to.equal('e2e');
    const names = report.checks.map((c) => c.check);
    expect(names).to.include.members(['ferry-api', 'tools:btrfs', 'tools:loop', 'tools:directory', 'tools:bank', 'dockerd', 'plugin-activated', 'plugin-socket', 'pool:btrfs', 'pool:directory', 'control', 'clock', 'stale-mounts', 'stale-loop-devices']);
    const text = ferry.cli(['doctor', '--plugin-socket', PLUGIN_SOCKET]);
    expect(text.code).to.equal(0);
    expect(text.stdout).to.match(new RegExp(`^ok +plugin-socket +${PLUGIN_SOCKET.replace(/[./]/g, '\\$&')} answers as a VolumeDriver$`, 'm'));
    expect(text.stdout).to.match(/all \d+ checks passed on e2e/);
    expect(byCheck(report, 'tools:bank').detail, 'this host has what backups run').to.include('getfattr, setfattr, mknod are here');
  });

  it('every listing and inspect prints its documented JSON shape; -q prints names; exit codes', function () {
    const ls = shaped(volumeListShape, ferry.cli(['volume', 'ls', '--json']).stdout);
    expect(ls.map((v) => v.name)).to.include.members(['doc-used', 'doc-dir']);
    expect(ferry.cli(['volume', 'ls', '-q']).stdout.split('\n').filter(Boolean).sort()).to.deep.equal(ls.map((v) => v.name).sort());
    const nodes = shaped(nodeListShape, ferry.cli(['node', 'ls', '--json']).stdout);
    expect(ferry.cli(['node', 'ls', '-q']).stdout.trim()).to.equal(nodes.map((n) => n.name).join('\n'));
    shaped(statusShape, ferry.cli(['status', '--json']).stdout);
    const inspect = shaped(volumeInspectShape, ferry.cli(['volume', 'inspect', 'doc-used', '--json']).stdout);
    expect(inspect.volume.usedBytes).to.be.a('number');
    expect(ferry.cli(['volume', 'inspect', 'doc-nonesuch']).code, 'not found').to.equal(3);
    expect(ferry.cli(['volume', 'ls', '--no-such-flag']).code, 'usage').to.equal(2);
    expect(ferry.cli(['volume', 'create', 'Bad/Name']).code, 'invalid').to.equal(2);
    expect(ferry.cli(['volume', 'create', 'doc-used', '-o', 'size=128M']).code, 'conflict').to.equal(4);
    expect(ferry.cli(['--help']).code, 'help').to.equal(0);
  });

  it('fault: a pool nearly full fails pool:directory, naming how to free space; passes again once freed', function () {
    const filler = join(small, 'filler');
    const f = spawnSync('fallocate', ['-l', '30M', filler]);
    expect(f.status, String(f.stderr)).to.equal(0);
    try {
      const { code, report } = doctor();
      expect(code).to.equal(1);
      const c = byCheck(report, 'pool:directory');
      expect(c.ok).to.equal(false);
      expect(c.problem).to.match(/the directory pool is nearly full: [\d.]+ [KM]iB free of 32\.0 MiB/);
      expect(c.fix).to.include('ferry volume rm NAME');
      expect(byCheck(report, 'pool:btrfs').ok, 'the other pools are fine').to.equal(true);
      const text = ferry.cli(['doctor', '--plugin-socket', PLUGIN_SOCKET]);
      expect(text.code).to.equal(1);
      expect(text.stdout).to.match(/^FAIL +pool:directory +the directory pool is nearly full/m);
      expect(text.stdout).to.match(/^ +fix: free space: ferry volume ls/m);
      expect(text.stdout).to.match(/1 of \d+ checks failed on e2e/);
    } finally {
      unlinkSync(filler);
    }
    expect(doctor().report.ok).to.equal(true);
  });

  it('fault: the plugin socket removed fails plugin-socket, saying to restart ferry; a restart fixes it', async function () {
    unlinkSync(PLUGIN_SOCKET);
    const { code, report } = doctor();
    expect(code).to.equal(1);
    const c = byCheck(report, 'plugin-socket');
    expect(c.problem).to.equal(`the plugin socket ${PLUGIN_SOCKET} is missing, so dockerd cannot reach ferry`);
    expect(c.fix).to.include('restart ferry');
    expect(report.checks.filter((x) => !x.ok).map((x) => x.check)).to.deep.equal(['plugin-socket']);
    await ferry.kill('SIGTERM');
    await ferry.start();
    const again = doctor();
    expect(again.report.ok, failed(again.report)).to.equal(true);
  });

  it('fault: a stale mount under the mount root fails stale-mounts with the umount to run', function () {
    const stray = join(ferry.dataDir, 'mounts', 'doc-stray');
    mkdirSync(stray, { recursive: true });
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', stray]).status).to.equal(0);
    try {
      const c = byCheck(doctor().report, 'stale-mounts');
      expect(c.ok).to.equal(false);
      expect(c.problem).to.include(stray);
      expect(c.fix).to.equal(`umount ${stray}`);
    } finally {
      spawnSync('umount', [stray]);
    }
  });

  it('ferry not running: the checks it can make without it, with how to start it', async function () {
    await ferry.kill('SIGTERM');
    try {
      const { code, report } = doctor();
      expect(code).to.equal(1);
      expect(report.node).to.equal(null);
      expect(byCheck(report, 'ferry-api').fix).to.include('ferry serve');
      expect(byCheck(report, 'plugin-socket').ok).to.equal(false);
      expect(byCheck(report, 'dockerd').ok).to.equal(true);
    } finally {
      await ferry.start();
    }
  });
});

/** A TCP port free right now on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('ferry doctor in a cluster (control and two agents on this host)', function () {
  let dir: string;
  let token: string;
  let controlUrl: string;
  const procs = new Map<string, ChildProcess>();
  const api = (node: string): string => join(dir, node, 'api.sock');

  const start = (name: string, args: string[]): ChildProcess => {
    const log = openSync(join(dir, `${name}.log`), 'a');
    const child = spawn(FERRY, args, { stdio: ['ignore', log, log] });
    procs.set(name, child);
    return child;
  };
  const stop = async (name: string): Promise<void> => {
    const c = procs.get(name);
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  const doctorOn = (node: string): { code: number; report: DoctorReport } => {
    const r = spawnSync(FERRY, ['--api-socket', api(node), 'doctor', '--json'], { encoding: 'utf8' });
    return { code: r.status ?? -1, report: shaped(doctorReportShape, r.stdout) };
  };

  before(async function () {
    requireRootAndTools('docker', 'btrfs');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('doctor-cluster');
    token = join(dir, 'token');
    writeFileSync(token, 'doctor-token-' + 'x'.repeat(32), { mode: 0o600 });
    const port = await freePort();
    controlUrl = `http://127.0.0.1:${port}`;
    start('control', ['control', '--data-dir', join(dir, 'control'), '--listen', `127.0.0.1:${port}`, '--token-file', token, '--log-level', 'debug']);
    for (const node of ['doc-a1', 'doc-a2']) {
      const transfer = `127.0.0.1:${await freePort()}`;
      mkdirSync(join(dir, node), { recursive: true });
      start(node, [
        '--api-socket', api(node), 'agent', '--control', controlUrl, '--token-file', token, '--data-dir', join(dir, node, 'data'),
        '--node-name', node, '--plugin-socket', `/run/docker/plugins/ferry-${node}.sock`, '--transfer-listen', transfer, '--backend', 'directory', '--web-listen', 'off', '--log-level', 'debug',
      ]);
    }
    for (const node of ['doc-a1', 'doc-a2']) {
      await waitFor(`agent ${node} to register`, async () => {
        if (!existsSync(api(node))) return false;
        const r = await unixRequest(api(node), '/v1/nodes', undefined, 'GET').catch(() => undefined);
        return r?.status === 200 && (r.json.nodes as { name: string; state: string }[]).filter((n) => n.state === 'up').length === 2;
      }).catch((err: unknown) => {
        logs();
        throw err;
      });
      await waitFor(`dockerd to activate ferry-${node}`, () => docker(['info', '--format', '{{json .Plugins.Volume}}']).stdout.includes(`ferry-${node}`), 30_000);
    }
  });
  after(async function () {
    for (const name of [...procs.keys()]) await stop(name);
    if (dir) cleanupDir(dir);
  });
  const logs = (): void => {
    for (const name of procs.keys()) {
      const f = join(dir, `${name}.log`);
      if (existsSync(f)) console.log(`--- ${name} ---\n${readFileSync(f, 'utf8').split('\n').slice(-20).join('\n')}`);
    }
  };
  afterEach(function () {
    if (this.currentTest?.state === 'failed') logs();
  });

  it('passes with control reachable with the token, the clock close, and the peer answering with its key', function () {
    const { code, report } = doctorOn('doc-a1');
    expect(report.ok, failed(report)).to.equal(true);
    expect(code).to.equal(0);
    expect(byCheck(report, 'control').detail).to.equal(`control at ${controlUrl} answers and accepts the token`);
    expect(byCheck(report, 'clock').detail).to.match(/^within [\d.]+ s of control's$/);
    expect(byCheck(report, 'peer:doc-a2').detail).to.match(/^transfer service at 127\.0\.0\.1:\d+ answers with doc-a2's key and accepts ours$/);
  });

  it("fault: a peer's transfer service gone fails peer:NAME, naming the host to start", async function () {
    await stop('doc-a2');
    const { code, report } = doctorOn('doc-a1');
    expect(code).to.equal(1);
    const c = byCheck(report, 'peer:doc-a2');
    expect(c.ok).to.equal(false);
    expect(c.problem).to.match(/doc-a2/);
    expect(c.fix).to.include('start ferry agent on doc-a2');
  });

  it('fault: control stopped fails control (and the clock), saying to start ferry control', async function () {
    await stop('control');
    const { code, report } = doctorOn('doc-a1');
    expect(code).to.equal(1);
    const c = byCheck(report, 'control');
    expect(c.problem).to.include(`control at ${controlUrl} is unreachable`);
    expect(c.fix).to.include('start ferry control');
    expect(byCheck(report, 'clock').ok).to.equal(false);
    // What does not need control still passes.
    expect(byCheck(report, 'plugin-socket').ok).to.equal(true);
    expect(byCheck(report, 'pool:directory').ok).to.equal(true);
  });
});
