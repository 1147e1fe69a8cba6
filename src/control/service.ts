import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../config/config';
import { readToken } from '../config/read-token';
import type { Logger } from '../log';
import { ControlMetrics } from '../metrics/control-metrics';
import { metricsRouter } from '../metrics/metrics-router';
import { createClusterApi } from './cluster-api';
import { LocalControl } from './control';
import { reclaimDefaults } from '../volume/reclaim';
import { controlFacts } from './control-facts';
import { openDb, type Db } from './db';
import { createDashboard } from '../web/dashboard';
import type { WebRoute } from '../web/web-listener';

/** How often control chooses standbys and checks their lag (replicate). */
const REPLICATION_CHECK_MS = 1000;

/** A running `ferry control`. */
export interface ControlService {
  control: LocalControl;
  db: Db;
  port: number;
  stop(): Promise<void>;
}

/** Starts the control service: SQLite state, the REST API over TCP (mutual TLS when configured). */
export async function startControl(config: Config, log: Logger): Promise<ControlService> {
  const token = readToken(config.control.tokenFile);
  const db = openDb(join(config.dataDir, 'control.db'));
  const control = new LocalControl(db, {
    keepReplica: config.control.keepReplica,
    reclaim: reclaimDefaults(config.control),
    lease: { leaseSeconds: config.control.leaseSeconds, marginSeconds: config.control.leaseMarginSeconds },
  });
  // The dashboard at /ui/ and /metrics on the same listener, their data under the cluster token.
  const dashboard = createDashboard({ control }, { token, where: 'control.tokenFile (the cluster token)' }, log.child({ component: 'web' }));
  const metrics: WebRoute = { path: '/metrics', router: metricsRouter([new ControlMetrics(controlFacts(control, db))]) };
  const app = createClusterApi(control, token, log.child({ component: 'control-api' }), [...dashboard.routes, metrics]);
  const tls = config.control.tls;
  const server: Server = tls
    ? createHttpsServer(
        { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), requestCert: true, rejectUnauthorized: true },
        app,
      )
    : createHttpServer(app);
  const [host, portText] = [config.control.listen.slice(0, config.control.listen.lastIndexOf(':')), config.control.listen.split(':').pop()!];
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ listen: `${host}:${port}`, tls: !!tls }, 'control listening');
  const downMs = config.control.downAfterSeconds * 1000;
  const timer = setInterval(() => {
    for (const node of control.markSilentNodesDown(downMs)) log.warn({ node }, 'node marked down: no heartbeat');
  }, Math.min(downMs / 2, 5000));
  timer.unref();
  // replicate: standbys chosen and lag events recorded once a second (a lag is read against whole-second RPOs).
  const replication = setInterval(() => {
    try {
      for (const t of control.superviseReplication()) log.info({ volume: t.volume, standby: t.node, kind: t.kind }, t.late ? 'standby late' : 'standby caught up');
    } catch (err) {
      log.warn({ err }, 'replication check failed');
    }
  }, REPLICATION_CHECK_MS);
  replication.unref();
  // fence: volumes of down hosts with failover=auto are promoted once their primary's lease is gone.
  const failover = setInterval(() => {
    try {
      for (const { volume, decision } of control.superviseFailover()) {
        if (decision.act === 'promote') log.warn({ volume, to: decision.to, snapshot: decision.snapshot, lostFrom: decision.lostFrom, lostTo: decision.lostTo }, 'volume failed over');
        else log.debug({ volume, decision }, 'failover check');
      }
    } catch (err) {
      log.warn({ err }, 'failover check failed');
    }
  }, 1000);
  failover.unref();
  return {
    control,
    db,
    port,
    async stop() {
      clearInterval(timer);
      clearInterval(replication);
      clearInterval(failover);
      dashboard.stop();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      db.close();
    },
  };
}
