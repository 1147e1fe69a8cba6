import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Agent } from '../agent/agent';
import { inUse, type ControlClient } from './control';
import { FerryError, toFerryError, type ErrorKind } from '../errors';
import { readBody, sendJson } from '../http/json';
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
export function sendError(res: ServerResponse, err: unknown): void {
  const e = toFerryError(err);
  sendJson(res, HTTP_STATUS[e.kind], { error: { code: e.code, kind: e.kind, message: e.message } });
}

/** What a REST API handler gets: the path's `:params` (decoded) and the JSON body, if one was sent. */
export interface ApiRequest {
  params: Record<string, string>;
  body: unknown;
}
type Handler = (req: ApiRequest) => Promise<unknown>;
interface ApiRoute {
  method: string;
  /** Path segments; `:name` takes one segment as a param. */
  segments: string[];
  status: number;
  fn: Handler;
}

function segmentsOf(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** The route for `method` and `path`, with its params; undefined when none matches. */
function match(routes: readonly ApiRoute[], method: string, path: string): { route: ApiRoute; params: Record<string, string> } | undefined {
  const got = segmentsOf(path);
  for (const route of routes) {
    if (route.method !== method || route.segments.length !== got.length) continue;
    const params: Record<string, string> = {};
    const fits = route.segments.every((s, i) => {
      if (!s.startsWith(':')) return s === got[i];
      try {
        params[s.slice(1)] = decodeURIComponent(got[i]);
        return true;
      } catch {
        throw new FerryError('INVALID_REQUEST', `bad request: ${JSON.stringify(got[i])} is not a valid URL path segment`);
      }
    });
    if (fits) return { route, params };
  }
  return undefined;
}

/** The body as JSON when the request says it is JSON (as express.json() did); otherwise undefined. */
async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '') || text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new FerryError('INVALID_REQUEST', `bad request: ${(err as Error).message}`);
  }
}

/** The REST API (`/v1`) that the CLI talks to, on the local API socket. */
export function createApi(agent: Agent, control: ControlClient, log: Logger): Server {
  const routes: ApiRoute[] = [];
  const route = (method: string, path: string, status: number, fn: Handler): void => {
    routes.push({ method, segments: segmentsOf(path), status, fn });
  };
  route('GET', '/v1/volumes', 200, async () => ({ volumes: await agent.list() }));
  route('POST', '/v1/volumes', 201, async (req) => {
    const body = req.body as { name?: unknown; options?: unknown } | undefined;
    if (!body || typeof body !== 'object') throw new FerryError('INVALID_REQUEST', 'send a JSON object {"name": ..., "options": {...}}');
    const options = body.options ?? null;
    if (options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      throw new FerryError('INVALID_REQUEST', 'options must be an object of strings');
    }
    return { volume: await agent.create(body.name, options as Record<string, unknown> | null) };
  });
  route('GET', '/v1/volumes/:name', 200, async (req) => {
    const name = String(req.params.name);
    const volume = await agent.get(name);
    return {
      volume,
      mountpoint: agent.path(name) || null,
      leases: await control.leasesOf(name),
      move: (await control.moveOf(name)) ?? null,
      events: await control.eventsOf(name),
    };
  });
  route('DELETE', '/v1/volumes/:name', 200, async (req) => {
    const name = String(req.params.name);
    await agent.get(name);
    await agent.remove(name);
    return { removed: name };
  });
  route('GET', '/v1/status', 200, async () => agent.status());
  route('GET', '/v1/nodes', 200, async () => ({ nodes: await control.listNodes() }));
  route('POST', '/v1/volumes/:name/move', 202, async (req) => {
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
  });
  route('GET', '/v1/volumes/:name/move', 200, async (req) => ({ move: (await control.moveOf(String(req.params.name))) ?? null }));

  return createServer((req, res) => {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '').split('?', 1)[0];
    const op = `${req.method} ${path}`;
    void (async () => {
      const found = match(routes, req.method ?? '', path);
      if (!found) throw new FerryError('INVALID_REQUEST', `no such endpoint: ${op}`);
      const body = await found.route.fn({ params: found.params, body: await jsonBody(req) });
      sendJson(res, found.route.status, body ?? {});
      if (req.method !== 'GET') log.info({ op, durationMs: Number(process.hrtime.bigint() - started) / 1e6, outcome: 'ok' }, 'api request');
    })().catch((err: unknown) => {
      const e = toFerryError(err);
      log.warn({ op, code: e.code, err: e.message, outcome: 'error' }, 'api request');
      sendError(res, e);
    });
  });
}
