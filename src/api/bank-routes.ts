import express, { type Request } from 'express';
import { z } from 'zod';
import type { Backups } from '../agent/backups';
import type { Banks } from '../agent/banks';
import type { ProgressSink } from '../agent/banks';
import type { Logger } from '../log';
import { validateBankName, validateCheckpointId } from '../volume/backup-refs';
import { validateVolumeName } from '../volume/names';
import { QUIESCE_MODES } from '../volume/options';
import { apiRoute, apiStreamRoute } from './api-route';
import { decodeBody } from './policy-routes';

/** `POST /v1/banks`: what `ferry bank add` sends (file contents, never paths: the agent may be elsewhere). */
export const bankAddSchema = z
  .object({
    name: z.string(),
    url: z.string().min(1).max(2048),
    endpoint: z.string().url().max(2048).optional(),
    region: z.string().min(1).max(128).optional(),
    readOnly: z.boolean().optional(),
    create: z.boolean().optional(),
    /** The key file's bytes, base64. */
    key: z.string().min(1).max(65536),
    accessKey: z.string().min(1).max(4096).optional(),
    secretKey: z.string().min(1).max(4096).optional(),
  })
  .strict()
  .refine((b) => (b.accessKey === undefined) === (b.secretKey === undefined), { message: 'give both the access key and the secret key, or neither' });

/** `POST /v1/volumes/:name/backups`. */
export const backupCreateSchema = z.object({ bank: z.string(), quiesce: z.enum(QUIESCE_MODES).optional() }).strict();
/** `POST .../checkpoints/:checkpoint/restore`: the new volume's name and its Create options (backend, size, fs). */
export const restoreSchema = z
  .object({ as: z.string(), backend: z.string().min(1).max(64).optional(), size: z.string().min(1).max(64).optional(), fs: z.string().min(1).max(64).optional() })
  .strict();
/** `POST .../checkpoints/:checkpoint/extract`: one path of the checkpoint into a directory of this host. */
export const extractSchema = z
  .object({ path: z.string().max(4096), into: z.string().min(1).max(4096).refine((p) => p.startsWith('/'), { message: 'an absolute path' }) })
  .strict();
/** `POST /v1/banks/:name/check`. */
export const checkSchema = z.object({ readDataPercent: z.number().min(0).max(100).optional() }).strict();

/**
 * bank-ops (issue 8): banks and backups on the local API. Banks: `GET|POST /v1/banks`,
 * `GET|DELETE /v1/banks/:bank`, `POST /v1/banks/:bank/gc|check`. Backups: `GET /v1/backups`
 * (`?bank=&volume=`), `POST /v1/volumes/:volume/backups`, and per checkpoint
 * `/v1/banks/:bank/volumes/:volume/checkpoints/:checkpoint` (`latest` for the newest): DELETE, and
 * POST `/restore`, `/extract`. Long ones stream progress with `?progress=1` (apiStreamRoute). No
 * answer ever holds a secret.
 */
export function bankRoutes(banks: Banks, backups: Backups, log: Logger): express.Router {
  const router = express.Router();
  const route = apiRoute(log);
  const stream = apiStreamRoute(log);
  const bankOf = (req: Request): string => validateBankName(String(req.params.bank));
  const checkpointOf = (req: Request): { bank: string; volume: string; checkpoint: string } => ({
    bank: bankOf(req),
    volume: validateVolumeName(String(req.params.volume)),
    checkpoint: validateCheckpointId(String(req.params.checkpoint)),
  });
  const sink = (p: (x: unknown) => void): ProgressSink => (x) => p(x);

  router.get('/v1/banks', route(200, async () => ({ banks: await banks.list() })));
  router.post(
    '/v1/banks',
    route(201, async (req) => {
      const b = decodeBody(bankAddSchema, req.body, 'bank');
      const bank = await banks.add({
        name: validateBankName(b.name),
        url: b.url,
        ...(b.endpoint ? { endpoint: b.endpoint } : {}),
        ...(b.region ? { region: b.region } : {}),
        readOnly: b.readOnly === true,
        create: b.create === true,
        secrets: { keyBase64: b.key, ...(b.accessKey ? { accessKey: b.accessKey.trim(), secretKey: b.secretKey!.trim() } : {}) },
      });
      return { bank };
    }),
  );
  router.get('/v1/banks/:bank', route(200, async (req) => banks.inspect(bankOf(req))));
  router.delete(
    '/v1/banks/:bank',
    route(200, async (req) => {
      const name = bankOf(req);
      const { url } = await banks.record(name);
      await banks.remove(name);
      return { removed: name, url };
    }),
  );
  router.post('/v1/banks/:bank/gc', stream(200, async (req, p) => banks.gc(bankOf(req), sink(p))));
  router.post(
    '/v1/banks/:bank/check',
    stream(200, async (req, p) => banks.check(bankOf(req), decodeBody(checkSchema, req.body ?? {}, 'check').readDataPercent, sink(p))),
  );

  router.get(
    '/v1/backups',
    route(200, async (req) => {
      const bank = typeof req.query.bank === 'string' && req.query.bank ? validateBankName(req.query.bank) : undefined;
      const volume = typeof req.query.volume === 'string' && req.query.volume ? validateVolumeName(req.query.volume) : undefined;
      return { checkpoints: await backups.list({ ...(bank ? { bank } : {}), ...(volume ? { volume } : {}) }) };
    }),
  );
  router.post(
    '/v1/volumes/:volume/backups',
    stream(201, async (req, p) => {
      const b = decodeBody(backupCreateSchema, req.body, 'backup');
      const checkpoint = await backups.create(validateVolumeName(String(req.params.volume)), {
        bank: validateBankName(b.bank),
        origin: 'manual',
        ...(b.quiesce ? { quiesce: b.quiesce } : {}),
        progress: sink(p),
      });
      return { checkpoint, bank: b.bank };
    }),
  );
  const one = '/v1/banks/:bank/volumes/:volume/checkpoints/:checkpoint';
  router.delete(
    one,
    route(200, async (req) => {
      const c = checkpointOf(req);
      return { removed: await backups.remove(c.bank, c.volume, c.checkpoint), volume: c.volume, bank: c.bank };
    }),
  );
  router.post(
    `${one}/restore`,
    stream(201, async (req, p) => {
      const c = checkpointOf(req);
      const b = decodeBody(restoreSchema, req.body, 'restore');
      const as = validateVolumeName(b.as);
      const { as: _as, ...options } = b;
      return { volume: await backups.restore(c.bank, c.volume, c.checkpoint, { as, ...options, progress: sink(p) }) };
    }),
  );
  router.post(
    `${one}/extract`,
    stream(200, async (req, p) => {
      const c = checkpointOf(req);
      const b = decodeBody(extractSchema, req.body, 'extract');
      return backups.extract(c.bank, c.volume, c.checkpoint, { path: b.path, into: b.into, progress: sink(p) });
    }),
  );
  return router;
}
