import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import { basename, dirname, join } from 'node:path';
import Docker from 'dockerode';
import { Agent, type BackendSlot } from './agent/agent';
import type { BackendKind, FullBackend } from './agent/backends/backend';
import { createBackends, initBackends } from './agent/backends';
import type { Config } from './config/config';
import { createApi } from './control/api';
import { LocalControl, type ControlClient } from './control/control';
import { openDb, type Db } from './control/db';
import { readToken } from './control/service';
import { httpControl } from './agent/http-control';
import { Membership } from './agent/membership';
import { Mover } from './agent/mover';
import { DockerHost } from './agent/docker-host';
import { SourceTransferHandler } from './agent/transfer-handler';
import { loadOrCreateKey } from './transfer/keys';
import { TransferServer } from './transfer/server';
import { FerryError } from './errors';
import { ProcessRunner, type Runner } from './exec/runner';
import type { Logger } from './log';
import { pluginRoutes } from './plugin/routes';
import { createPluginServer } from './plugin/server';

/** A running `ferry serve` (control + agent in one process) or `ferry agent` (control elsewhere). */
export interface Ferry {
  agent: Agent;
  /** The local state database (`ferry serve` only; an agent of a cluster keeps its state in control). */
  db?: Db;
  /** Resolves when backends are up and reconciliation has run. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Listens on a Unix socket, removing a stale one; refuses when another process answers there. */
async function listenUnix(server: Server, path: string, mode: number): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path)) {
    if (await socketAnswers(path)) {
      throw new FerryError('INVALID_CONFIG', `another process already serves ${path}: is ferry already running? (ferry status)`);
    }
    unlinkSync(path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, mode);
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Asks dockerd for ferry's volumes, so that it activates the plugin (Swarm schedules onto a node only
 * once it has). dockerd may start after ferry (systemd orders plugins first): retry with backoff.
 */
function touchDockerd(config: Config, log: Logger, stopped: () => boolean): void {
  // dockerd names a legacy plugin after its socket file: ferry.sock is driver "ferry".
  const driver = basename(config.pluginSocket, '.sock');
  let delayMs = 1000;
  const attempt = async (): Promise<void> => {
    if (stopped()) return;
    try {
      if (!existsSync(config.dockerSocket)) throw new Error(`no socket at ${config.dockerSocket}`);
      await new Docker({ socketPath: config.dockerSocket, timeout: 30_000 }).listVolumes({ filters: { driver: [driver] } });
      log.info({ driver }, 'dockerd activated the plugin');
    } catch (err) {
      log.info({ err: (err as Error).message, retryInMs: delayMs }, 'dockerd not reachable yet; the plugin activates on first use');
      delayMs = Math.min(delayMs * 2, 60_000);
      setTimeout(() => void attempt(), delayMs).unref();
    }
  };
  void attempt();
}

/**
 * Starts control + agent in one process. The plugin socket listens first (dockerd retries a missing
 * socket for 30 s on every lookup); backends, pools and reconciliation follow, and requests wait.
 */
export async function startFerry(
  config: Config,
  log: Logger,
  opts: { runner?: Runner; backends?: Map<BackendKind, FullBackend>; touchDockerd?: boolean } = {},
): Promise<Ferry> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(config.mountRoot, { recursive: true });
  const cluster = config.control.url !== undefined;
  const db = cluster ? undefined : openDb(join(config.dataDir, 'ferry.db'));
  const control: ControlClient = db
    ? new LocalControl(db)
    : httpControl({ url: config.control.url!, token: readToken(config.control.tokenFile), tls: config.control.tls });
  const runner = opts.runner ?? new ProcessRunner(log.child({ component: 'exec' }));
  const backends = opts.backends ?? createBackends(config, runner, log);
  const slots = new Map<BackendKind, BackendSlot>();
  const agent = new Agent(config, control, slots, log.child({ component: 'agent' }));

  let startup!: () => void;
  let failStartup!: (err: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    startup = resolve;
    failStartup = reject;
  });
  ready.catch(() => undefined);
  const plugin = createPluginServer(pluginRoutes(agent), ready, log.child({ component: 'plugin' }));
  const api = createServer(createApi(agent, control, log.child({ component: 'api' })));
  try {
    await listenUnix(plugin, config.pluginSocket, 0o660);
    await listenUnix(api, config.apiSocket, 0o600);
  } catch (err) {
    await close(plugin);
    db?.close();
    throw err;
  }
  log.info({ pluginSocket: config.pluginSocket, apiSocket: config.apiSocket, node: config.nodeName }, 'listening');

  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  let transfer: TransferServer | undefined;
  let membership: Membership | undefined;
  const started = (async () => {
    for (const [k, v] of await initBackends(backends, log)) slots.set(k, v);
    if (cluster) ({ transfer, membership } = await joinCluster(config, agent, control, log));
    const actions = await agent.reconcile();
    log.info({ actions: actions.length }, 'reconciled');
    startup();
    timer = setInterval(() => {
      agent.maintain().catch((err: unknown) => log.warn({ err }, 'maintenance failed'));
    }, config.usageIntervalSeconds * 1000);
    timer.unref();
    void agent.maintain().catch((err: unknown) => log.warn({ err }, 'maintenance failed'));
    if (opts.touchDockerd !== false) touchDockerd(config, log, () => stopping);
  })();
  started.catch((err: unknown) => {
    log.fatal({ err }, 'startup failed');
    failStartup(new FerryError('BACKEND_UNAVAILABLE', `ferry failed to start: ${(err as Error).message}; see its log`, { cause: err }));
  });

  return {
    agent,
    db,
    ready: started,
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      await started.catch(() => undefined);
      membership?.stop();
      await Promise.all([close(plugin), close(api), transfer?.close()]);
      for (const p of [config.pluginSocket, config.apiSocket]) if (existsSync(p)) unlinkSync(p);
      db?.close();
    },
  };
}

/**
 * Cluster mode: the transfer service (the source side of moves), the mover (the target side), and
 * registration with control, retried until control answers.
 */
async function joinCluster(
  config: Config,
  agent: Agent,
  control: ControlClient,
  log: Logger,
): Promise<{ transfer: TransferServer; membership: Membership }> {
  const key = loadOrCreateKey(config.transfer.keyFile);
  const peers = async (): Promise<Map<string, string>> =>
    new Map((await control.listNodes()).filter((n) => n.transferKey && n.name !== config.nodeName).map((n) => [n.name, n.transferKey!]));
  const transfer = new TransferServer(key, peers, new SourceTransferHandler(agent, control), log.child({ component: 'transfer' }));
  const [host, port] = [config.transfer.listen.slice(0, config.transfer.listen.lastIndexOf(':')), Number(config.transfer.listen.split(':').pop())];
  const bound = await transfer.listen(port, host);
  const address = config.transfer.advertise ?? `${host}:${bound}`;
  const mover = new Mover(agent, control, key.privateKey, log.child({ component: 'mover' }), config.moves.stepDelayMs);
  agent.attachMover(mover, config.moves.mountWaitSeconds * 1000);
  if (existsSync(config.dockerSocket)) agent.attachDocker(new DockerHost(config.dockerSocket, log.child({ component: 'docker' })));
  const membership = new Membership(
    control,
    { name: config.nodeName, address, transferKey: key.publicKey },
    mover,
    agent,
    config.control.heartbeatSeconds * 1000,
    log.child({ component: 'membership' }),
  );
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      await membership.start();
      break;
    } catch (err) {
      log.warn({ err: (err as Error).message, retryInMs: delay }, 'cannot register with control yet');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  return { transfer, membership };
}
