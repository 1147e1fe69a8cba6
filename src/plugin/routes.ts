import type { Mounts } from '../agent/mounts';
import type { VolumeService } from '../agent/volume-service';
import { isDrillVolumeName } from '../volume/restore-drill';
import { formatSize } from '../volume/size';
import type { VolumeView } from '../wire/records';
import type { FerryError } from '../errors';
import { decodeCreate, decodeMount, decodeName, type DockerVolume, type RequestBody } from './protocol';

/** One plugin endpoint: how to find the volume name in the request (for logs), and the call. */
export interface Route {
  /** Read-only endpoints log at debug; the rest at info. */
  readOnly: boolean;
  /**
   * fence: errors after which this route gives dockerd no answer at all (the connection is closed).
   * dockerd takes a Get's `Err` as "no such volume" and makes an empty `local` volume of the name; a
   * broken connection it takes as a failure, and refuses the container instead.
   */
  noAnswerOn?: (err: FerryError) => boolean;
  /** Decodes the body into its typed request (protocol.ts), calls the agent, answers in Docker's fields. */
  handle(body: RequestBody): Promise<object>;
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
      // fence: answered from the agent's own records while control is unreachable.
      ...(v.controlAway
        ? { control: `unreachable${v.controlAway.since ? ` since ${v.controlAway.since}` : ''}; as recorded at ${v.controlAway.recordedAt}` }
        : {}),
      // replicate: each standby's lag (age of its newest replication snapshot) against the RPO.
      ...(v.standbys ? { standbys: v.standbys.map((s) => ({ node: s.node, lagSeconds: s.lagSeconds, late: s.late, rpoSeconds: s.rpoSeconds, snapshot: s.snapshot })) } : {}),
      // policy (issue 7 item 3): docker volume inspect shows the protection policy.
      ...(v.options.policy ? { policy: v.options.policy } : {}),
      // replicate: each standby's lag (age of its newest replication snapshot) against the RPO.
      ...(v.standbys ? { standbys: v.standbys.map((s) => ({ node: s.node, lagSeconds: s.lagSeconds, late: s.late, rpoSeconds: s.rpoSeconds, snapshot: s.snapshot })) } : {}),
      // snap: how many snapshots, and the newest (docker volume inspect shows them).
      ...(v.snapshots ? { snapshots: v.snapshots.count, newestSnapshot: v.snapshots.newest, newestSnapshotAt: v.snapshots.newestAt } : {}),
    },
  };
}

/** The one route table: Docker endpoint -> agent call, answers in Docker's field names. */
export function pluginRoutes(volumes: VolumeService, mounts: Mounts): Record<string, Route> {
  return {
    '/Plugin.Activate': { readOnly: true, handle: async () => ({ Implements: ['VolumeDriver'] }) },
    '/VolumeDriver.Capabilities': { readOnly: true, handle: async () => ({ Capabilities: { Scope: 'global' } }) },
    '/VolumeDriver.Create': {
      readOnly: false,
      handle: async (b) => {
        const r = decodeCreate(b);
        await volumes.create(r.Name, r.Opts);
        return { Err: '' };
      },
    },
    '/VolumeDriver.Remove': {
      readOnly: false,
      handle: async (b) => {
        await volumes.remove(decodeName(b).Name);
        return { Err: '' };
      },
    },
    '/VolumeDriver.Mount': {
      readOnly: false,
      handle: async (b) => {
        const r = decodeMount(b);
        return { Mountpoint: await mounts.mount(r.Name, r.ID), Err: '' };
      },
    },
    '/VolumeDriver.Unmount': {
      readOnly: false,
      handle: async (b) => {
        const r = decodeMount(b);
        await mounts.unmount(r.Name, r.ID);
        return { Err: '' };
      },
    },
    '/VolumeDriver.Path': { readOnly: true, handle: async (b) => ({ Mountpoint: mounts.path(decodeName(b).Name), Err: '' }) },
    '/VolumeDriver.Get': {
      readOnly: true,
      // Control unreachable and the name not in this host's records: it may be a ferry volume.
      noAnswerOn: (e) => e.code === 'NODE_UNREACHABLE' && e.details?.controlUnreachable === true,
      handle: async (b) => {
        const v = await volumes.get(decodeName(b).Name);
        return { Volume: toDocker(v, mounts.path(v.name)), Err: '' };
      },
    },
    '/VolumeDriver.List': {
      readOnly: true,
      // bank-policy: a restore drill's scratch volume (ferry-drill-<8 hex>, minutes at most) is not the user's to see.
      handle: async () => ({ Volumes: (await volumes.list()).filter((v) => !isDrillVolumeName(v.name)).map((v) => toDocker(v, mounts.path(v.name))), Err: '' }),
    },
  };
}
