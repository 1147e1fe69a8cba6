import type { Request, Response } from 'express';
import { toFerryError } from '../errors';
import type { Logger } from '../log';
import { errorResponse, sendError } from '../wire/http-errors';

/** One handler of the local API: its answer's body (or nothing), or a FerryError. */
export type ApiHandler = (req: Request) => Promise<unknown>;

/** The wrapper of one route: answers `status` with the handler's body as JSON, or the error's status. */
export type ApiRoute = (status: number, fn: ApiHandler) => (req: Request, res: Response) => void;

/**
 * The one wrapper every part of the local API uses: JSON on success, one translation of errors
 * (FerryError -> HTTP, src/wire/http-errors.ts), and a log line for every change and every failure.
 */
export function apiRoute(log: Logger): ApiRoute {
  return (status, fn) =>
    (req, res): void => {
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
}

/** bank-ops: a long operation's handler, given a sink for its progress. */
export type ApiStreamHandler = (req: Request, progress: (p: unknown) => void) => Promise<unknown>;

/** Progress lines no closer together than this (the phase changing always makes one). */
const PROGRESS_EVERY_MS = 200;

/**
 * bank-ops: the wrapper of a long operation (a backup, a restore). Asked with `?progress=1`, it answers
 * 200 with NDJSON: `{"progress": {...}}` lines as the work goes, then one `{"result": ...}` or
 * `{"error": ...}` line (an error after the first line cannot change the status any more). Without,
 * it answers like ApiRoute with `status`.
 */
export function apiStreamRoute(log: Logger): (status: number, fn: ApiStreamHandler) => (req: Request, res: Response) => void {
  const plain = apiRoute(log);
  return (status, fn) =>
    (req, res): void => {
      if (req.query.progress !== '1') {
        plain(status, (r) => fn(r, () => undefined))(req, res);
        return;
      }
      const started = process.hrtime.bigint();
      res.status(200).setHeader('Content-Type', 'application/x-ndjson');
      res.flushHeaders();
      let last = 0;
      let lastPhase: unknown;
      const progress = (p: unknown): void => {
        const now = Date.now();
        const phase = (p as { phase?: unknown } | null)?.phase;
        if (phase === lastPhase && now - last < PROGRESS_EVERY_MS) return;
        last = now;
        lastPhase = phase;
        res.write(`${JSON.stringify({ progress: p })}\n`);
      };
      fn(req, progress)
        .then((body) => {
          res.end(`${JSON.stringify({ result: body ?? {} })}\n`);
          log.info({ op: `${req.method} ${req.path}`, durationMs: Number(process.hrtime.bigint() - started) / 1e6, outcome: 'ok' }, 'api request');
        })
        .catch((err: unknown) => {
          const e = toFerryError(err);
          log.warn({ op: `${req.method} ${req.path}`, code: e.code, err: e.message, outcome: 'error' }, 'api request');
          res.end(`${JSON.stringify(errorResponse(e).body)}\n`);
        });
    };
}
