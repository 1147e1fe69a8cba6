import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Config } from '../config/config';
import { readToken } from '../config/read-token';
import type { Logger } from '../log';
import type { MetricsSink } from '../metrics/sink';
import { TransferClient } from '../transfer/client';
import { loadOrCreateKey, type TransferKey } from '../transfer/keys';
import { TransferServer } from '../transfer/server';
import type { ControlClient } from '../wire/control-client';
import type { ClusterProbes, ControlProbe } from './host-doctor';
import { httpControl } from './http-control';
import { Membership } from './membership';
import type { ControlAway } from './control-away';
import type { FailoverDuties } from './failover-duties';
import { PrimaryLease } from './primary-lease';
import { KeyedLock } from './keyed-lock';
import type { MoveSource } from './move-sides';
import { Mover, type TargetSide } from './mover';
import { SourceTransferHandler } from './transfer-handler';
import { Replicator } from './replicator';
import type { Snapshots } from './snapshots';

/** The control client of an agent whose control service runs elsewhere. */
export function remoteControl(config: Config): ControlClient {
  return httpControl({ url: config.control.url!, token: readToken(config.control.tokenFile), tls: config.control.tls });
}

/** What cluster mode makes before the agent's mounts: the transfer key and the Mover (the target side of moves). */
export interface ClusterSide {
  key: TransferKey;
  mover: Mover;
  /** fence: this host's time-bound lease on its primary volumes, renewed by heartbeats. */
  lease: PrimaryLease;
  /** How long a Mount waits for a move before it answers with its progress. */
  mountWaitMs: number;
  /** One stream into a volume's pool here at a time: a move's pre-copy or a replication round. */
  incoming: KeyedLock;
}

export function clusterSide(config: Config, target: TargetSide, control: ControlClient, log: Logger, metrics: MetricsSink): ClusterSide {
  const key = loadOrCreateKey(config.transfer.keyFile);
  const incoming = new KeyedLock();
  const mover = new Mover(target, control, key.privateKey, log.child({ component: 'mover' }), config.moves, undefined, metrics, incoming);
  return { key, mover, lease: new PrimaryLease(config.control.leaseSeconds * 1000), mountWaitMs: config.moves.mountWaitSeconds * 1000, incoming };
}

/**
 * Cluster mode, once the backends are up: the transfer service (the source side of moves), and
 * registration with control, retried until control answers.
 */
export async function joinCluster(
  config: Config,
  side: ClusterSide,
  source: MoveSource,
  control: ControlClient,
  log: Logger,
  metrics: MetricsSink,
  snapshots: Snapshots,
  fence?: { away: ControlAway; failovers: FailoverDuties },
): Promise<{ stop(): Promise<void>; beatNow(): void }> {
  const peers = async (): Promise<Map<string, string>> =>
    new Map((await control.listNodes()).filter((n) => n.transferKey && n.name !== config.nodeName).map((n) => [n.name, n.transferKey!]));
  // wake: a peer through which a move to this host was requested; the membership made below heartbeats at once.
  let membership: Membership | undefined;
  const handler = new SourceTransferHandler(source, control, snapshots, () => membership?.beatNow());
  const transfer = new TransferServer(side.key, peers, handler, log.child({ component: 'transfer' }), metrics);
  const [host, port] = [config.transfer.listen.slice(0, config.transfer.listen.lastIndexOf(':')), Number(config.transfer.listen.split(':').pop())];
  const bound = await transfer.listen(port, host);
  const address = config.transfer.advertise ?? `${host}:${bound}`;
  membership = new Membership(
    control,
    { name: config.nodeName, address, transferKey: side.key.publicKey },
    side.mover,
    source,
    config.control.heartbeatSeconds * 1000,
    log.child({ component: 'membership' }),
    fence && { lease: side.lease, ...fence },
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
  // replicate: this host's standbys, kept fresh by rounds it drives (as a move's target does).
  const replicator = new Replicator(
    source,
    control,
    snapshots,
    (peer) => TransferClient.connect(peer, side.key.privateKey),
    log.child({ component: 'replicator' }),
    metrics,
    Date.now,
    side.incoming,
  );
  replicator.start();
  return {
    beatNow: () => membership?.beatNow(),
    async stop() {
      membership?.stop();
      await replicator.stop();
      await transfer.close();
    },
  };
}

/**
 * How `ferry doctor` reaches control and the peers from this agent: one authenticated read of
 * control (its Date header gives the clock skew), and a transfer handshake with each peer.
 */
export function clusterProbes(config: Config, key: TransferKey): ClusterProbes {
  const url = config.control.url!;
  return {
    url,
    tokenFile: config.control.tokenFile,
    probeControl: () => probeControl(config),
    async probePeer(n) {
      try {
        const c = await TransferClient.connect({ name: n.name, address: n.address!, hostKey: n.transferKey! }, key.privateKey, 5000);
        c.close();
        return { ok: true };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    },
  };
}

/** GET /v1/nodes of control with the token; the answer's Date against the request's midpoint. */
function probeControl(config: Config): Promise<ControlProbe> {
  let token: string;
  try {
    token = readToken(config.control.tokenFile);
  } catch (err) {
    return Promise.resolve({ ok: false, code: 'INVALID_CONFIG', error: (err as Error).message });
  }
  const url = new URL('/v1/nodes', config.control.url);
  const tls = config.control.tls;
  const https = url.protocol === 'https:';
  return new Promise((resolve) => {
    const sent = Date.now();
    const onAnswer = (res: IncomingMessage): void => {
      res.resume();
      res.on('end', () => {
        const got = Date.now();
        const date = Date.parse(res.headers.date ?? '');
        // Date has whole seconds, cut down: its middle is half a second later.
        const skewMs = Number.isNaN(date) ? undefined : date + 500 - (sent + got) / 2;
        if (res.statusCode === 200) resolve({ ok: true, skewMs });
        else if (res.statusCode === 401) resolve({ ok: false, code: 'UNAUTHORIZED', error: 'the token was refused', skewMs });
        else resolve({ ok: false, code: 'NODE_UNREACHABLE', error: `control answered ${res.statusCode}`, skewMs });
      });
    };
    const options = {
      method: 'GET',
      headers: { Authorization: `Bearer ${token}` },
      timeout: 5000,
      ...(https && tls ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : {}),
    };
    const req = (https ? httpsRequest : httpRequest)(url, options, onAnswer);
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err) => resolve({ ok: false, code: 'NODE_UNREACHABLE', error: err.message }));
    req.end();
  });
}
