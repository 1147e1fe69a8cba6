import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Request, type Response } from 'express';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import { sendError } from '../wire/http-errors';
import type { HostReport } from '../wire/records';
import { DashboardFeed, type FeedMessage } from './dashboard-feed';
import { buildDashboard, type DashboardView } from './dashboard-view';
import { requireBearer, type WebRoute } from './web-listener';

/** Where the dashboard reads from: control's records, and what this process's agent knows of its host. */
export interface DashboardSource {
  control: ControlClient;
  /** This host's pools and findings, read fresh (serve and agent); absent on `ferry control`, which has no host. */
  hostReport?: () => Promise<Omit<HostReport, 'at'>>;
}

/** How many ended moves and events the page shows. */
const ENDED_MOVES = 20;
const EVENTS = 50;
/** A comment line now and then keeps proxies and idle timeouts from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

/** The page's three files, read once: HTML, one script, one stylesheet (nothing from the network). */
const FILES: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css' };
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** Where the page's files are: beside this module (`npm run build` copies src/web/ui into dist). */
const UI_DIRS = [join(__dirname, 'ui')];

/** The page's files, or the error every request of the page gets when they are missing. */
function loadFiles(log: Logger): Map<string, { body: Buffer; type: string }> | FerryError {
  const dir = UI_DIRS.find((d) => existsSync(join(d, 'index.html')));
  if (!dir) {
    // ferry runs on without its page (the plugin and the API matter more); the page says why.
    const err = new FerryError('INTERNAL', `the dashboard's files are missing (looked in ${UI_DIRS.join(', ')}): build ferry with npm run build, which copies src/web/ui beside the compiled dashboard`);
    log.warn({ err }, 'dashboard files missing');
    return err;
  }
  return new Map(Object.entries(FILES).map(([path, file]) => [path, { body: readFileSync(join(dir, file)), type: TYPES[file.split('.').pop()!] }]));
}

/** Reads everything the dashboard shows, in one go. */
export async function readDashboard(source: DashboardSource): Promise<DashboardView> {
  const c = source.control;
  const [nodes, volumes, leases, moves, events, reports, own] = await Promise.all([
    c.listNodes(),
    c.listVolumes(),
    c.listLeases(),
    c.recentMoves(ENDED_MOVES),
    c.recentEvents(EVENTS),
    c.hostReports(),
    source.hostReport?.(),
  ]);
  // This host's report is read fresh; other hosts' as they last sent them to control.
  const hosts = own ? [...reports.filter((r) => r.node !== own.node), { ...own, at: new Date().toISOString() }] : reports;
  return buildDashboard({ nodes, volumes, leases, moves, events, hosts });
}

/** The routes of a running dashboard, and how to stop its feed. */
export interface Dashboard {
  /** The page (open: it holds no data) and its API (token), at /ui and /ui/api. */
  routes: WebRoute[];
  stop(): void;
}

/**
 * The dashboard at /ui/: a static page, and its API under /ui/api, which always needs the token
 * (`Authorization: Bearer`): GET view (the whole view, also how the login form checks a token) and
 * GET events (server-sent events: a snapshot, then only what changed, read once a second for every
 * page together).
 */
export function createDashboard(source: DashboardSource, token: { token: string; where: string }, log: Logger, intervalMs = 1000): Dashboard {
  const files = loadFiles(log);
  const feed = new DashboardFeed(() => readDashboard(source), log, intervalMs);

  const page = express.Router({ strict: true });
  page.get(['/', '/app.js', '/style.css'], (req: Request, res: Response) => {
    // "/ui" without its slash: the page's relative links need it.
    if (req.path === '/' && !req.originalUrl.split('?')[0].endsWith('/')) return res.redirect(301, `${req.baseUrl}/`);
    if (files instanceof FerryError) return sendError(res, files);
    const f = files.get(req.path)!;
    res.set({
      'Content-Type': f.type,
      'Cache-Control': 'no-cache',
      // Only this page's own script, style and API: no inline script, nothing from elsewhere.
      'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    res.send(f.body);
  });

  const api = express.Router();
  api.use(requireBearer(token.token, token.where));
  api.get('/view', (_req: Request, res: Response) => {
    feed.current().then(
      (view) => res.set('Cache-Control', 'no-store').json(view),
      (err: unknown) => sendError(res, err),
    );
  });
  api.get('/events', (req: Request, res: Response) => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    const send = (m: FeedMessage): void => {
      res.write(`event: ${m.type}\ndata: ${JSON.stringify(m.type === 'problem' ? { message: m.message } : m.patch)}\n\n`);
    };
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    let unwatch: (() => void) | undefined;
    let closed = false;
    req.on('close', () => {
      closed = true;
      clearInterval(keepalive);
      unwatch?.();
    });
    feed.watch(send).then(
      (u) => (closed ? u() : (unwatch = u)),
      (err: unknown) => {
        clearInterval(keepalive);
        log.warn({ err }, 'dashboard stream failed');
        res.end();
      },
    );
  });

  return {
    routes: [
      // The API first: /ui/api/* must not fall to the page's router.
      { path: '/ui/api', router: api },
      { path: '/ui', router: page, open: true },
    ],
    stop: () => feed.stop(),
  };
}
