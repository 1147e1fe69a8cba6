import { apiRoute } from './api-route';
import express, { type Request } from 'express';
import type { z } from 'zod';
import { FerryError } from '../errors';
import type { Logger } from '../log';
import { validateVolumeName } from '../volume/names';
import { validatePolicyName } from '../volume/policy-name';
import { policyChangesSchema, policySpecSchema, volumeOptionChangesSchema } from '../wire/agent-calls';
import type { ControlClient } from '../wire/control-client';

/** A JSON body checked against `schema`, else INVALID_REQUEST naming each wrong field. */
export function decodeBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new FerryError('INVALID_REQUEST', `bad ${what}: ${why}`);
  }
  return parsed.data;
}

/**
 * policy (issue 7 item 3): its part of the local REST API. `GET /v1/policies`, `POST /v1/policies`
 * (a whole PolicySpec, 201), `GET|PATCH|DELETE /v1/policies/:name` (GET adds the volumes using it), and
 * `PATCH /v1/volumes/:name/options` (`{KEY: VALUE | null}`: `ferry volume set`), asked on host `node`.
 */
export function policyRoutes(control: ControlClient, node: string, log: Logger): express.Router {
  const router = express.Router();
  const route = apiRoute(log);
  const policyName = (req: Request): string => validatePolicyName(String(req.params.name));

  router.get('/v1/policies', route(200, async () => ({ policies: await control.listPolicies() })));
  router.post('/v1/policies', route(201, async (req) => ({ policy: await control.createPolicy(decodeBody(policySpecSchema, req.body, 'policy')) })));
  router.get(
    '/v1/policies/:name',
    route(200, async (req) => {
      const name = policyName(req);
      const policy = await control.getPolicy(name);
      if (!policy) throw new FerryError('POLICY_NOT_FOUND', `policy ${name} does not exist: ferry policy ls lists them`);
      const volumes = (await control.listVolumes()).filter((v) => v.options.policy === name).map((v) => v.name);
      return { policy, volumes };
    }),
  );
  router.patch(
    '/v1/policies/:name',
    route(200, async (req) => ({ policy: await control.updatePolicy(policyName(req), decodeBody(policyChangesSchema, req.body, 'policy changes')) })),
  );
  router.delete(
    '/v1/policies/:name',
    route(200, async (req) => {
      const name = policyName(req);
      await control.deletePolicy(name);
      return { removed: name };
    }),
  );
  router.patch(
    '/v1/volumes/:name/options',
    route(200, async (req) => {
      const name = validateVolumeName(String(req.params.name));
      return { volume: await control.setVolumeOptions(name, decodeBody(volumeOptionChangesSchema, req.body, 'option changes'), node) };
    }),
  );
  return router;
}
