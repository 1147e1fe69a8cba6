import { apiRoute } from './api-route';
import express from 'express';
import type { Reclaimer } from '../agent/reclaimer';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { validateVolumeName } from '../volume/names';
import type { ControlClient } from '../wire/control-client';

/** `POST /v1/removed/:name/undelete`, decoded: the new name (default the old one) and which removal (default the newest). */
export function decodeUndeleteBody(body: unknown): { as?: string; id?: number } {
  const b = (body ?? {}) as { as?: unknown; id?: unknown };
  if (typeof b !== 'object' || Array.isArray(b)) throw new FerryError('INVALID_REQUEST', 'send a JSON object {"as": "<new name>", "id": <removal>}, both optional');
  if (b.id !== undefined && (typeof b.id !== 'number' || !Number.isInteger(b.id) || b.id < 1)) {
    throw new FerryError('INVALID_REQUEST', `id must be a removal id (a positive integer, from ferry volume ls --removed), got ${JSON.stringify(b.id)}`);
  }
  return { ...(b.as !== undefined && b.as !== null ? { as: validateVolumeName(b.as) } : {}), ...(b.id !== undefined ? { id: b.id } : {}) };
}

/**
 * reclaim's part of the local REST API: `GET /v1/removed` (removed volumes whose data is retained,
 * newest first) and `POST /v1/removed/:name/undelete` (`{as?, id?}`: brings one back, 201 with the volume).
 */
export function reclaimRoutes(reclaimer: Reclaimer, control: ControlClient, log: Logger): express.Router {
  const router = express.Router();
  const route = apiRoute(log);
  router.get('/v1/removed', route(200, async () => ({ removed: await control.listRemoved() })));
  router.post(
    '/v1/removed/:name/undelete',
    route(201, async (req) => {
      const name = validateVolumeName(String(req.params.name));
      return { volume: await reclaimer.undelete(name, decodeUndeleteBody(req.body)) };
    }),
  );
  return router;
}
