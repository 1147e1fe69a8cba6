import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { requireDockerd, TEST_IMAGE } from '../support/docker';
import { cleanupDir, ownerAlive, ownerStamp, ownStamp, requireRootAndTools, TEST_PREFIX } from '../support/host';
import { dockerdPaths, startDockerd, stopDockerd, type DockerdPaths } from './dockerd';
import { execAsync, execOk, execSync, sleep, type ExecOptions, type Run } from './exec';
import {
  addHostNetwork,
  BRIDGE_IP,
  createBridge,
  findNetworkLeftovers,
  hostIp,
  inNetns,
  netnsName,
  netnsPath,
  removeTestNetwork,
  setLink,
  testNetnsInodes,
} from './netns';
import { findHostCgroups, findHostProcesses, isAlive, killAll, pidsInHostCgroups, removeHostCgroups, signal, waitGone } from './procs';

/*
 * Test hosts on this machine, for cluster tests: each a network namespace on a shared bridge with
 * its own dockerd (own mount namespace, own plugin dir, own containerd), optionally in one Swarm.
 * See DESIGN.md, "Testing against real things". One cluster at a time: names and subnet are fixed.
 */

/** Every cluster's dir starts with this, so that a killed run's leftovers can be found. */
export const CLUSTER_DIR_PREFIX = `${TEST_PREFIX}cluster-`;
const REPO_ROOT = resolve(__dirname, '../../..');
const ROOT_DOCKER = ['docker', '-H', 'unix:///var/run/docker.sock'];
const MAX_HOSTS = 50;
/** In each cluster dir: the pid of the process that made it. */
const OWNER_FILE = 'owner.pid';

export interface StartClusterOptions {
  /** Number of hosts, h1..hN (default 3). */
  hosts?: number;
  /** Form a Swarm: h1 inits, the others join (default false: it takes a few seconds). */
  swarm?: boolean;
  /** With swarm: how many hosts are managers, h1 first (default 1). 3 keeps quorum when one host is cut. */
  managers?: number;
  /**
   * With swarm: more `docker swarm init` flags. ['--dispatcher-heartbeat', '1s'] makes a cut node
   * Down in about 3 s instead of about 13 s (it must be set at init: workers learn it from heartbeats).
   */
  swarmInitArgs?: readonly string[];
  /** Load TEST_IMAGE into every host (default true). */
  image?: boolean;
  /** More flags for every host's dockerd. */
  dockerdArgs?: readonly string[];
}

export class TestHost {
  /** h1, h2, ... */
  readonly name: string;
  /** The host's hostname, as dockerd and Swarm (node.hostname) see it: ferry-h1, ... */
  readonly hostname: string;
  readonly ip: string;
  /** Network namespace name (ip netns) and its path for nsenter --net. */
  readonly netns: string;
  readonly netnsPath: string;
  readonly dir: string;
  readonly dockerSocket: string;
  /** For DOCKER_HOST or dockerode: unix://<dockerSocket>. */
  readonly dockerHost: string;
  /** This host's /run/docker/plugins: its ferry agent puts ferry.sock here. */
  readonly pluginDir: string;
  /** A dir for this host's ferry agent; mounts made under it (in the root mount namespace) reach this host's dockerd. */
  readonly dataDir: string;
  readonly dockerdLog: string;
  private readonly paths: DockerdPaths;
  private dockerdPid?: number;
  private readonly children: ChildProcess[] = [];

  constructor(
    readonly n: number,
    clusterDir: string,
  ) {
    this.name = `h${n}`;
    this.hostname = netnsName(n);
    this.ip = hostIp(n);
    this.netns = netnsName(n);
    this.netnsPath = netnsPath(n);
    this.dir = join(clusterDir, this.name);
    this.paths = dockerdPaths(this.dir);
    this.dockerSocket = this.paths.socket;
    this.dockerHost = `unix://${this.paths.socket}`;
    this.pluginDir = this.paths.pluginDir;
    this.dataDir = join(this.dir, 'data');
    this.dockerdLog = this.paths.log;
  }

  /** The docker CLI against this host's dockerd, without blocking the event loop. Never rejects. */
  docker(args: readonly string[], opts: ExecOptions = {}): Promise<Run> {
    return execAsync(['docker', '-H', this.dockerHost, ...args], opts);
  }

  /** Like docker() but resolves to stdout, and rejects with stderr when the command fails. */
  async dockerOk(args: readonly string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.docker(args, opts);
    if (r.code !== 0) throw new Error(`docker on ${this.name} ${args.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  /** The docker CLI, synchronously: only when nothing in this process must answer dockerd meanwhile. */
  dockerSync(args: readonly string[], opts: ExecOptions = {}): Run {
    return execSync(['docker', '-H', this.dockerHost, ...args], opts);
  }

  /** Runs a command in this host's network namespace (root mount namespace) and waits for it. */
  exec(argv: readonly string[], opts: ExecOptions = {}): Promise<Run> {
    return execAsync([...inNetns(this.n), ...argv], opts);
  }

  /**
   * Spawns a long-running process (a ferry agent) in this host's network namespace and the ROOT
   * mount namespace, so that its mounts propagate to this host's dockerd. Teardown ends it if it
   * still runs.
   */
  spawnInNetns(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const full = [...inNetns(this.n), ...argv];
    const child = spawn(full[0], full.slice(1), opts);
    this.children.push(child);
    return child;
  }

  /** Cuts this host off the bridge (its address stays; packets to and from it are lost). */
  linkDown(): void {
    setLink(this.n, false);
  }

  linkUp(): void {
    setLink(this.n, true);
  }

  /** dockerd's pid, while it runs. */
  get pid(): number | undefined {
    return this.dockerdPid;
  }

  /** Starts this host's dockerd (again, after stopDockerd) and waits until it answers. */
  async startDockerd(extraArgs?: readonly string[]): Promise<void> {
    if (this.dockerdPid !== undefined && isAlive(this.dockerdPid)) throw new Error(`dockerd of ${this.name} already runs (pid ${this.dockerdPid})`);
    mkdirSync(this.dataDir, { recursive: true });
    this.dockerdPid = await startDockerd({ n: this.n, hostname: this.hostname, ip: this.ip, paths: this.paths, extraArgs });
  }

  /** Stops this host's dockerd: SIGTERM, SIGKILL after `graceMs`. */
  async stopDockerd(graceMs?: number): Promise<void> {
    if (this.dockerdPid !== undefined) await stopDockerd(this.dockerdPid, graceMs);
    this.dockerdPid = undefined;
  }

  /** Ends processes started by spawnInNetns: SIGTERM, then SIGKILL after 5 s. */
  async stopChildren(): Promise<void> {
    const pids = this.children.filter((c) => c.exitCode === null && c.signalCode === null && c.pid !== undefined).map((c) => c.pid as number);
    pids.forEach((p) => signal(p, 'SIGTERM'));
    const left = await waitGone(pids, 5_000);
    if (left.length) await killAll(left);
  }
}

export interface SwarmOptions {
  /** How many hosts are managers, h1 first (default 1). */
  managers?: number;
  /** More `docker swarm init` flags. */
  initArgs?: readonly string[];
}

export interface Cluster {
  /** The cluster's dir: a shared bind mount holding each host's dir (h1, h2, ...). */
  readonly dir: string;
  readonly hosts: TestHost[];
  /** The root namespace's address on the test bridge: what hosts reach this test process at. */
  readonly bridgeIp: string;
  /** Looks a host up by name (h2) or number (2). */
  host(nameOrNumber: string | number): TestHost;
  /** Forms a Swarm: h1 inits, the first `managers` hosts manage, the others work; waits until all are Ready. */
  formSwarm(opts?: SwarmOptions): Promise<void>;
  /** Stops everything and removes every trace; throws naming whatever it could not remove. */
  teardown(): Promise<void>;
}

class RunningCluster implements Cluster {
  readonly bridgeIp = BRIDGE_IP;

  constructor(
    readonly dir: string,
    readonly hosts: TestHost[],
  ) {}

  host(nameOrNumber: string | number): TestHost {
    const h = this.hosts.find((x) => x.name === nameOrNumber || x.n === nameOrNumber);
    if (!h) throw new Error(`no test host ${nameOrNumber}: this cluster has ${this.hosts.map((x) => x.name).join(', ')}`);
    return h;
  }

  async formSwarm(opts: SwarmOptions = {}): Promise<void> {
    const managers = opts.managers ?? 1;
    const [first, ...rest] = this.hosts;
    await first.dockerOk(['swarm', 'init', '--advertise-addr', first.ip, '--listen-addr', `${first.ip}:2377`, ...(opts.initArgs ?? [])]);
    const managerToken = await first.dockerOk(['swarm', 'join-token', '-q', 'manager']);
    const workerToken = await first.dockerOk(['swarm', 'join-token', '-q', 'worker']);
    // One at a time: a manager joining while another joins can stall Raft.
    for (const h of rest) {
      const token = h.n <= managers ? managerToken : workerToken;
      await h.dockerOk(['swarm', 'join', '--token', token, '--advertise-addr', h.ip, '--listen-addr', `${h.ip}:2377`, `${first.ip}:2377`]);
    }
    const end = Date.now() + 60_000;
    for (;;) {
      const r = await first.docker(['node', 'ls', '--format', '{{.Hostname}} {{.Status}}']);
      const ready = r.stdout.split('\n').filter((l) => l.endsWith(' Ready')).length;
      if (ready === this.hosts.length) return;
      if (Date.now() > end) throw new Error(`swarm: ${ready} of ${this.hosts.length} nodes Ready after 60 s: ${r.stdout || r.stderr}`);
      await sleep(200);
    }
  }

  async teardown(): Promise<void> {
    // Containers first: dockerd would give each its 10 s stop timeout at shutdown. dockerd sees
    // them exit and sends the Unmounts while the hosts' agents still answer; then the dockerds.
    await killAll(pidsInHostCgroups());
    // A clean dockerd shutdown takes 1-3 s; a swarm manager with a cut peer can take 10 s or more,
    // and nothing of its state outlives the teardown: SIGKILL after 5 s.
    await Promise.all(this.hosts.map((h) => h.stopDockerd(5_000)));
    await Promise.all(this.hosts.map((h) => h.stopChildren()));
    await cleanupClusterLeftovers();
    const left = findClusterLeftovers();
    if (left.length) throw new Error(`teardown left: ${left.join('; ')}`);
  }
}

/**
 * Brings up `hosts` test hosts (after removing what a killed earlier run left) and, if asked,
 * a Swarm across them. On failure it removes what it made and rethrows.
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const count = opts.hosts ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) throw new Error(`hosts must be 1..${MAX_HOSTS}, not ${count}`);
  requireClusterTools();
  await cleanupClusterLeftovers();
  const dir = mkdtempSync(CLUSTER_DIR_PREFIX);
  writeFileSync(join(dir, OWNER_FILE), `${ownerStamp()}\n`);
  try {
    // The root mount is private here: a shared bind of our dir is what lets mounts made under it
    // (by ferry agents, in the root namespace) propagate into the hosts' dockerd namespaces (slaves).
    execOk(['mount', '--bind', dir, dir]);
    execOk(['mount', '--make-rshared', dir]);
    createBridge();
    const hosts = Array.from({ length: count }, (_, i) => new TestHost(i + 1, dir));
    for (const h of hosts) addHostNetwork(h.n);
    await Promise.all(hosts.map((h) => h.startDockerd(opts.dockerdArgs)));
    if (opts.image ?? true) await loadTestImage(dir, hosts);
    const cluster = new RunningCluster(dir, hosts);
    if (opts.swarm) await cluster.formSwarm({ managers: opts.managers, initArgs: opts.swarmInitArgs });
    return cluster;
  } catch (err) {
    await cleanupClusterLeftovers().catch(() => undefined);
    throw err;
  }
}

/** Fails, saying what is missing, when test hosts cannot be made here. */
export function requireClusterTools(): void {
  requireRootAndTools('ip', 'nsenter', 'unshare', 'mount', 'umount', 'hostname', 'dockerd', 'docker');
  if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables') && readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1') {
    // Bridged frames pass the root FORWARD chain: the harness must add its ACCEPT rule.
    requireRootAndTools('iptables');
  }
}

/** TEST_IMAGE from the root dockerd (read only: docker save), loaded into every host. */
async function loadTestImage(dir: string, hosts: TestHost[]): Promise<void> {
  const tar = join(dir, 'test-image.tar');
  if (execSync([...ROOT_DOCKER, 'image', 'inspect', TEST_IMAGE]).code !== 0) requireDockerd(REPO_ROOT); // builds it, or says why not
  const saved = await execAsync([...ROOT_DOCKER, 'save', '-o', tar, TEST_IMAGE]);
  if (saved.code !== 0) throw new Error(`cannot save ${TEST_IMAGE} from the root dockerd: ${saved.stderr}`);
  await Promise.all(hosts.map((h) => h.dockerOk(['load', '-q', '-i', tar])));
}

/**
 * Names are fixed (ferry-br0, ferry-hN, 10.77.0.0/24), so a second cluster cannot coexist with
 * one that another live test run (an engineer's, on a shared machine) is using: say so rather
 * than pull it from under that run. A dead owner means a killed run: fair game.
 */
function refuseLiveClusters(): void {
  for (const dir of clusterDirs()) {
    let stamp: string;
    try {
      stamp = readFileSync(join(dir, OWNER_FILE), 'utf8').trim();
    } catch {
      continue;
    }
    if (!ownStamp(stamp) && ownerAlive(stamp)) {
      const owner = Number(stamp.split('.')[0]);
      const cmd = readFileSync(`/proc/${owner}/cmdline`, 'utf8').split('\0').join(' ').trim();
      throw new Error(
        `the test cluster at ${dir} belongs to running process ${owner} (${cmd.slice(0, 100)}): only one test cluster fits on a machine; ` +
          'wait for that run to end, or stop it (or call cleanupClusterLeftovers({ force: true }))',
      );
    }
  }
}

function clusterDirs(): string[] {
  return readdirSync('/tmp')
    .map((f) => join('/tmp', f))
    .filter((p) => p.startsWith(CLUSTER_DIR_PREFIX));
}

function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(prefix));
}

/**
 * Removes everything test hosts (of this run or of a killed one) left: processes (dockerds,
 * containerds, shims, containers, whatever runs in a test network namespace), cgroups, network
 * namespaces, veths, the bridge, the iptables rule, mounts and dirs. Never touches the root
 * dockerd or its containers: it matches only the cluster dir prefix, the test namespaces and
 * the test cgroups.
 */
export async function cleanupClusterLeftovers(opts: { force?: boolean } = {}): Promise<void> {
  if (!opts.force) refuseLiveClusters();
  const procs = findHostProcesses(CLUSTER_DIR_PREFIX, testNetnsInodes()).map((p) => p.pid);
  await killAll([...new Set([...procs, ...pidsInHostCgroups()])]);
  // Shims reparented during the kill may have been missed; a second sweep catches them.
  await killAll([...findHostProcesses(CLUSTER_DIR_PREFIX, testNetnsInodes()).map((p) => p.pid), ...pidsInHostCgroups()]);
  await removeHostCgroups();
  removeTestNetwork();
  for (const d of clusterDirs()) cleanupDir(d);
}

/** Describes, one line each, whatever of any test cluster exists now; empty when the machine is clean. */
export function findClusterLeftovers(): string[] {
  return [
    ...findNetworkLeftovers(),
    ...findHostProcesses(CLUSTER_DIR_PREFIX, testNetnsInodes()).map((p) => `process ${p.pid}: ${p.cmdline.slice(0, 120)}`),
    ...pidsInHostCgroups().map((p) => `process ${p} in a test host cgroup`),
    ...findHostCgroups().map((c) => `cgroup ${c}`),
    ...mountsUnder(CLUSTER_DIR_PREFIX).map((m) => `mount ${m}`),
    ...clusterDirs().map((d) => `dir ${d}`),
  ];
}
