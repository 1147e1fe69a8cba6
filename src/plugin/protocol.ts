/**
 * Docker's volume plugin protocol, field names exactly as dockerd sends and reads them
 * (https://docs.docker.com/engine/extend/plugins_volume/).
 */

export interface CreateRequest {
  Name: string;
  Opts?: Record<string, string> | null;
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
