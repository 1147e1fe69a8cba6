import { apiRoute } from './api-route';
import express from 'express';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { validateVolumeName } from '../volume/names';
import type { ControlClient } from '../wire/control-client';

/** `POST /v1/volumes/:name/failover`, decoded. */
export function decodeFailoverBody(body: unknown): { to: string; force: boolean } {
  const b = (body ?? {}) as { to?: unknown; force?: unknown };
  if (typeof b.to !== 'string' || !b.to) throw new FerryError('INVALID_REQUEST', 'say which standby to promote: {"to": "<host>", "force": false}');
  if (b.force !== undefined && typeof b.force !== 'boolean') throw new FerryError('INVALID_REQUEST', '"force" must be true or false');
  return { to: b.to, force: b.force === true };
}

/**
 * fence (issue 7 item 5): the local API's failover routes: `POST /v1/volumes/:name/failover`
 * (`ferry volume failover`) and `GET /v1/volumes/:name/failovers`, asked on host `node`.
 */
export function failoverRoutes(control: ControlClient, node: string, log: Logger): express.Router {
  const router = express.Router();
  const run = apiRoute(log);
  router.post(
    '/v1/volumes/:name/failover',
    run(200, async (req) => {
      const name = validateVolumeName(String(req.params.name));
      const { to, force } = decodeFailoverBody(req.body);
      const failover = await control.failoverVolume(name, to, { force, node });
      log.info({ op: 'failover', volume: name, to, force }, 'failover requested');
      return { failover };
    }),
  );
  router.get(
    '/v1/volumes/:name/failovers',
    run(200, async (req) => ({ failovers: await control.failoversOf(validateVolumeName(String(req.params.name))) })),
  );
  return router;
}
