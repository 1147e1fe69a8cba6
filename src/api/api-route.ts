import type { Request, Response } from 'express';
import { toFerryError } from '../errors';
import type { Logger } from '../log';
import { sendError } from '../wire/http-errors';

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
