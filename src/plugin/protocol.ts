import { FerryError } from '../errors';
import { validateVolumeName } from '../volume/names';
import { decodeCreateOptions } from '../wire/create-options';

/**
 * Docker's volume plugin protocol, field names exactly as dockerd sends and reads them
 * (https://docs.docker.com/engine/extend/plugins_volume/).
 */

export interface CreateRequest {
  Name: string;
  /** Absent or null from dockerd when no `-o` was given: decoded as `{}`. */
  Opts: Record<string, string>;
}
export interface NameRequest {
  Name: string;
}
export interface MountRequest {
  Name: string;
  ID: string;
}

export interface DockerVolume {
  Name: string;
  Mountpoint?: string;
  /** RFC 3339, or absent. */
  CreatedAt?: string;
  /** Free-form; shown by `docker volume inspect`. */
  Status?: Record<string, unknown>;
}

export interface ErrResponse {
  Err: string;
}
export interface ActivateResponse {
  Implements: string[];
}
export interface MountResponse extends ErrResponse {
  Mountpoint: string;
}
export interface GetResponse extends ErrResponse {
  Volume?: DockerVolume;
}
export interface ListResponse extends ErrResponse {
  Volumes: DockerVolume[];
}
export interface CapabilitiesResponse {
  Capabilities: { Scope: 'global' | 'local' };
}

/** The content type dockerd sends and expects. */
export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** A request body as JSON gave it; the decoders below turn it into the typed requests above, once. */
export type RequestBody = Record<string, unknown>;

/** The volume name of any request, validated (INVALID_NAME with what a name may hold). */
export function decodeName(body: RequestBody): NameRequest {
  return { Name: validateVolumeName(body.Name) };
}

/** A Create: `Opts` may be absent or null (Docker sends null without `-o`); each value a string. */
export function decodeCreate(body: RequestBody): CreateRequest {
  // Opts first, then the name: the order in which errors have always come.
  const opts = decodeCreateOptions(body.Opts, 'Opts');
  return { Name: validateVolumeName(body.Name), Opts: opts };
}

/** A Mount or Unmount: dockerd always sends the ID of the container's mount point. */
export function decodeMount(body: RequestBody): MountRequest {
  const Name = validateVolumeName(body.Name);
  const id = body.ID;
  if (typeof id !== 'string' || id.length === 0 || id.length > 512) {
    throw new FerryError('INVALID_REQUEST', 'Mount and Unmount need a non-empty ID (dockerd always sends one)');
  }
  return { Name, ID: id };
}
