import type { Server } from 'node:http';
import { isIP } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { bearerMatches } from '../wire/bearer';
import { sendError } from '../wire/http-errors';

/** One set of routes of the web listener, mounted at `path`. */
export interface WebRoute {
  path: string;
  router: express.Router;
  /**
   * Served without the token (a page's static files, which hold no data; the data they fetch is
   * not open). Everything else needs `Authorization: Bearer <token>` when the listener has a token.
   */
  open?: boolean;
}

/** A running web listener. */
export interface WebListener {
  /** "http://host:port", with the port the kernel gave when the config said 0. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Lets a request through only with `Authorization: Bearer <token>`; `where` names where the token
 * is kept, for the message of a refusal.
 */
export function requireBearer(token: string, where: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (bearerMatches(req.get('authorization'), token)) return next();
    sendError(res, new FerryError('UNAUTHORIZED', `missing or wrong token: send "Authorization: Bearer <token>" with the token in ${where}`));
  };
}

/** True for 127.0.0.0/8, ::1 and localhost: addresses no other host reaches. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * The web listener of `ferry serve` and `ferry agent` (/metrics, the dashboard). On loopback a token
 * is optional; beyond it one is required, or the listener refuses to start (data about volumes and
 * hosts is not for every host on the network).
 */
export async function startWebListener(listen: string, token: string | undefined, routes: readonly WebRoute[], log: Logger): Promise<WebListener> {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(colon + 1));
  if (!isLoopback(host) && token === undefined) {
    throw new FerryError(
      'INVALID_CONFIG',
      `web.listen ${listen} is beyond loopback and no token is set: set web.tokenFile (or control.tokenFile) to a file holding a long random secret, or listen on 127.0.0.1`,
    );
  }
  const app = express();
  app.disable('x-powered-by');
  for (const r of routes) {
    if (r.open || token === undefined) {
      app.use(r.path, r.router);
      continue;
    }
    app.use(r.path, requireBearer(token, 'web.tokenFile (or control.tokenFile)'), r.router);
  }
  app.use((req: Request, res: Response) => sendError(res, new FerryError('INVALID_REQUEST', `no such endpoint: ${req.method} ${req.path}`)));

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host);
    s.once('listening', () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? `${listen} is in use (another ferry on this host?): set web.listen (--web-listen) to a free address, or off` : err.message;
      reject(new FerryError('INVALID_CONFIG', `cannot listen on web.listen ${listen}: ${why}`, { cause: err }));
    });
  });
  const addr = server.address();
  const url = typeof addr === 'object' && addr ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : `http://${listen}`;
  log.info({ url, routes: routes.map((r) => r.path) }, 'web listening');
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
