import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { TEST_IMAGE } from '../support/docker';
import { ownerStamp, requireRootAndTools } from '../support/host';
import { execAsync, execOk, execSync, sleep } from './exec';
import { cleanupClusterLeftovers, CLUSTER_DIR_PREFIX, findClusterLeftovers, requireClusterTools, startCluster, type Cluster, type TestHost } from './harness';
import { findHostProcesses, isAlive } from './procs';

// Not "ferry": a plugin of that name may serve this machine for real.
const PROBE_DRIVER = 'ferry-harness-probe';
const PROBE_LISTED = 'probe-listed';

// Debian's busybox-static (which the test image is built from) has a ping where iputils is not installed.
const PING = execSync(['sh', '-c', 'command -v ping']).code === 0 ? ['ping'] : ['busybox', 'ping'];

async function ping(from: TestHost, ip: string): Promise<boolean> {
  return (await from.exec([...PING, '-c', '1', '-W', '2', ip], { timeoutMs: 10_000 })).code === 0;
}

function ppidOf(pid: number): number {
  const r = execSync(['ps', '-o', 'ppid=', '-p', String(pid)]);
  return Number(r.stdout.trim());
}

/**
 * A legacy volume plugin in this process: Mount bind-mounts `source` under `mountRoot` in the
 * ROOT mount namespace, as a ferry agent does, so that a container only sees `source`'s files
 * if that mount propagates into the host dockerd's mount namespace.
 */
class ProbePlugin {
  readonly calls: string[] = [];
  private readonly volumes = new Set<string>();
  private server?: Server;

  constructor(
    readonly socketPath: string,
    readonly mountRoot: string,
    readonly source: string,
  ) {}

  mountpoint(name: string): string {
    return join(this.mountRoot, name);
  }

  async listen(): Promise<void> {
    mkdirSync(this.mountRoot, { recursive: true });
    const server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = parts.length ? (JSON.parse(Buffer.concat(parts).toString('utf8')) as { Name?: string }) : {};
        this.calls.push(req.url ?? '');
        void this.answer(req.url ?? '', body.Name ?? '').then((reply) => {
          res.setHeader('Content-Type', 'application/vnd.docker.plugins.v1.2+json');
          res.end(JSON.stringify(reply));
        });
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, resolve);
    });
  }

  private async answer(route: string, name: string): Promise<Record<string, unknown>> {
    const volume = (n: string): Record<string, unknown> => ({ Name: n, Mountpoint: this.mountpoint(n) });
    switch (route) {
      case '/Plugin.Activate':
        return { Implements: ['VolumeDriver'] };
      case '/VolumeDriver.Capabilities':
        return { Capabilities: { Scope: 'local' } };
      case '/VolumeDriver.Create':
        this.volumes.add(name);
        return { Err: '' };
      case '/VolumeDriver.Remove':
        this.volumes.delete(name);
        return { Err: '' };
      case '/VolumeDriver.Get':
        return this.volumes.has(name) ? { Volume: volume(name), Err: '' } : { Err: `no volume ${name}` };
      case '/VolumeDriver.List':
        return { Volumes: [...this.volumes, PROBE_LISTED].map(volume), Err: '' };
      case '/VolumeDriver.Path':
        return { Mountpoint: this.mountpoint(name), Err: '' };
      case '/VolumeDriver.Mount': {
        mkdirSync(this.mountpoint(name), { recursive: true });
        const r = await execAsync(['mount', '--bind', this.source, this.mountpoint(name)]);
        return r.code === 0 ? { Mountpoint: this.mountpoint(name), Err: '' } : { Err: `bind mount failed: ${r.stderr}` };
      }
      case '/VolumeDriver.Unmount': {
        const r = await execAsync(['umount', this.mountpoint(name)]);
        return { Err: r.code === 0 ? '' : `umount failed: ${r.stderr}` };
      }
      default:
        return { Err: `unknown route ${route}` };
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    if (s) await new Promise((r) => s.close(r));
    rmSync(this.socketPath, { force: true });
  }
}

describe('cluster harness (test hosts in network namespaces)', function () {
  this.timeout(300_000);

  describe('three hosts', function () {
    let cluster: Cluster | undefined;

    before(async function () {
      requireRootAndTools(PING[0], 'ps');
      cluster = await startCluster({ hosts: 3 });
    });
    afterEach(function () {
      if (this.currentTest?.state !== 'failed' || !cluster) return;
      for (const h of cluster.hosts) {
        const tail = execSync(['tail', '-n', '20', h.dockerdLog]).stdout;
        console.log(`--- ${h.name} dockerd log tail (${h.dockerdLog}) ---\n${tail}`);
      }
    });
    after(async function () {
      await cluster?.teardown();
    });

    it('brings up 3 hosts, each with its own dockerd and containerd, that reach each other and nothing else', async function () {
      const c = cluster as Cluster;
      expect(c.hosts.map((h) => [h.name, h.ip, h.netns])).to.deep.equal([
        ['h1', '10.77.0.11', 'ferry-h1'],
        ['h2', '10.77.0.12', 'ferry-h2'],
        ['h3', '10.77.0.13', 'ferry-h3'],
      ]);
      for (const h of c.hosts) {
        expect(await h.dockerOk(['info', '--format', '{{.Name}}']), `dockerd of ${h.name} answers`).to.equal(h.hostname);
        const containerd = findHostProcesses(join(h.dir, 'exec', 'containerd'), new Set()).filter((p) => p.cmdline.startsWith('containerd '));
        expect(containerd, `${h.name}'s dockerd runs its own containerd`).to.have.length(1);
        expect(ppidOf(containerd[0].pid)).to.equal(h.pid);
        const routes = (await h.exec(['ip', '-4', 'route'])).stdout;
        expect(routes, `${h.name} has no route out of the test subnet`).to.not.match(/default/);
      }
      for (const from of c.hosts) {
        for (const to of c.hosts) if (to !== from) expect(await ping(from, to.ip), `${from.name} pings ${to.name}`).to.equal(true);
        expect(await ping(from, c.bridgeIp), `${from.name} pings the bridge`).to.equal(true);
      }
      const runs = await Promise.all(c.hosts.map((h) => h.docker(['run', '--rm', TEST_IMAGE, 'echo', `hello from ${h.name}`])));
      runs.forEach((r, i) => expect(r.stdout, r.stderr).to.equal(`hello from h${i + 1}`));
    });

    it("shows a plugin socket in h2's plugin dir to h2's dockerd only, and propagates its mounts into h2's containers", async function () {
      const c = cluster as Cluster;
      const [h1, h2] = [c.host('h1'), c.host(2)];
      const source = join(c.dir, 'probe-source');
      mkdirSync(source);
      writeFileSync(join(source, 'greeting'), 'made in the root mount namespace\n');
      const probe = new ProbePlugin(join(h2.pluginDir, `${PROBE_DRIVER}.sock`), join(h2.dataDir, 'mounts'), source);
      await probe.listen();
      try {
        // `volume ls` asks every plugin whose socket its dockerd finds in /run/docker/plugins.
        const lsFormat = ['volume', 'ls', '--format', '{{.Driver}} {{.Name}}'];
        expect((await h2.dockerOk(lsFormat)).split('\n')).to.include(`${PROBE_DRIVER} ${PROBE_LISTED}`);
        expect(await h1.dockerOk(lsFormat)).to.not.include(PROBE_DRIVER);
        // The bind mount is made in the root mount namespace after dockerd started: the container sees
        // the file only if that mount propagated into h2's dockerd namespace. (A one-letter name such
        // as x:/data is not a volume name: the CLI takes it for a path and makes an anonymous volume.)
        const r = await h2.docker(['run', '--rm', '--volume-driver', PROBE_DRIVER, '-v', 'probe-vol:/data', TEST_IMAGE, 'cat', '/data/greeting']);
        const why = `the container must see the file bind-mounted under h2's dataDir in the root mount namespace (propagation into h2's dockerd); docker run exited ${r.code}: ${r.stderr}`;
        expect(r.stdout, why).to.equal('made in the root mount namespace');
        expect(probe.calls).to.include.members(['/Plugin.Activate', '/VolumeDriver.Mount', '/VolumeDriver.Unmount']);
        await h2.dockerOk(['volume', 'rm', 'probe-vol']);
      } finally {
        await probe.close();
      }
    });

    it("cuts a host's link and restores it", async function () {
      const [h1, h3] = [(cluster as Cluster).host(1), (cluster as Cluster).host(3)];
      h3.linkDown();
      try {
        expect(await ping(h1, h3.ip), 'h1 reaches h3 while its link is down').to.equal(false);
      } finally {
        h3.linkUp();
      }
      let back = false;
      for (let i = 0; i < 25 && !back; i++) back = await ping(h1, h3.ip);
      expect(back, 'h1 reaches h3 again once its link is up').to.equal(true);
    });
  });

  describe('swarm, teardown and leftovers', function () {
    const rootDocker = (args: string[]): string => execOk(['docker', '-H', 'unix:///var/run/docker.sock', ...args]);

    before(function () {
      requireClusterTools();
    });

    it('forms a Swarm of 3 Ready nodes that schedules a task on a worker', async function () {
      const c = await startCluster({ hosts: 3, swarm: true });
      try {
        const h1 = c.host(1);
        const nodes = (await h1.dockerOk(['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'])).split('\n').map((l) => l.trim()).sort();
        expect(nodes).to.deep.equal(['ferry-h1 Ready Leader', 'ferry-h2 Ready', 'ferry-h3 Ready']);
        // --no-resolve-image: no registry is reachable, every host has the image loaded.
        await h1.dockerOk(['service', 'create', '-d', '--name', 'probe', '--no-resolve-image', '--restart-condition', 'none', '--constraint', 'node.hostname==ferry-h3', TEST_IMAGE, 'sleep', '300']);
        let running = '';
        for (let i = 0; i < 150 && !running; i++) {
          running = await c.host(3).dockerOk(['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=probe']);
          if (!running) await sleep(200);
        }
        expect(running, 'the task runs on h3').to.not.equal('');
      } finally {
        await c.teardown();
      }
      expect(findClusterLeftovers()).to.deep.equal([]);
    });

    it('tears down to nothing and leaves the root dockerd alone', async function () {
      const before = { id: rootDocker(['info', '--format', '{{.ID}}']), containers: rootDocker(['ps', '-aq', '--no-trunc']) };
      const c = await startCluster({ hosts: 2 });
      await c.host(1).dockerOk(['run', '-d', TEST_IMAGE, 'sleep', '300']);
      await c.teardown();
      expect(findClusterLeftovers()).to.deep.equal([]);
      expect(execSync(['ip', 'link', 'show', 'ferry-br0']).code, 'bridge gone').to.not.equal(0);
      expect({ id: rootDocker(['info', '--format', '{{.ID}}']), containers: rootDocker(['ps', '-aq', '--no-trunc']) }).to.deep.equal(before);
    });

    it("refuses to clean up a cluster that another live run owns, and cleans it once that run is gone", async function () {
      const dir = mkdtempSync(CLUSTER_DIR_PREFIX);
      const owner = spawn('sleep', ['300'], { stdio: 'ignore' });
      writeFileSync(join(dir, 'owner.pid'), `${ownerStamp(owner.pid as number)}\n`);
      try {
        let err: unknown;
        await cleanupClusterLeftovers().catch((e: unknown) => (err = e));
        expect(String(err)).to.match(new RegExp(`${dir} belongs to running process ${owner.pid} \\(sleep 300\\)`));
      } finally {
        owner.kill('SIGKILL');
        await new Promise((r) => owner.once('exit', r));
      }
      await cleanupClusterLeftovers();
      expect(findClusterLeftovers()).to.deep.equal([]);
    });

    it('takes a dead run whose PID a live process got again for dead (PIDs are reused)', async function () {
      const dir = mkdtempSync(CLUSTER_DIR_PREFIX);
      const other = spawn('sleep', ['300'], { stdio: 'ignore' });
      // The same PID, but a start time that is not this process's: the run that wrote it is gone.
      const [pid, start] = ownerStamp(other.pid as number).split('.');
      writeFileSync(join(dir, 'owner.pid'), `${pid}.${Number(start) + 1}\n`);
      try {
        await cleanupClusterLeftovers();
        expect(findClusterLeftovers()).to.deep.equal([]);
        expect(existsSync(dir)).to.equal(false);
      } finally {
        other.kill('SIGKILL');
      }
    });

    it('recovers from a killed run: cleanupClusterLeftovers removes what a cluster never torn down left', async function () {
      const c = await startCluster({ hosts: 2 });
      const [h1, h2] = [c.host(1), c.host(2)];
      // What a killed run leaves: a running container, a process in a host's netns, a mount under a dataDir.
      const id = await h1.dockerOk(['run', '-d', TEST_IMAGE, 'sleep', '300']);
      const containerPid = Number(await h1.dockerOk(['inspect', '-f', '{{.State.Pid}}', id]));
      const agent = h2.spawnInNetns(['sleep', '300'], { detached: true, stdio: 'ignore' });
      agent.unref();
      const src = join(c.dir, 'src');
      mkdirSync(src);
      mkdirSync(join(h2.dataDir, 'm'), { recursive: true });
      execOk(['mount', '--bind', src, join(h2.dataDir, 'm')]);
      expect(findClusterLeftovers().length).to.be.greaterThan(5);

      await cleanupClusterLeftovers(); // no teardown: as the next run's startCluster does

      expect(findClusterLeftovers()).to.deep.equal([]);
      expect(isAlive(containerPid), 'container process ended').to.equal(false);
      expect(isAlive(agent.pid as number), 'process in the netns ended').to.equal(false);
      expect(spawnSync('docker', ['-H', 'unix:///var/run/docker.sock', 'version']).status, 'root dockerd still answers').to.equal(0);
    });
  });
});
