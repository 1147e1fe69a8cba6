import { apiRoute } from './api-route';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { HostDoctor } from '../agent/host-doctor';
import type { HostStatus } from '../agent/host-status';
import type { Mounts } from '../agent/mounts';
import type { Reclaimer } from '../agent/reclaimer';
import type { VolumeService } from '../agent/volume-service';
import type { Snapshots } from '../agent/snapshots';
import { registerSnapshotRoutes } from './snapshot-routes';
import { registerSnapshotGroupRoutes } from './snapshot-group-routes';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { validateVolumeName } from '../volume/names';
import type { ControlClient } from '../wire/control-client';
import type { MoveRecord } from '../wire/records';
import { decodeCreateOptions } from '../wire/create-options';
import { sendError } from '../wire/http-errors';
import { inUse } from '../wire/in-use';
import { failoverRoutes } from './failover-routes';
import { policyRoutes } from './policy-routes';
import { reclaimRoutes } from './reclaim-routes';
import type { Banks } from '../agent/banks';
import type { Backups } from '../agent/backups';
import { bankRoutes } from './bank-routes';

/** The agent parts the local API answers from. */
export interface LocalApiParts {
  volumes: VolumeService;
  mounts: Mounts;
  status: HostStatus;
  /** `ferry doctor`'s checks that need the running agent. */
  doctor?: HostDoctor;
  /** This host's name: policy records it with what `ferry volume set` changes here (without it, no policy routes); fence: who asked for a failover. */
  node?: string;
  /** snap: `ferry snapshot ...` and `ferry volume rollback`. */
  snapshots?: Snapshots;
  /** reclaim: removed volumes' retained data (ferry volume ls --removed, ferry volume undelete). */
  reclaimer?: Reclaimer;
  /** bank-ops (issue 8): `ferry bank ...` and `ferry backup ...`. */
  banks?: Banks;
  backups?: Backups;
  /** In a cluster: tells a requested move's target at once (Mover.announce), not at its next heartbeat. */
  moves?: { announce(m: MoveRecord): void };
}

/** `POST /v1/volumes`, decoded: a valid name and string options. */
export interface CreateBody {
  name: string;
  options: Record<string, string>;
}

/** Decodes the body of `POST /v1/volumes` (once, here: the agent takes typed values). */
export function decodeCreateBody(body: unknown): CreateBody {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new FerryError('INVALID_REQUEST', 'send a JSON object {"name": ..., "options": {...}}');
  const b = body as { name?: unknown; options?: unknown };
  // Options first, then the name: the order in which errors have always come.
  const options = decodeCreateOptions(b.options, 'options');
  return { name: validateVolumeName(b.name), options };
}

/** `POST /v1/volumes/:name/move`, decoded. */
export function decodeMoveBody(body: unknown): { to: string; restartContainers: boolean } {
  const b = (body ?? {}) as { to?: unknown; restartContainers?: unknown };
  if (typeof b.to !== 'string' || !b.to) throw new FerryError('INVALID_REQUEST', 'say where to: {"to": "<host>"}');
  return { to: b.to, restartContainers: b.restartContainers === true };
}

/** The REST API (`/v1`) that the `ferry` CLI talks to on this host's API socket. */
export function createLocalApi(agent: LocalApiParts, control: ControlClient, log: Logger): express.Express {
  const { volumes, mounts, status: hostStatus } = agent;
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));

  const route = apiRoute(log);

  app.get('/v1/volumes', route(200, async () => ({ volumes: await volumes.list({ all: true }) })));
  app.post(
    '/v1/volumes',
    route(201, async (req) => {
      const body = decodeCreateBody(req.body);
      return { volume: await volumes.create(body.name, body.options) };
    }),
  );
  app.get(
    '/v1/volumes/:name',
    route(200, async (req) => {
      const name = validateVolumeName(String(req.params.name));
      const volume = await volumes.inspect(name);
      return {
        volume,
        mountpoint: mounts.path(name) || null,
        leases: await control.leasesOf(name),
        move: (await control.moveOf(name)) ?? null,
        events: await control.eventsOf(name),
      };
    }),
  );
  app.delete(
    '/v1/volumes/:name',
    route(200, async (req) => {
      const name = validateVolumeName(String(req.params.name));
      await volumes.inspect(name);
      // reclaim: a removal record newer than any before this remove is this remove's (ids only grow).
      const before = Math.max(0, ...(await control.listRemoved()).map((r) => r.id));
      const left = await volumes.remove(name);
      const nodes = await control.listNodes();
      const retained = (await control.listRemoved()).find((r) => r.name === name && r.id > before && r.state !== 'dropping') ?? null;
      // The copies other hosts still hold go when those hosts next hear from control.
      return { removed: name, pending: left.map((node) => ({ node, up: nodes.find((n) => n.name === node)?.state === 'up' })), retained };
    }),
  );
  app.get('/v1/status', route(200, async () => hostStatus.report()));
  app.get(
    '/v1/doctor',
    route(200, async () => {
      if (!agent.doctor) throw new FerryError('INVALID_REQUEST', 'this ferry does not run doctor checks');
      return agent.doctor.report();
    }),
  );
  app.get('/v1/nodes', route(200, async () => ({ nodes: await control.listNodes() })));
  app.post(
    '/v1/volumes/:name/move',
    route(202, async (req) => {
      const name = validateVolumeName(String(req.params.name));
      const { to, restartContainers } = decodeMoveBody(req.body);
      const v = await volumes.get(name);
      // Plain Docker: a move waits for the source to release the volume; refuse up front instead of
      // waiting for containers that nobody is going to stop, unless asked to stop and restart them.
      const held = (await control.leasesOf(name)).filter((l) => l.node === v.primaryNode);
      if (held.length > 0 && !restartContainers) {
        const e = inUse(name, held);
        throw new FerryError('VOLUME_IN_USE', `${e.message}, or move it with --restart-containers to stop them on ${v.primaryNode} and start them again on ${to}`);
      }
      const move = await control.requestMove(name, to, { restartContainers });
      agent.moves?.announce(move);
      return { move };
    }),
  );
  // fence: ferry volume failover
  if (agent.node) app.use(failoverRoutes(control, agent.node, log));
  app.get('/v1/volumes/:name/move', route(200, async (req) => ({ move: (await control.moveOf(String(req.params.name))) ?? null })));
  if (agent.node) app.use(policyRoutes(control, agent.node, log));
  // snap (issue 7 item 1): snapshots and rollback.
  if (agent.snapshots) registerSnapshotRoutes(app, route, agent.snapshots, control);
  // quiesce (issue 7 item 2): group snapshots.
  if (agent.snapshots) registerSnapshotGroupRoutes(app, route, agent.snapshots);
  if (agent.reclaimer) app.use(reclaimRoutes(agent.reclaimer, control, log));
  if (agent.banks && agent.backups) app.use(bankRoutes(agent.banks, agent.backups, log));
  app.use((req: Request, res: Response) => {
    sendError(res, new FerryError('INVALID_REQUEST', `no such endpoint: ${req.method} ${req.path}`));
  });
  // Malformed JSON and other body errors arrive here.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status;
    if (status && status < 500) {
      sendError(res, new FerryError('INVALID_REQUEST', `bad request: ${(err as Error).message}`));
      return;
    }
    sendError(res, err);
  });
  return app;
}
