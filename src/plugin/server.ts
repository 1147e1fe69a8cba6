import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express from 'express';
import { toFerryError, FerryError } from '../errors';
import type { Logger } from '../log';
import { NO_METRICS, type MetricsSink } from '../metrics/sink';
import { PLUGIN_CONTENT_TYPE } from './protocol';
import type { Route } from './routes';

const MAX_BODY = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new FerryError('INVALID_REQUEST', `request body is larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

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
  const text = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': PLUGIN_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The one wrapper every plugin route runs through: parse, wait until the agent is ready, call,
 * encode, and turn any error into Docker's `{Err}` (the one translator to Docker). One log line
 * per operation with volume, op, duration and outcome, and the same told to `metrics`.
 */
export function createPluginServer(routes: Record<string, Route>, ready: Promise<void>, log: Logger, metrics: MetricsSink = NO_METRICS): Server {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // The op label is the route's own name, never the request's URL: an unknown URL is "unknown", so
  // that requests to made-up endpoints cannot grow the metrics without bound.
  const handle = (route: Route | undefined, label: string) => (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const op = (req.url ?? '').replace(/^\//, '');
    let volume: unknown;
    const finish = (err?: FerryError): void => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      metrics.pluginRequest(label, err ? 'error' : 'ok', durationMs / 1000, err?.code);
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
        if (route?.noAnswerOn?.(e)) res.socket?.destroy();
        else send(res, { Err: e.message });
        finish(e);
      }
    })();
  };
  for (const [path, route] of Object.entries(routes)) app.post(path, handle(route, path.replace(/^\//, '')));
  app.use(handle(undefined, 'unknown'));
  return createServer(app);
}
