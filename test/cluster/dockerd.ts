import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execAsync, sleep } from './exec';
import { inNetns } from './netns';
import { cgroupParent, isAlive, signal, waitGone } from './procs';

/** Where one test host keeps its dockerd's state; every path is under the host's dir. */
export interface DockerdPaths {
  /** Bound over /run/docker/plugins in the dockerd's mount namespace. */
  pluginDir: string;
  /** Bound over /etc/docker: the machine's key.json, daemon.json and plugin specs are not this host's. */
  etcDir: string;
  /** An empty dir bound over /usr/lib/docker/plugins (plugin specs) where that exists. */
  emptyDir: string;
  dataRoot: string;
  execRoot: string;
  pidFile: string;
  socket: string;
  configFile: string;
  log: string;
}

export function dockerdPaths(hostDir: string): DockerdPaths {
  return {
    pluginDir: join(hostDir, 'plugins'),
    etcDir: join(hostDir, 'etc-docker'),
    emptyDir: join(hostDir, 'empty'),
    dataRoot: join(hostDir, 'docker'),
    execRoot: join(hostDir, 'exec'),
    pidFile: join(hostDir, 'docker.pid'),
    socket: join(hostDir, 'docker.sock'),
    configFile: join(hostDir, 'daemon.json'),
    log: join(hostDir, 'dockerd.log'),
  };
}

/*
 * Runs inside the new mount and UTS namespaces, before exec'ing dockerd. Arguments, not string
 * interpolation: $1 hostname, $2 plugin dir, $3 /etc/docker stand-in, $4 empty dir, then dockerd's argv.
 */
const NAMESPACE_SETUP = [
  'set -e',
  'hostname "$1"',
  // The only plugin sockets this dockerd discovers are its host's.
  'mount --bind "$2" /run/docker/plugins',
  'mount --bind "$3" /etc/docker',
  'if [ -d /usr/lib/docker/plugins ]; then mount --bind "$4" /usr/lib/docker/plugins; fi',
  // dockerd 20.10 uses a system containerd when its socket exists; hide it so that each dockerd
  // starts its own (under its exec-root), whose shims and mounts live in this namespace.
  'if [ -S /run/containerd/containerd.sock ]; then mount -t tmpfs -o mode=0711 tmpfs /run/containerd; fi',
  'shift 4',
  'exec "$@"',
].join('\n');

export interface StartDockerdOptions {
  n: number;
  hostname: string;
  ip: string;
  paths: DockerdPaths;
  /** More dockerd flags (for example --live-restore). */
  extraArgs?: readonly string[];
}

/**
 * dockerd for host n: in the host's network namespace, in a new mount namespace that is a slave
 * of the root one (so mounts that the host's ferry agent makes in the root namespace reach it,
 * and dockerd's own mounts stay inside), with its own hostname (swarm's node.hostname).
 */
export function dockerdArgv(o: StartDockerdOptions): string[] {
  const p = o.paths;
  const dockerd = [
    'dockerd',
    '--config-file', p.configFile, // "{}": nothing from the machine's /etc/docker/daemon.json
    '--data-root', p.dataRoot,
    '--exec-root', p.execRoot, // also holds its managed containerd's socket and state
    '--pidfile', p.pidFile,
    '-H', `unix://${p.socket}`,
    '--iptables=false', // the root namespace's firewall is the root dockerd's, and the host netns needs none
    '--ip6tables=false',
    '--bridge=none', // no docker0; containers get a loopback-only network unless told otherwise
    '--exec-opt', 'native.cgroupdriver=cgroupfs', // so that --cgroup-parent is a plain path we can clean up
    '--cgroup-parent', cgroupParent(o.n),
    // Seconds dockerd waits at shutdown for containers without a stop timeout of their own; a
    // plain `docker run` container still gets 10 s, so teardown kills containers first.
    '--shutdown-timeout', '2',
    '--swarm-default-advertise-addr', o.ip,
    ...(o.extraArgs ?? []),
  ];
  return [
    ...inNetns(o.n),
    'unshare', '--mount', '--uts', '--propagation', 'slave', '--',
    'sh', '-c', NAMESPACE_SETUP, 'ferry-test-host', o.hostname, p.pluginDir, p.etcDir, p.emptyDir,
    ...dockerd,
  ];
}

/** Starts dockerd and waits until it answers; returns its pid. Throws with the log's tail if it does not come up. */
export async function startDockerd(o: StartDockerdOptions): Promise<number> {
  const p = o.paths;
  for (const d of [p.pluginDir, p.etcDir, p.emptyDir, p.dataRoot, p.execRoot]) mkdirSync(d, { recursive: true });
  writeFileSync(p.configFile, '{}\n');
  // Bind targets in the root filesystem; docker.io creates both, a machine without a root dockerd may not have them.
  mkdirSync('/run/docker/plugins', { recursive: true });
  mkdirSync('/etc/docker', { recursive: true });
  const log = openSync(p.log, 'a');
  const argv = dockerdArgv(o);
  // nsenter, unshare and sh each exec the next: the child's pid is dockerd's. Detached, so that
  // it is never part of mocha's process group; cleanup finds it by its cmdline.
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start dockerd for ${o.hostname}: ${argv[0]} did not start`);
  const end = Date.now() + 60_000;
  for (;;) {
    if (!isAlive(pid)) throw new Error(`dockerd of ${o.hostname} exited during start; ${logTail(p.log)}`);
    if (existsSync(p.socket)) {
      const r = await execAsync(['docker', '-H', `unix://${p.socket}`, 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
      if (r.code === 0) return pid;
    }
    if (Date.now() > end) throw new Error(`dockerd of ${o.hostname} did not answer within 60 s; ${logTail(p.log)}`);
    await sleep(150);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when dockerd is gone. Its managed containerd stops with it. */
export async function stopDockerd(pid: number, graceMs = 15_000): Promise<void> {
  signal(pid, 'SIGTERM');
  const alive = await waitGone([pid], graceMs);
  if (alive.length) {
    signal(pid, 'SIGKILL');
    await waitGone([pid], 10_000);
  }
}

function logTail(path: string): string {
  try {
    return `last lines of ${path}:\n${readFileSync(path, 'utf8').split('\n').slice(-15).join('\n')}`;
  } catch {
    return `no log at ${path}`;
  }
}
