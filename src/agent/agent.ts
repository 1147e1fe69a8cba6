import { join } from 'node:path';
import type { Config } from '../config/config';
import type { ControlClient, VolumeView } from '../control/control';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { checkSpecFits, resolveCreateOptions, type VolumeSpec } from '../volume/options';
import { validateVolumeName } from '../volume/names';
import { formatSize } from '../volume/size';
import { abilitiesOf, hasUsage, requireSnapshots, requireStreams, type Backend, type MovableBackend } from './backends/backend';
import type { BackendSlot } from './backends';
import type { BackendKind } from './backends/registry';
import { KeyedLock } from './keyed-lock';
import type { Mover } from './mover';
import type { ContainerSpec, DockerHost } from './docker-host';
import type { ReconcileAction } from './reconcile';
import { reconcileHost } from './reconciler';
import type { SourceSide } from './transfer-handler';
import type { TargetSide } from './mover';

/** What `ferry status` shows about this host. */
export interface AgentStatus {
  node: string;
  backends: { kind: BackendKind; ok: boolean; error?: string; totalBytes?: number; freeBytes?: number; abilities?: string[] }[];
  volumes: number;
  mounted: string[];
  orphans: { backend?: string; name: string; reason: string }[];
  missing: string[];
  /** Volumes primary elsewhere whose replica this host keeps (read-only, for increments-only moves back). */
  replicas: string[];
  /** Volumes whose copy here is waiting to be destroyed (removed volumes, replicas not kept). */
  removing: string[];
}

/**
 * The dataset agent of one host: turns Docker's volume requests into backend operations, keeps mount
 * reference counts as leases in control, and reconciles records with disk and mount table at start.
 */
export class Agent implements SourceSide, TargetSide {
  private readonly lock = new KeyedLock();
  /** Cluster mode: pulls volumes whose primary is another host when they are mounted here. */
  private mover?: { mover: Mover; waitMs: number };
  /** This host's dockerd, to name the containers behind leases and to restart moved containers. */
  private docker?: DockerHost;
  /** Volumes whose filesystem is mounted under the mount root, by name. */
  private readonly mounted = new Map<string, string>();
  private orphans: AgentStatus['orphans'] = [];
  private missing: string[] = [];

  constructor(
    private readonly config: Config,
    private readonly control: ControlClient,
    private readonly backends: ReadonlyMap<BackendKind, BackendSlot>,
    private readonly log: Logger,
  ) {}

  get node(): string {
    return this.config.nodeName;
  }

  /** Turns on cluster mode: a Mount of a volume primary elsewhere moves it here. */
  attachMover(mover: Mover, waitMs: number): void {
    this.mover = { mover, waitMs };
  }

  attachDocker(docker: DockerHost): void {
    this.docker = docker;
  }

  /** Looks up which containers hold `volume` here and tells control (never from inside Mount). */
  private async annotate(volume: string): Promise<void> {
    if (!this.docker) return;
    try {
      await this.control.annotateLeases(volume, this.node, await this.docker.containersUsing(volume));
    } catch (err) {
      this.log.debug({ err, volume }, 'cannot name the containers using a volume');
    }
  }

  /** Plain Docker move away from here: stop the containers using `volume`, keep how to start them. */
  async stopContainersFor(volume: string): Promise<ContainerSpec[]> {
    if (!this.docker) throw new FerryError('BACKEND_UNAVAILABLE', `host ${this.node} has no dockerd to stop containers with`);
    return this.docker.captureAndStop(volume);
  }

  /** Starts containers moved here with their volume; failures are logged, not thrown. */
  async startContainers(specs: ContainerSpec[]): Promise<void> {
    if (!this.docker || specs.length === 0) return;
    for (const f of await this.docker.recreate(specs)) this.log.error({ container: f.name, err: f.error }, 'cannot start a moved container');
  }

  withVolumeLock<T>(volume: string, work: () => Promise<T>): Promise<T> {
    return this.lock.run(volume, work);
  }

  /** The backend of a volume that is moving: only one with streams can (INVALID_REQUEST names it otherwise). */
  async backendOf(volume: string): Promise<MovableBackend> {
    const v = await this.control.getVolume(volume);
    if (!v) throw notFound(volume);
    return requireStreams(this.backendFor(v.backend), volume, 'move');
  }

  /** For the final step of a move away from here: no lease may be held here; then unmount. */
  async releaseForMove(volume: string): Promise<void> {
    const held = (await this.control.leasesOf(volume)).filter((l) => l.node === this.node);
    if (held.length > 0) {
      throw new FerryError('VOLUME_IN_USE', `volume ${volume} is still mounted on ${this.node} by ${held.length} container mount(s)`);
    }
    await (await this.backendOf(volume)).unmount(volume, this.mountpointOf(volume));
    this.mounted.delete(volume);
  }

  /**
   * The live dataset becomes snapshot `snap` (the target's last step of a move). No lock: a Mount
   * here that waits for this move holds the volume's lock, and nothing mounts a volume whose move
   * has not finished (control grants no lease), so nothing else touches the dataset.
   */
  async promote(volume: string, snap: string): Promise<void> {
    const v = await this.control.getVolume(volume);
    if (!v) throw notFound(volume);
    await requireSnapshots(this.backendFor(v.backend), volume, 'promote').rollback(volume, snap, { sizeBytes: v.sizeBytes ?? undefined, fs: v.fs ?? undefined });
    this.missing = this.missing.filter((n) => n !== volume);
  }

  mountpointOf(name: string): string {
    return join(this.config.mountRoot, name);
  }

  private backendFor(kind: string): Backend {
    const slot = this.backends.get(kind as BackendKind);
    if (!slot) {
      throw new FerryError('BACKEND_UNAVAILABLE', `backend ${kind} is not enabled on host ${this.node}`);
    }
    if (slot.error) {
      throw new FerryError('BACKEND_UNAVAILABLE', `backend ${kind} is unavailable on host ${this.node}: ${slot.error}`);
    }
    return slot.backend;
  }

  /** Creates a volume; idempotent for the same options (Docker re-sends Create). */
  async create(rawName: unknown, opts: Record<string, unknown> | null | undefined): Promise<VolumeView> {
    const name = validateVolumeName(rawName);
    const spec = resolveCreateOptions(opts, this.config);
    return this.lock.run(name, async () => {
      const existing = await this.control.getVolume(name);
      if (existing?.state === 'deleting') throw await this.stillRemoving(existing);
      if (existing) return this.existingFor(existing, spec, opts);
      const backend = this.backendFor(spec.backend);
      checkSpecFits(spec, backend.sizeRules, await backend.capacity());
      const options = Object.fromEntries(Object.entries(opts ?? {}).map(([k, v]) => [k, String(v)]));
      const reserved = await this.control.reserveVolume({
        name,
        backend: spec.backend,
        sizeBytes: spec.sizeBytes,
        fs: spec.fs,
        options,
        primaryNode: this.node,
      });
      if (!reserved) {
        // Another host took the name between our look and our reservation.
        const raced = await this.control.getVolume(name);
        if (raced?.state === 'deleting') throw await this.stillRemoving(raced);
        if (raced) return this.existingFor(raced, spec, opts);
        throw new FerryError('VOLUME_EXISTS', `volume ${name} is being created elsewhere; try again`);
      }
      try {
        await backend.create(name, { sizeBytes: spec.sizeBytes, fs: spec.fs });
      } catch (err) {
        const e = toFerryError(err);
        await this.control.abandonVolume(name, this.node, e.message);
        throw e;
      }
      await this.control.confirmVolume(name, this.node);
      return (await this.control.getVolume(name))!;
    });
  }

  /** An existing volume answers a Create with no options or the same ones; other options conflict. */
  private existingFor(v: VolumeView, spec: VolumeSpec, opts: Record<string, unknown> | null | undefined): VolumeView {
    if (v.state === 'creating') {
      throw new FerryError('VOLUME_BUSY', `volume ${v.name} is being created right now; try again in a moment`);
    }
    const noOptions = !opts || Object.keys(opts).length === 0;
    const same =
      v.backend === spec.backend && (v.sizeBytes ?? undefined) === spec.sizeBytes && (v.fs ?? undefined) === spec.fs && v.options.replica === spec.replica;
    if (noOptions || same) return v;
    const has = `backend=${v.backend}${v.sizeBytes ? ` size=${formatSize(v.sizeBytes)}` : ''}${v.fs ? ` fs=${v.fs}` : ''}${v.options.replica ? ` replica=${v.options.replica}` : ''}`;
    throw new FerryError(
      'VOLUME_EXISTS',
      `volume ${v.name} already exists with ${has}: use it without options, pick another name, or remove it first`,
    );
  }

  /** A Create of a name whose old copies are still being destroyed: which hosts, and whether they are up. */
  private async stillRemoving(v: VolumeView): Promise<FerryError> {
    const down = new Set((await this.control.listNodes().catch(() => [])).filter((n) => n.state !== 'up').map((n) => n.name));
    const waiting = v.dropping.filter((n) => down.has(n));
    return new FerryError(
      'VOLUME_BUSY',
      `volume ${v.name} is still being removed from ${v.dropping.join(', ') || v.primaryNode}; retry shortly` +
        (waiting.length ? ` (${waiting.join(', ')} ${waiting.length > 1 ? 'are' : 'is'} down: its copy goes when it is back), or use another name` : ''),
    );
  }

  /**
   * Removes a volume from the whole cluster, asked on any host: refused while mounted anywhere
   * (naming hosts and containers); else control marks it `deleting` with every copy to destroy, this
   * host destroys its own at once, and every other holder destroys its copy when it next hears from
   * control (heartbeat). The record goes with the last copy. Idempotent; a volume ferry does not know
   * is fine. Answers the hosts whose copy is still to go.
   */
  async remove(rawName: unknown): Promise<string[]> {
    const name = validateVolumeName(rawName);
    return this.lock.run(name, async () => {
      const v = await this.control.getVolume(name);
      if (!v) {
        this.log.warn({ volume: name, op: 'remove' }, 'remove of unknown volume');
        return [];
      }
      const hosts = await this.control.beginDelete(name, this.node);
      this.log.info({ volume: name, op: 'remove', copies: hosts }, 'volume marked for removal');
      if (!hosts.includes(this.node)) return hosts;
      try {
        await this.destroyHere(name, v.backend);
      } catch (err) {
        const e = toFerryError(err);
        throw new FerryError(
          e.code,
          `volume ${name} is being removed, but its copy on ${this.node} could not be destroyed yet: ${e.message}; ferry retries by itself (or run ferry volume rm ${name} again)`,
          { cause: err },
        );
      }
      return hosts.filter((h) => h !== this.node);
    });
  }

  /**
   * Destroys this host's copy of `volume` when control asks for it (a removed volume, a replica not
   * kept): heartbeat answers, upkeep, reconciliation and a peer's `drop` request call this. Checks
   * with control first, under the volume's lock, so a copy that is still wanted is never touched.
   * True when it destroyed one.
   */
  async destroyCopy(volume: string): Promise<boolean> {
    return this.lock.run(volume, async () => {
      const v = await this.control.getVolume(volume);
      if (!v || !v.dropping.includes(this.node)) return false;
      if (v.state !== 'deleting' && v.primaryNode === this.node) {
        throw new FerryError('INTERNAL', `control asks ${this.node} to drop its copy of ${volume}, but it is the primary; kept`);
      }
      await this.destroyHere(volume, v.backend);
      this.log.info({ volume, op: 'destroy-copy', reason: v.state === 'deleting' ? 'removed' : 'replica not kept' }, 'copy destroyed');
      return true;
    });
  }

  /** Destroys the dataset here and tells control (which forgets the volume with its last copy). */
  private async destroyHere(name: string, kind: string): Promise<void> {
    await this.destroyDataset(name, kind);
    await this.control.copyDestroyed(name, this.node);
  }

  private async destroyDataset(name: string, kind: string): Promise<void> {
    const backend = this.backendFor(kind);
    await backend.unmount(name, this.mountpointOf(name));
    this.mounted.delete(name);
    await backend.destroy(name);
  }

  /** Mounts for Docker Mount ID `mountId`; returns the mountpoint. Counted per ID. */
  async mount(rawName: unknown, mountId: unknown): Promise<string> {
    const name = validateVolumeName(rawName);
    const id = requireId(mountId);
    return this.lock.run(name, async () => {
      const v = await this.usable(name);
      const target = this.mountpointOf(name);
      const backend = this.backendFor(v.backend);
      const fresh = !this.mounted.has(name);
      if (fresh) {
        await backend.mount(name, target);
        this.mounted.set(name, target);
      }
      // Mount first, lease second: a crash between them leaves a mount without lease, which
      // reconciliation unmounts; the reverse would leave a lease nobody ever releases. Control grants
      // the lease only to the primary at the current generation (fencing).
      try {
        await this.control.acquireLease({ volume: name, mountId: id, node: this.node, mountpoint: target, generation: v.generation });
      } catch (err) {
        if (fresh) {
          await backend.unmount(name, target).catch((e: unknown) => this.log.warn({ err: e, volume: name }, 'cannot unmount after a refused lease'));
          this.mounted.delete(name);
        }
        throw err;
      }
      // dockerd starts the container once Mount has answered: look it up a little later.
      if (this.docker) setTimeout(() => void this.annotate(name), 2000).unref();
      return target;
    });
  }

  /** Releases Docker Mount ID `mountId`; unmounts the filesystem when no lease is left. */
  async unmount(rawName: unknown, mountId: unknown): Promise<void> {
    const name = validateVolumeName(rawName);
    const id = requireId(mountId);
    await this.lock.run(name, async () => {
      if (!(await this.control.releaseLease(name, id))) {
        this.log.warn({ volume: name, op: 'unmount', mountId: id }, 'unmount for a mount id that holds no lease');
      }
      const left = (await this.control.leasesOf(name)).filter((l) => l.node === this.node);
      if (left.length > 0) return;
      const v = await this.control.getVolume(name);
      if (!v) return;
      await this.backendFor(v.backend).unmount(name, this.mountpointOf(name));
      this.mounted.delete(name);
    });
  }

  private async usable(name: string): Promise<VolumeView> {
    let v = await this.control.getVolume(name);
    if (!v) throw notFound(name);
    if (v.primaryNode !== this.node && this.mover && v.state === 'ready') {
      await this.mover.mover.pullForMount(name, this.mover.waitMs);
      v = await this.control.getVolume(name);
      if (!v) throw notFound(name);
    }
    if (v.state !== 'ready') {
      throw new FerryError('VOLUME_BUSY', `volume ${name} is ${v.state === 'creating' ? 'being created' : 'being removed'}; try again shortly`);
    }
    if (v.primaryNode !== this.node) {
      throw new FerryError(
        'NOT_PRIMARY',
        this.mover
          ? `volume ${name} moved to host ${v.primaryNode} meanwhile; retry the mount`
          : `volume ${name} lives on host ${v.primaryNode}, not ${this.node}: moving volumes between hosts needs ferry control (cluster mode)`,
      );
    }
    if (this.missing.includes(name)) {
      throw new FerryError('VOLUME_NOT_FOUND', `volume ${name} is recorded but its ${v.backend} dataset is missing on ${this.node}; see ferry status`);
    }
    return v;
  }

  /** The mountpoint while mounted, else the empty string (Docker's Path). */
  path(rawName: unknown): string {
    const name = validateVolumeName(rawName);
    return this.mounted.get(name) ?? '';
  }

  /** A volume as Docker sees it: one being created or removed does not exist yet, or any more. */
  async get(rawName: unknown): Promise<VolumeView> {
    const v = await this.inspect(rawName);
    if (v.state === 'deleting') throw notFound(v.name);
    return v;
  }

  /** A volume as `ferry volume inspect` shows it: also while it is being removed (which copies are left). */
  async inspect(rawName: unknown): Promise<VolumeView> {
    const name = validateVolumeName(rawName);
    const v = await this.control.getVolume(name);
    if (!v || v.state === 'creating') throw notFound(name);
    return v;
  }

  /** Volumes as Docker lists them; `all` adds those being removed (for ferry volume ls). */
  async list(opts: { all?: boolean } = {}): Promise<VolumeView[]> {
    return (await this.control.listVolumes()).filter((v) => v.state === 'ready' || (opts.all && v.state === 'deleting'));
  }

  /** Brings records, disk and mount table into agreement at start (DESIGN: live restore). */
  async reconcile(): Promise<ReconcileAction[]> {
    const result = await reconcileHost({
      node: this.node,
      mountRoot: this.config.mountRoot,
      control: this.control,
      backends: this.backends,
      log: this.log,
      backendFor: (kind) => this.backendFor(kind),
      mountpointOf: (name) => this.mountpointOf(name),
      markMounted: (name) => this.mounted.set(name, this.mountpointOf(name)),
      destroyDataset: (name, kind) => this.destroyDataset(name, kind),
      destroyCopy: (name) => this.destroyCopy(name),
    });
    this.orphans = result.orphans;
    this.missing = result.missing;
    return result.actions;
  }

  /**
   * Periodic upkeep: measures used bytes, unmounts filesystems that no lease holds (an Unmount that
   * found the filesystem busy), and retries copies here that control asks to destroy (a remove whose
   * destroy failed; in a cluster the heartbeat answer also carries them).
   */
  async maintain(): Promise<void> {
    for (const v of await this.control.listVolumes()) {
      if (!v.dropping.includes(this.node)) continue;
      await this.destroyCopy(v.name).catch((err: unknown) => this.log.warn({ err, volume: v.name }, 'still cannot destroy a removed copy'));
    }
    for (const [kind, slot] of this.backends) {
      if (slot.error || !hasUsage(slot.backend)) continue;
      try {
        await this.control.recordUsage(await slot.backend.usage());
      } catch (err) {
        this.log.warn({ err, backend: kind }, 'cannot measure usage');
      }
    }
    const leased = new Set((await this.control.leasesOnNode(this.node)).map((l) => l.volume));
    for (const name of leased) await this.annotate(name);
    for (const name of [...this.mounted.keys()]) {
      if (leased.has(name)) continue;
      await this.lock.run(name, async () => {
        const v = await this.control.getVolume(name);
        if (!v || (await this.control.leasesOf(name)).some((l) => l.node === this.node)) return;
        try {
          await this.backendFor(v.backend).unmount(name, this.mountpointOf(name));
          this.mounted.delete(name);
          this.log.info({ volume: name, op: 'maintain' }, 'unmounted a volume no container holds');
        } catch (err) {
          this.log.warn({ err, volume: name }, 'still cannot unmount');
        }
      });
    }
  }

  async status(): Promise<AgentStatus> {
    const backends: AgentStatus['backends'] = [];
    for (const [kind, slot] of this.backends) {
      if (slot.error) {
        backends.push({ kind, ok: false, error: slot.error });
        continue;
      }
      try {
        backends.push({ kind, ok: true, ...(await slot.backend.capacity()), abilities: abilitiesOf(slot.backend) });
      } catch (err) {
        backends.push({ kind, ok: false, error: toFerryError(err).message });
      }
    }
    const volumes = await this.control.listVolumes();
    return {
      node: this.node,
      backends,
      volumes: volumes.filter((v) => v.state === 'ready').length,
      mounted: [...this.mounted.keys()].sort(),
      orphans: this.orphans,
      missing: this.missing,
      replicas: volumes.filter((v) => v.replicas.includes(this.node)).map((v) => v.name),
      removing: volumes.filter((v) => v.dropping.includes(this.node)).map((v) => v.name),
    };
  }
}

function notFound(name: string): FerryError {
  return new FerryError('VOLUME_NOT_FOUND', `volume ${name} does not exist: create it with docker volume create -d ferry ${name}`);
}

function requireId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 512) {
    throw new FerryError('INVALID_REQUEST', 'Mount and Unmount need a non-empty ID (dockerd always sends one)');
  }
  return id;
}
