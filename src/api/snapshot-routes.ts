import type { ApiRoute } from './api-route';
import type { Request, Response } from 'express';
import type { Snapshots } from '../agent/snapshots';
import { FerryError } from '../errors';
import { validateVolumeName } from '../volume/names';
import { parseSnapshotName, validateSnapshotName, validateStoredSnapshotName } from '../volume/snapshot-names';
import type { ControlClient } from '../wire/control-client';
import type { SnapshotRecord } from '../wire/records';
import { decodeQuiesce } from './snapshot-group-routes';


/** What an express app offers that the routes need. */
interface Routes {
  get(path: string, h: (req: Request, res: Response) => void): unknown;
  post(path: string, h: (req: Request, res: Response) => void): unknown;
  delete(path: string, h: (req: Request, res: Response) => void): unknown;
}

/** `POST /v1/volumes/:name/snapshots`, decoded: an optional user name. */
export function decodeSnapshotBody(body: unknown): { name?: string } {
  const b = (body ?? {}) as { name?: unknown };
  return b.name === undefined || b.name === null || b.name === '' ? {} : { name: validateSnapshotName(b.name) };
}

/** `POST /v1/volumes/:name/rollback`, decoded. */
export function decodeRollbackBody(body: unknown): { snapshot: string } {
  const b = (body ?? {}) as { snapshot?: unknown };
  if (typeof b.snapshot !== 'string' || !b.snapshot) throw new FerryError('INVALID_REQUEST', 'say which snapshot: {"snapshot": "<name>"}');
  return { snapshot: validateStoredSnapshotName(b.snapshot) };
}

/** Who removes a snapshot a user did not take, in words (ferry snapshot rm refuses those). */
function ownerOf(s: SnapshotRecord): string | undefined {
  const p = parseSnapshotName(s.name);
  if (p?.owner === 'user' && s.origin === 'manual') return undefined;
  if (s.origin === 'fenced') return undefined; // a fenced host's late writes: the user's to keep or remove
  if (p?.owner === 'schedule') return `policy ${s.policy ?? p.key.split('.')[0]}'s retention`;
  if (p?.owner === 'replication') return 'replication';
  return s.origin === 'removed' ? 'the reclaim policy (ferry volume undelete, or its retention)' : `its owner (${s.origin})`;
}

/**
 * snap (issue 7 item 1): `ferry snapshot create|ls|rm` and `ferry volume rollback` on the local API.
 * Work is done on the volume's primary host: a request on another host is refused with NOT_PRIMARY
 * naming the host to run it on (the data stays where it is; control is no go-between for data).
 * Listing reads control's registry, so it answers the same on every host.
 */
export function registerSnapshotRoutes(app: Routes, route: ApiRoute, snapshots: Snapshots, control: ControlClient): void {
  const volumeOf = (req: Request): string => validateVolumeName(String(req.params.name));
  const known = async (volume: string): Promise<void> => {
    if (!(await control.getVolume(volume))) throw new FerryError('VOLUME_NOT_FOUND', `volume ${volume} does not exist (ferry volume ls)`);
  };

  app.get(
    '/v1/snapshots',
    route(200, async (req) => {
      const only = typeof req.query.volume === 'string' && req.query.volume ? validateVolumeName(req.query.volume) : undefined;
      if (only) {
        await known(only);
        return { snapshots: await snapshots.withSizes(only, await control.snapshotsOf(only)) };
      }
      const volumes = (await control.listVolumes()).filter((v) => (v.snapshots?.count ?? 1) > 0);
      return { snapshots: (await Promise.all(volumes.map(async (v) => snapshots.withSizes(v.name, await control.snapshotsOf(v.name))))).flat() };
    }),
  );
  app.get(
    '/v1/volumes/:name/snapshots',
    route(200, async (req) => {
      const volume = volumeOf(req);
      await known(volume);
      return { snapshots: await snapshots.withSizes(volume, await control.snapshotsOf(volume)) };
    }),
  );
  app.post(
    '/v1/volumes/:name/snapshots',
    route(201, async (req) => {
      const { name } = decodeSnapshotBody(req.body);
      // quiesce: `{"quiesce": "pause"|"none"}`, else the volume's -o quiesce.
      return { snapshot: await snapshots.take(volumeOf(req), { origin: 'manual', ...(name ? { name } : {}), ...decodeQuiesce(req.body) }) };
    }),
  );
  app.delete(
    '/v1/volumes/:name/snapshots/:snapshot',
    route(200, async (req) => {
      const volume = volumeOf(req);
      const name = validateStoredSnapshotName(String(req.params.snapshot));
      await known(volume);
      const rec = (await control.snapshotsOf(volume)).find((s) => s.name === name);
      if (!rec) throw new FerryError('SNAPSHOT_NOT_FOUND', `volume ${volume} has no snapshot ${name} (ferry snapshot ls ${volume})`);
      const owner = ownerOf(rec);
      if (owner) throw new FerryError('INVALID_REQUEST', `snapshot ${name} of ${volume} was not taken by hand (${rec.origin}): ${owner} removes it`);
      await snapshots.remove(volume, name);
      const left = (await control.snapshotsOf(volume)).find((s) => s.name === name)?.hosts ?? [];
      return { removed: name, volume, heldOn: left };
    }),
  );
  app.post(
    '/v1/volumes/:name/rollback',
    route(200, async (req) => {
      const volume = volumeOf(req);
      const { snapshot } = decodeRollbackBody(req.body);
      await snapshots.rollback(volume, snapshot);
      return { volume, snapshot };
    }),
  );
}
