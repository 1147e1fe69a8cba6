import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { toFerryError, FerryError } from '../errors';
import { readBody, sendJson } from '../http/json';
import type { Logger } from '../log';
import { PLUGIN_CONTENT_TYPE } from './protocol';
import type { Route } from './routes';

function parseBody(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new FerryError('INVALID_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new FerryError('INVALID_REQUEST', 'request body must be a JSON object');
  return v as Record<string, unknown>;
}

function send(res: ServerResponse, body: object): void {
  sendJson(res, 200, body, PLUGIN_CONTENT_TYPE);
}

/**
 * The one wrapper every plugin route runs through: parse, wait until the agent is ready, call,
 * encode, and turn any error into Docker's `{Err}` (the one translator to Docker). One log line
 * per operation with volume, op, duration and outcome.
 */
export function createPluginServer(routes: Record<string, Route>, ready: Promise<void>, log: Logger): Server {
  const handle = (route: Route | undefined, req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const op = (req.url ?? '').replace(/^\//, '');
    let volume: unknown;
    const finish = (err?: FerryError): void => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const fields = { op, volume, durationMs, outcome: err ? 'error' : 'ok', ...(err ? { code: err.code, err: err.message } : {}) };
      if (err) (err.kind === 'internal' ? log.error : log.warn).call(log, fields, 'plugin request');
      else if (route?.readOnly) log.debug(fields, 'plugin request');
      else log.info(fields, 'plugin request');
    };
    void (async () => {
      try {
        if (!route) throw new FerryError('INVALID_REQUEST', `unknown plugin endpoint ${req.method} ${req.url}`);
        const body = parseBody(await readBody(req));
        volume = body.Name;
        await ready;
        send(res, await route.handle(body));
        finish();
      } catch (err) {
        const e = toFerryError(err);
        send(res, { Err: e.message });
        finish(e);
      }
    })();
  };
  // dockerd POSTs to exact paths (/VolumeDriver.Get): one map lookup, no router.
  const table = new Map(Object.entries(routes));
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    handle(req.method === 'POST' ? table.get(path) : undefined, req, res);
  });
}
