import express, { type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { AGENT_CALLS, decodeArgs, type AgentCall } from '../wire/agent-calls';
import type { ControlClient } from '../wire/control-client';
import { bearerMatches } from '../wire/bearer';
import { sendError } from '../wire/http-errors';
import type { WebRoute } from '../web/web-listener';

/** Every request must carry `Authorization: Bearer <cluster token>`; compared in constant time. */
export function requireToken(token: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!bearerMatches(req.get('authorization'), token)) {
      sendError(res, new FerryError('UNAUTHORIZED', 'missing or wrong cluster token: send "Authorization: Bearer <token>" with the token from the control host'));
      return;
    }
    next();
  };
}

/**
 * control's REST API over TCP: agent calls under /v1/agent, and reads for people and tools; `web`
 * adds routes beside them (the dashboard): open ones before the token check, the others after it.
 */
export function createClusterApi(control: ControlClient, token: string, log: Logger, web: readonly WebRoute[] = []): express.Express {
  const app = express();
  app.disable('x-powered-by');
  for (const r of web) if (r.open) app.use(r.path, r.router);
  app.use(requireToken(token));
  for (const r of web) if (!r.open) app.use(r.path, r.router);
  app.use(express.json({ limit: '1mb' }));

  app.post('/v1/agent/:method', (req: Request, res: Response) => {
    const method = String(req.params.method) as AgentCall;
    const schema = AGENT_CALLS[method] as z.ZodTuple | undefined;
    if (!schema || !Object.prototype.hasOwnProperty.call(AGENT_CALLS, method)) {
      sendError(res, new FerryError('INVALID_REQUEST', `no such call: ${method}`));
      return;
    }
    const parsed = schema.safeParse((req.body as { args?: unknown } | undefined)?.args);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'args'}: ${i.message}`).join('; ');
      sendError(res, new FerryError('INVALID_REQUEST', `bad arguments for ${method}: ${why}`));
      return;
    }
    const fn = control[method] as (...a: unknown[]) => Promise<unknown>;
    fn.apply(control, decodeArgs(method, parsed.data as unknown[]))
      .then((result) => res.json({ result: result ?? null }))
      .catch((err: unknown) => {
        log.debug({ err, method }, 'agent call failed');
        sendError(res, err);
      });
  });

  const read = (fn: (req: Request) => Promise<unknown>) => (req: Request, res: Response) => {
    fn(req).then((body) => res.json(body), (err: unknown) => sendError(res, err));
  };
  app.get('/v1/volumes', read(async () => ({ volumes: await control.listVolumes() })));
  app.get('/v1/nodes', read(async () => ({ nodes: await control.listNodes() })));
  app.get(
    '/v1/volumes/:name',
    read(async (req) => {
      const v = await control.getVolume(String(req.params.name));
      if (!v) throw new FerryError('VOLUME_NOT_FOUND', `volume ${String(req.params.name)} does not exist`);
      return { volume: v, move: (await control.moveOf(v.name)) ?? null, leases: await control.leasesOf(v.name) };
    }),
  );
  // policy (issue 7 item 3): reads for people and tools.
  app.get('/v1/policies', read(async () => ({ policies: await control.listPolicies() })));
  app.get(
    '/v1/policies/:name',
    read(async (req) => {
      const p = await control.getPolicy(String(req.params.name));
      if (!p) throw new FerryError('POLICY_NOT_FOUND', `policy ${String(req.params.name)} does not exist`);
      return { policy: p, volumes: (await control.listVolumes()).filter((v) => v.options.policy === p.name).map((v) => v.name) };
    }),
  );
  // snap (issue 7 item 1): control's snapshot registry, for people and tools.
  app.get(
    '/v1/volumes/:name/snapshots',
    read(async (req) => {
      const name = String(req.params.name);
      if (!(await control.getVolume(name))) throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} does not exist`);
      return { snapshots: await control.snapshotsOf(name) };
    }),
  );
  app.get(
    '/v1/snapshots',
    read(async () => {
      const volumes = (await control.listVolumes()).filter((v) => (v.snapshots?.count ?? 1) > 0);
      return { snapshots: (await Promise.all(volumes.map((v) => control.snapshotsOf(v.name)))).flat() };
    }),
  );
  app.use((req: Request, res: Response) => sendError(res, new FerryError('INVALID_REQUEST', `no such endpoint: ${req.method} ${req.path}`)));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status;
    sendError(res, status && status < 500 ? new FerryError('INVALID_REQUEST', `bad request: ${(err as Error).message}`) : err);
  });
  return app;
}
