import express, { type NextFunction, type Request, type Response } from 'express';
import type { Agent } from '../agent/agent';
import { inUse, type ControlClient } from './control';
import { FerryError, toFerryError, type ErrorKind } from '../errors';
import type { Logger } from '../log';

const HTTP_STATUS: Record<ErrorKind, number> = {
  not_found: 404,
  invalid: 400,
  conflict: 409,
  unavailable: 503,
  unauthorized: 401,
  internal: 500,
};

/** The one translator from FerryError to the REST API's status and body. */
export function sendError(res: Response, err: unknown): void {
  const e = toFerryError(err);
  res.status(HTTP_STATUS[e.kind]).json({ error: { code: e.code, kind: e.kind, message: e.message } });
}

type Handler = (req: Request) => Promise<unknown>;

/** The REST API (`/v1`) that the CLI talks to. */
export function createApi(agent: Agent, control: ControlClient, log: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));

  const route =
    (status: number, fn: Handler) =>
    (req: Request, res: Response): void => {
      const started = process.hrtime.bigint();
      fn(req)
        .then((body) => {
          res.status(status).json(body ?? {});
          if (req.method !== 'GET') {
            log.info({ op: `${req.method} ${req.path}`, durationMs: Number(process.hrtime.bigint() - started) / 1e6, outcome: 'ok' }, 'api request');
          }
        })
        .catch((err: unknown) => {
          const e = toFerryError(err);
          log.warn({ op: `${req.method} ${req.path}`, code: e.code, err: e.message, outcome: 'error' }, 'api request');
          sendError(res, e);
        });
    };

  app.get('/v1/volumes', route(200, async () => ({ volumes: await agent.list({ all: true }) })));
  app.post(
    '/v1/volumes',
    route(201, async (req) => {
      const body = req.body as { name?: unknown; options?: unknown } | undefined;
      if (!body || typeof body !== 'object') throw new FerryError('INVALID_REQUEST', 'send a JSON object {"name": ..., "options": {...}}');
      const options = body.options ?? null;
      if (options !== null && (typeof options !== 'object' || Array.isArray(options))) {
        throw new FerryError('INVALID_REQUEST', 'options must be an object of strings');
      }
      return { volume: await agent.create(body.name, options as Record<string, unknown> | null) };
    }),
  );
  app.get(
    '/v1/volumes/:name',
    route(200, async (req) => {
      const name = String(req.params.name);
      const volume = await agent.inspect(name);
      return {
        volume,
        mountpoint: agent.path(name) || null,
        leases: await control.leasesOf(name),
        move: (await control.moveOf(name)) ?? null,
        events: await control.eventsOf(name),
      };
    }),
  );
  app.delete(
    '/v1/volumes/:name',
    route(200, async (req) => {
      const name = String(req.params.name);
      await agent.inspect(name);
      const left = await agent.remove(name);
      const nodes = await control.listNodes();
      // The copies other hosts still hold go when those hosts next hear from control.
      return { removed: name, pending: left.map((node) => ({ node, up: nodes.find((n) => n.name === node)?.state === 'up' })) };
    }),
  );
  app.get('/v1/status', route(200, async () => agent.status()));
  app.get('/v1/nodes', route(200, async () => ({ nodes: await control.listNodes() })));
  app.post(
    '/v1/volumes/:name/move',
    route(202, async (req) => {
      const name = String(req.params.name);
      const body = (req.body ?? {}) as { to?: unknown; restartContainers?: unknown };
      if (typeof body.to !== 'string' || !body.to) throw new FerryError('INVALID_REQUEST', 'say where to: {"to": "<host>"}');
      const restartContainers = body.restartContainers === true;
      const v = await agent.get(name);
      // Plain Docker: a move waits for the source to release the volume; refuse up front instead of
      // waiting for containers that nobody is going to stop, unless asked to stop and restart them.
      const held = (await control.leasesOf(name)).filter((l) => l.node === v.primaryNode);
      if (held.length > 0 && !restartContainers) {
        const e = inUse(name, held);
        throw new FerryError('VOLUME_IN_USE', `${e.message}, or move it with --restart-containers to stop them on ${v.primaryNode} and start them again on ${body.to}`);
      }
      return { move: await control.requestMove(name, body.to, { restartContainers }) };
    }),
  );
  app.get('/v1/volumes/:name/move', route(200, async (req) => ({ move: (await control.moveOf(String(req.params.name))) ?? null })));
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
