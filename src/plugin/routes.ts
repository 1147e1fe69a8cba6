import type { Agent } from '../agent/agent';
import type { VolumeView } from '../control/control';
import { FerryError } from '../errors';
import { formatSize } from '../volume/size';
import type { DockerVolume } from './protocol';

/** One plugin endpoint: how to find the volume name in the request (for logs), and the call. */
export interface Route {
  /** Read-only endpoints log at debug; the rest at info. */
  readOnly: boolean;
  handle(body: Record<string, unknown>): Promise<object>;
}

function toDocker(v: VolumeView, mountpoint: string): DockerVolume {
  return {
    Name: v.name,
    ...(mountpoint ? { Mountpoint: mountpoint } : {}),
    CreatedAt: v.createdAt,
    Status: {
      backend: v.backend,
      ...(v.fs ? { fs: v.fs } : {}),
      size: v.sizeBytes === null ? 'pool' : formatSize(v.sizeBytes),
      sizeBytes: v.sizeBytes,
      usedBytes: v.usedBytes,
      primary: v.primaryNode,
      replicas: v.replicas,
      generation: v.generation,
      state: v.state,
      mounts: v.mounts,
    },
  };
}

function opts(body: Record<string, unknown>): Record<string, unknown> | null {
  const o = body.Opts;
  if (o === undefined || o === null) return null;
  if (typeof o !== 'object' || Array.isArray(o)) throw new FerryError('INVALID_REQUEST', 'Opts must be an object of strings');
  return o as Record<string, unknown>;
}

/** The one route table: Docker endpoint -> agent call, answers in Docker's field names. */
export function pluginRoutes(agent: Agent): Record<string, Route> {
  return {
    '/Plugin.Activate': { readOnly: true, handle: async () => ({ Implements: ['VolumeDriver'] }) },
    '/VolumeDriver.Capabilities': { readOnly: true, handle: async () => ({ Capabilities: { Scope: 'global' } }) },
    '/VolumeDriver.Create': {
      readOnly: false,
      handle: async (b) => {
        await agent.create(b.Name, opts(b));
        return { Err: '' };
      },
    },
    '/VolumeDriver.Remove': {
      readOnly: false,
      handle: async (b) => {
        await agent.remove(b.Name);
        return { Err: '' };
      },
    },
    '/VolumeDriver.Mount': {
      readOnly: false,
      handle: async (b) => ({ Mountpoint: await agent.mount(b.Name, b.ID), Err: '' }),
    },
    '/VolumeDriver.Unmount': {
      readOnly: false,
      handle: async (b) => {
        await agent.unmount(b.Name, b.ID);
        return { Err: '' };
      },
    },
    '/VolumeDriver.Path': { readOnly: true, handle: async (b) => ({ Mountpoint: agent.path(b.Name), Err: '' }) },
    '/VolumeDriver.Get': {
      readOnly: true,
      handle: async (b) => {
        const v = await agent.get(b.Name);
        return { Volume: toDocker(v, agent.path(v.name)), Err: '' };
      },
    },
    '/VolumeDriver.List': {
      readOnly: true,
      handle: async () => ({ Volumes: (await agent.list()).map((v) => toDocker(v, agent.path(v.name))), Err: '' }),
    },
  };
}
