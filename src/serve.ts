import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server } from 'node:http';
import { createServer, request as httpRequest } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { createLocalApi } from './api/local-api';
import { BackendSlots } from './agent/backend-slots';
import type { Backend } from './agent/backends/backend';
import { createBackends, initBackends } from './agent/backends';
import type { BackendKind } from './agent/backends/registry';
import { Containers } from './agent/containers';
import { ControlAway } from './agent/control-away';
import { VolumeBook } from './agent/volume-book';
import { FailoverDuties } from './agent/failover-duties';
import { Copies } from './agent/copies';
import { HostDoctor } from './agent/host-doctor';
import { HostState } from './agent/host-state';
import { HostStatus } from './agent/host-status';
import { KeyedLock } from './agent/keyed-lock';
import { Mounts } from './agent/mounts';
import { MoveSource, MoveTarget } from './agent/move-sides';
import { reconcileHost } from './agent/reconciler';
import { Reclaimer } from './agent/reclaimer';
import { Snapshots } from './agent/snapshots';
import { ScheduleBook } from './agent/schedule-book';
import { Scheduler } from './agent/scheduler';
import { BackupSchedules } from './agent/backup-schedules';
import { RestoreDrills } from './agent/restore-drills';
import { DockerHost } from './agent/docker-host';
import { ContainerQuiescer } from './agent/quiesce';
import { COMPOSE_PROJECT_LABEL } from './agent/quiesce-plan';
import { CgroupFreezer, detectCgroupLayout } from './agent/cgroup-freezer';
import { Upkeep } from './agent/upkeep';
import { Banks } from './agent/banks';
import { Backups } from './agent/backups';
import { loadBankKit } from './agent/bank-kit';
import { UsageMeter } from './agent/usage';
import { VolumeService } from './agent/volume-service';
import type { Config } from './config/config';
import { LocalControl } from './control/control';
import { reclaimDefaults } from './volume/reclaim';
import { openDb, type Db } from './control/db';
import { FerryError } from './errors';
import { ProcessRunner, type Runner } from './exec/runner';
import { readToken } from './config/read-token';
import { createDashboard, type Dashboard } from './web/dashboard';
import { dashboardToken } from './web/web-token';
import { startWebListener, type WebListener, type WebRoute } from './web/web-listener';
import type { Logger } from './log';
import { AgentMetrics } from './metrics/agent-metrics';
import { ControlMetrics } from './metrics/control-metrics';
import { metricsRouter } from './metrics/metrics-router';
import { NO_METRICS, type MetricsSink } from './metrics/sink';
import { controlFacts } from './control/control-facts';
import { pluginRoutes } from './plugin/routes';
import { createPluginServer } from './plugin/server';
import type { ControlClient } from './wire/control-client';
import type { MoveRecord } from './wire/records';

/** The dataset agent of one host, in parts with one job each (see each class). */
export interface AgentParts {
  backends: BackendSlots;
  volumes: VolumeService;
  mounts: Mounts;
  copies: Copies;
  upkeep: Upkeep;
  status: HostStatus;
  doctor: HostDoctor;
  /** snap (issue 7 item 1): user, scheduled and replication snapshots, recorded in control's registry. */
  snapshots: Snapshots;
  /** policy (issue 7 item 3): the schedules of this host's volumes (node-cron), with retention. */
  scheduler: Scheduler;
  /** bank-ops (issue 8): the cluster's banks, and backups to them / restores from them. */
  banks: Banks;
  backups: Backups;
}

/** A running `ferry serve` (control + agent in one process) or `ferry agent` (control elsewhere). */
export interface Ferry {
  agent: AgentParts;
  /** The local state database (`ferry serve` only; an agent of a cluster keeps its state in control). */
  db?: Db;
  /** The web listener's URL (/metrics, the dashboard), unless web.listen is off. */
  webUrl?: string;
  /** Resolves when backends are up and reconciliation has run. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/** True when something accepts connections on the Unix socket at `path`. */
export function socketAnswers(path: string): Promise<boolean> {
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

/** One GET on dockerd's API socket. */
function dockerGet(socketPath: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, method: 'GET', timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
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
      // Unfiltered: only a list over all drivers makes dockerd keep a legacy plugin among its volume
      // drivers, which is what it reports to Swarm (a driver-filtered list does not).
      const status = await dockerGet(config.dockerSocket, '/volumes');
      if (status !== 200) throw new Error(`dockerd answered ${status}`);
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
  opts: { runner?: Runner; backends?: Map<BackendKind, Backend>; touchDockerd?: boolean } = {},
): Promise<Ferry> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(config.mountRoot, { recursive: true });
  const cluster = config.control.url !== undefined;
  const db = cluster ? undefined : openDb(join(config.dataDir, 'ferry.db'));
  // Cluster-only modules (ssh2, dockerode) load only in cluster mode: a single host does not pay for them.
  const clusterMode = cluster ? await import('./agent/cluster') : undefined;
  const control: ControlClient = db
    ? new LocalControl(db, {
        keepReplica: config.control.keepReplica,
        reclaim: reclaimDefaults(config.control),
        lease: { leaseSeconds: config.control.leaseSeconds, marginSeconds: config.control.leaseMarginSeconds },
      })
    : clusterMode!.remoteControl(config);
  const runner = opts.runner ?? new ProcessRunner(log.child({ component: 'exec' }));
  const backends = opts.backends ?? (await createBackends(config, runner, log));

  // The agent's parts, each built from those it needs: nothing is attached later.
  const node = config.nodeName;
  const agentLog = log.child({ component: 'agent' });
  // Metrics only when something can scrape them (web.listen off: no counting at all). Gauges are read
  // at each scrape from the parts below (the closures run only then, once every part exists).
  const metrics: AgentMetrics | undefined =
    config.web.listen === 'off'
      ? undefined
      : new AgentMetrics({
          node,
          volumes: () => control.listVolumes(),
          pools: async () => (await status.hostReport()).backends.map((b) => ({ backend: b.kind, ok: b.ok, totalBytes: b.totalBytes, freeBytes: b.freeBytes })),
          movesInFlight: (): number => clusterSide?.mover.inFlight() ?? 0,
        });
  const sink: MetricsSink = metrics ?? NO_METRICS;
  const lock = new KeyedLock();
  const state = new HostState(config.mountRoot);
  const slots = new BackendSlots(node, control);
  // This host's dockerd, when its socket is there (dockerode loads on first use): names the containers
  // behind leases (a refused rollback or remove names them), restarts moved ones, hooks and pauses.
  const dockerHost = existsSync(config.dockerSocket) ? new DockerHost(config.dockerSocket, log.child({ component: 'docker' })) : undefined;
  const containers = new Containers(node, control, dockerHost, agentLog);
  const copies = new Copies(node, control, slots, state, lock, agentLog);
  const clusterSide = clusterMode?.clusterSide(config, new MoveTarget(node, control, slots, state, containers), control, log, sink);
  const meter = new UsageMeter(control, agentLog);
  // fence: in a cluster, the agent's own records and lease, for when control is unreachable.
  const away = clusterSide && new ControlAway(node, config.control.url!, new VolumeBook(join(config.dataDir, 'volume-book.json'), agentLog), clusterSide.lease, control, lock, agentLog);
  const mounts = new Mounts(node, control, slots, state, lock, meter, containers, agentLog, clusterSide && { puller: clusterSide.mover, waitMs: clusterSide.mountWaitMs }, away);
  const reclaimer = new Reclaimer(node, control, slots, state, copies, lock, meter, agentLog);
  const volumes = new VolumeService(config, control, slots, copies, lock, meter, agentLog, reclaimer, away);
  const upkeep = new Upkeep(node, control, slots, state, lock, mounts, copies, containers, agentLog, reclaimer);
  const status = new HostStatus(node, control, slots, state);
  const doctor = new HostDoctor(config, control, slots, state, clusterSide && clusterMode!.clusterProbes(config, clusterSide.key));
  // group: containers paused by their cgroup freezer where this process reaches it; what a killed ferry froze is thawed now.
  const layout = detectCgroupLayout();
  const freezer = layout ? new CgroupFreezer(join(config.dataDir, 'frozen.json'), layout, agentLog.child({ part: 'freezer' })) : undefined;
  await freezer?.thawLeftovers();
  const quiescer = new ContainerQuiescer(node, control, dockerHost, agentLog.child({ part: 'quiesce' }), undefined, freezer);
  const snapshots = new Snapshots(node, control, slots, lock, agentLog, quiescer);
  const banks = new Banks(node, control, () => loadBankKit(join(config.dataDir, 'bank-work', 'spool')), agentLog.child({ part: 'banks' }));
  const backups = new Backups(node, control, slots, snapshots, volumes, banks, join(config.dataDir, 'bank-work'), config.defaults.backend, agentLog.child({ part: 'backups' }));
  // bank-policy (issue 8 items 4, 5): policies' scheduled backups and restore drills, fed by the scheduler's refresh and book.
  const book = new ScheduleBook(join(config.dataDir, 'schedules.json'), agentLog);
  const drills = new RestoreDrills(node, control, backups, dockerHost, volumes, book, basename(config.pluginSocket, '.sock'), agentLog.child({ part: 'drills' }));
  const backupSchedules = new BackupSchedules(node, control, backups, book, agentLog.child({ part: 'backup-schedules' }), drills);
  const scheduler = new Scheduler(
    node,
    control,
    snapshots,
    slots,
    lock,
    book,
    config.schedules.refreshSeconds * 1000,
    log.child({ component: 'scheduler' }),
    undefined,
    // group (issue 7 item 2): a tick's volumes of one Compose project are snapshotted together.
    dockerHost && (async (volumes) => (await dockerHost.containersWithVolumes(volumes)).map((c) => ({ volumes: c.volumes, project: c.labels[COMPOSE_PROJECT_LABEL] ?? null }))),
    backupSchedules,
  );
  const agent: AgentParts = { backends: slots, volumes, mounts, copies, upkeep, status, doctor, snapshots, scheduler, banks, backups };

  let startup!: () => void;
  let failStartup!: (err: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    startup = resolve;
    failStartup = reject;
  });
  ready.catch(() => undefined);
  const plugin = createPluginServer(pluginRoutes(volumes, mounts), ready, log.child({ component: 'plugin' }), sink);
  // Set once this host has joined the cluster (below); declared before the API that uses it.
  let joined: { stop(): Promise<void>; beatNow(): void } | undefined;
  // A move asked for through this host: the hosts with work to do hear of it now (Mover.announce);
  // when one of them is this host, a heartbeat here (none before it has joined) brings control's answer.
  const announceMove = (m: MoveRecord): void => clusterSide?.mover.announce(m, () => joined?.beatNow());
  const api = createServer(createLocalApi({ volumes, mounts, status, doctor, node, snapshots, reclaimer, banks, backups, moves: clusterSide && { announce: announceMove } }, control, log.child({ component: 'api' })));
  try {
    await listenUnix(plugin, config.pluginSocket, 0o660);
    await listenUnix(api, config.apiSocket, 0o600);
  } catch (err) {
    await close(plugin);
    db?.close();
    throw err;
  }
  log.info({ pluginSocket: config.pluginSocket, apiSocket: config.apiSocket, node: config.nodeName }, 'listening');
  // /metrics and the dashboard; a bad web setting stops ferry here, before any volume work.
  const webRoutes: WebRoute[] = [];
  // ferry serve is control too: its /metrics has the cluster's series (of one host) beside the agent's.
  if (metrics) webRoutes.push({ path: '/metrics', router: metricsRouter(db ? [metrics, new ControlMetrics(controlFacts(control, db), { processMetrics: false })] : [metrics]) });
  let web: WebListener | undefined;
  let dashboard: Dashboard | undefined;
  if (config.web.listen !== 'off') {
    const tokenFile = config.web.tokenFile ?? config.control.tokenFile;
    const webLog = log.child({ component: 'web' });
    try {
      // The dashboard always asks for a token; without one configured, serve makes <dataDir>/web-token.
      const login = dashboardToken(config, webLog);
      dashboard = createDashboard({ control, hostReport: () => status.hostReport() }, { token: login.token, where: login.file }, webLog);
      webRoutes.push(...dashboard.routes);
      web = await startWebListener(config.web.listen, tokenFile ? readToken(tokenFile) : undefined, webRoutes, webLog);
    } catch (err) {
      dashboard?.stop();
      await Promise.all([close(plugin), close(api)]);
      for (const p of [config.pluginSocket, config.apiSocket]) if (existsSync(p)) unlinkSync(p);
      db?.close();
      throw err;
    }
  }

  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  const started = (async () => {
    for (const [k, v] of await initBackends(backends, log)) slots.set(k, v);
    if (clusterMode && clusterSide) {
      const source = new MoveSource(node, control, slots, lock, mounts, copies, containers);
      joined = await clusterMode.joinCluster(config, clusterSide, source, control, log, sink, snapshots, away && { away, failovers: new FailoverDuties(node, control, slots, state, lock, agentLog) });
    }
    // bank-ops: what backups cut off by a crash left (scratch clones, their snapshots), before reconciliation sees them.
    const leftovers = await backups.cleanLeftovers();
    if (leftovers) log.info({ leftovers }, 'removed what cut-off backups left');
    // Records, disk and mount table into agreement before the first request (DESIGN: live restore).
    const report = await reconcileHost({
      node,
      mountRoot: config.mountRoot,
      control,
      backends: slots.asMap(),
      log: agentLog,
      backendFor: (kind) => slots.backendFor(kind),
      mountpointOf: (name) => state.mountpointOf(name),
      markMounted: (name) => state.markMounted(name),
      destroyDataset: (name, kind) => copies.destroyDataset(name, kind),
      destroyCopy: (name) => copies.destroyCopy(name),
    });
    state.setFindings(report);
    log.info({ actions: report.actions.length }, 'reconciled');
    startup();
    // In a cluster, the host's pools and findings go to control after each pass (its dashboard shows them).
    const maintain = (): void =>
      void upkeep
        .maintain()
        .then(async () => cluster && (await control.reportHost(await status.hostReport())))
        .catch((err: unknown) => log.warn({ err }, 'maintenance failed'));
    timer = setInterval(maintain, config.usageIntervalSeconds * 1000);
    timer.unref();
    maintain();
    // policy: schedules start once the volumes are known to be in order (the book's first, then control's).
    // Not awaited: a control out of reach must not hold up the rest (the book's schedules run meanwhile).
    // bank-policy: drills a crash cut off leave a container and a scratch volume; removed through dockerd, which asks
    // this plugin (so only now that it answers), before any new drill can start.
    const drillLeftovers = await drills.cleanLeftovers().catch((err: unknown) => (log.warn({ err }, 'cannot remove what cut-off restore drills left'), 0));
    if (drillLeftovers) log.info({ leftovers: drillLeftovers }, 'removed what cut-off restore drills left');
    if (!stopping) void scheduler.start().catch((err: unknown) => log.error({ err }, 'schedules failed to start'));
    if (opts.touchDockerd !== false) touchDockerd(config, log, () => stopping);
  })();
  started.catch((err: unknown) => {
    log.fatal({ err }, 'startup failed');
    failStartup(new FerryError('BACKEND_UNAVAILABLE', `ferry failed to start: ${(err as Error).message}; see its log`, { cause: err }));
  });

  return {
    agent,
    db,
    webUrl: web?.url,
    ready: started,
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      await scheduler.stop();
      await started.catch(() => undefined);
      dashboard?.stop();
      await Promise.all([close(plugin), close(api), web?.stop(), joined?.stop()]);
      for (const p of [config.pluginSocket, config.apiSocket]) if (existsSync(p)) unlinkSync(p);
      db?.close();
    },
  };
}

