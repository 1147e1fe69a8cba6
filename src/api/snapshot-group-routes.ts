import type { ApiRoute } from './api-route';
import type { Request, Response } from 'express';
import type { Snapshots } from '../agent/snapshots';
import { FerryError } from '../errors';
import { validateVolumeName } from '../volume/names';
import { QUIESCE_MODES, type QuiesceMode } from '../volume/options';
import { validateSnapshotName } from '../volume/snapshot-names';


/**
 * quiesce (issue 7 item 2): a snapshot request's `quiesce` field, decoded: absent (the volume's own
 * `-o quiesce`, else none) or one of the modes; INVALID_OPTION naming them otherwise.
 */
export function decodeQuiesce(body: unknown): { quiesce?: QuiesceMode } {
  const q = ((body ?? {}) as { quiesce?: unknown }).quiesce;
  if (q === undefined || q === null || q === '') return {};
  if (typeof q !== 'string' || !(QUIESCE_MODES as readonly string[]).includes(q)) {
    throw new FerryError('INVALID_OPTION', `invalid quiesce ${JSON.stringify(q)}: valid values are ${QUIESCE_MODES.join(', ')}`);
  }
  return { quiesce: q as QuiesceMode };
}

/** `POST /v1/snapshot-groups`, decoded: `{group, volumes?, name?, quiesce?}`. */
export function decodeGroupBody(body: unknown): { group: string; volumes: string[]; name?: string; quiesce?: QuiesceMode } {
  const b = (body ?? {}) as { group?: unknown; volumes?: unknown; name?: unknown };
  if (typeof b.group !== 'string' || !b.group) throw new FerryError('INVALID_REQUEST', 'say which group: {"group": "<name>", "volumes": [...]}');
  if (b.volumes !== undefined && !Array.isArray(b.volumes)) throw new FerryError('INVALID_REQUEST', '"volumes" must be an array of volume names');
  const volumes = ((b.volumes as unknown[] | undefined) ?? []).map((v) => validateVolumeName(v));
  const name = b.name === undefined || b.name === null || b.name === '' ? undefined : validateSnapshotName(b.name);
  return { group: b.group, volumes, ...(name ? { name } : {}), ...decodeQuiesce(body) };
}

/**
 * quiesce: `POST /v1/snapshot-groups` takes one snapshot of each volume of a group at one instant
 * (`ferry snapshot create --group NAME [VOLUME...]`); no volumes: a Compose project's, on this host.
 */
export function registerSnapshotGroupRoutes(app: { post(path: string, h: (req: Request, res: Response) => void): unknown }, route: ApiRoute, snapshots: Snapshots): void {
  app.post(
    '/v1/snapshot-groups',
    route(201, async (req) => {
      const { group, volumes, ...o } = decodeGroupBody(req.body);
      return snapshots.takeGroup(group, volumes, { origin: 'manual', ...o });
    }),
  );
}
