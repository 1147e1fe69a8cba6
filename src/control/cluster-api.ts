import { timingSafeEqual, createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { sendError } from './api';
import type { ControlClient } from './control';

const name = z.string().min(1).max(256);
const lease = z.object({ volume: name, mountId: z.string().min(1).max(512), node: name, mountpoint: z.string().min(1), generation: z.number().int() });

/**
 * The calls agents make of control, each with the schema of its arguments. One table serves the
 * server (validation) and the client (HttpControl), so the two cannot drift apart.
 */
export const AGENT_CALLS = {
  reserveVolume: z.tuple([
    z.object({ name, backend: name, sizeBytes: z.number().int().positive().optional(), fs: name.optional(), options: z.record(z.string(), z.string()), primaryNode: name }),
  ]),
  confirmVolume: z.tuple([name, name]),
  abandonVolume: z.tuple([name, name, z.string()]),
  getVolume: z.tuple([name]),
  listVolumes: z.tuple([]),
  beginDelete: z.tuple([name, name]),
  copyDestroyed: z.tuple([name, name]),
  forgetReplica: z.tuple([name, name, z.string().max(4000)]),
  acquireLease: z.tuple([lease]),
  releaseLease: z.tuple([name, z.string().min(1).max(512)]),
  leasesOf: z.tuple([name]),
  leasesOnNode: z.tuple([name]),
  dropLeases: z.tuple([name, name, z.string()]),
  recordUsage: z.tuple([z.record(z.string(), z.number())]),
  eventsOf: z.tuple([name]),
  registerNode: z.tuple([z.object({ name, address: z.string().min(3).max(300), transferKey: z.string().min(16).max(4096), bootId: name })]),
  heartbeat: z.tuple([name, name]),
  listNodes: z.tuple([]),
  requestMove: z.tuple([name, name]).rest(z.object({ restartContainers: z.boolean().optional() })),
  annotateLeases: z.tuple([name, name, z.array(z.string().max(256)).max(1000)]),
  setMoveContainers: z.tuple([
    z.number().int(),
    z.array(z.object({ name: z.string().min(1).max(256), config: z.record(z.string(), z.unknown()), hostConfig: z.record(z.string(), z.unknown()) })).max(1000),
  ]),
  getMove: z.tuple([z.number().int()]),
  moveOf: z.tuple([name]),
  updateMove: z.tuple([
    z.number().int(),
    z.object({ state: z.enum(['releasing', 'final']).optional(), bytesDone: z.number().int().min(0).optional(), bytesTotal: z.number().int().min(0).nullable().optional() }),
  ]),
  failMove: z.tuple([z.number().int(), z.string().max(4000)]),
  switchMove: z.tuple([z.number().int()]),
  finishMove: z.tuple([z.number().int()]),
} as const satisfies { [K in keyof ControlClient]: z.ZodTuple };

export type AgentCall = keyof typeof AGENT_CALLS;

/** recordUsage travels as a plain object; everything else as JSON already. */
export function encodeArgs(method: AgentCall, args: unknown[]): unknown[] {
  return method === 'recordUsage' ? [Object.fromEntries(args[0] as Map<string, number>)] : args;
}
function decodeArgs(method: AgentCall, args: unknown[]): unknown[] {
  return method === 'recordUsage' ? [new Map(Object.entries(args[0] as Record<string, number>))] : args;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Every request must carry `Authorization: Bearer <cluster token>`; compared in constant time. */
export function requireToken(token: string) {
  const want = digest(token);
  return (req: Request, res: Response, next: NextFunction): void => {
    const m = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (!m || !timingSafeEqual(digest(m[1]), want)) {
      sendError(res, new FerryError('UNAUTHORIZED', 'missing or wrong cluster token: send "Authorization: Bearer <token>" with the token from the control host'));
      return;
    }
    next();
  };
}

/** control's REST API over TCP: agent calls under /v1/agent, and reads for people and tools. */
export function createClusterApi(control: ControlClient, token: string, log: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requireToken(token));
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
  app.use((req: Request, res: Response) => sendError(res, new FerryError('INVALID_REQUEST', `no such endpoint: ${req.method} ${req.path}`)));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status;
    sendError(res, status && status < 500 ? new FerryError('INVALID_REQUEST', `bad request: ${(err as Error).message}`) : err);
  });
  return app;
}
