import type { Config } from '../config/config';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { checkSpecFits, resolveCreateOptions, type VolumeSpec } from '../volume/options';
import { formatSize } from '../volume/size';
import type { ControlClient } from '../wire/control-client';
import type { VolumeView } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import type { Copies } from './copies';
import type { KeyedLock } from './keyed-lock';
import type { Reclaimer } from './reclaimer';
import type { UsageMeter } from './usage';
import { volumeNotFound } from './volume-errors';
import { cloneSpec, parseCloneSource, type CloneSource } from '../volume/clone-source';
import { hasSnapshots, type Backend } from './backends/backend';
import { cloneDataset } from './clone-dataset';
import { isControlUnreachable, type ControlAway } from './control-away';

/** Create options as Docker sends them (`-o KEY=VALUE`), already decoded: none is `{}`. */
export type CreateOptions = Readonly<Record<string, string>>;

/**
 * What Docker and the CLI ask of volumes, apart from mounting: create, remove, get, inspect, list.
 * Names arrive validated (the plugin layer and the local API decode requests once).
 */
export class VolumeService {
  constructor(
    private readonly config: Config,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly copies: Copies,
    private readonly lock: KeyedLock,
    private readonly meter: UsageMeter,
    private readonly log: Logger,
    private readonly reclaimer: Reclaimer,
    /** fence, cluster mode: the agent's own records, for Get and List while control is unreachable. */
    private readonly away?: ControlAway,
  ) {}

  private get node(): string {
    return this.config.nodeName;
  }

  /** Creates a volume; idempotent for the same options (Docker re-sends Create). */
  async create(name: string, opts: CreateOptions): Promise<VolumeView> {
    // snap: `-o from=VOLUME@SNAPSHOT` makes the volume a clone, of the source's kind.
    const from = opts.from === undefined ? undefined : parseCloneSource(opts.from);
    const spec = from ? cloneSpec(opts, await this.cloneSourceVolume(from), this.config) : resolveCreateOptions(opts, this.config);
    return this.lock.run(name, async () => {
      const existing = await this.control.getVolume(name);
      if (existing?.state === 'deleting') throw await this.stillRemoving(existing);
      if (existing) return this.existingFor(existing, spec, opts);
      const backend = this.backends.backendFor(spec.backend);
      checkSpecFits(spec, backend.sizeRules, await backend.capacity());
      if (from) await this.checkCloneSourceHere(from, backend);
      const reserved = await this.control.reserveVolume({
        name,
        backend: spec.backend,
        sizeBytes: spec.sizeBytes,
        fs: spec.fs,
        // policy (issue 7 item 3): the resolved policy is recorded as the volume's own (a profile's too: config
        // differs per host), and `policy=` (none, over a profile's) is not recorded at all.
        options: { ...withoutKey(opts, 'policy'), ...(spec.policy ? { policy: spec.policy } : {}) },
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
        if (from) await this.lock.run(from.volume, () => cloneDataset(backend, from, name, { sizeBytes: spec.sizeBytes, fs: spec.fs }));
        else await backend.create(name, { sizeBytes: spec.sizeBytes, fs: spec.fs });
      } catch (err) {
        const e = toFerryError(err);
        await this.control.abandonVolume(name, this.node, e.message);
        throw e;
      }
      await this.control.confirmVolume(name, this.node);
      // Used bytes from the start: docker volume inspect shows them before the next usage pass.
      this.meter.measure(backend, name);
      return (await this.control.getVolume(name))!;
    });
  }

  /** An existing volume answers a Create with no options or the same ones; other options conflict. */
  private existingFor(v: VolumeView, spec: VolumeSpec, opts: CreateOptions): VolumeView {
    if (v.state === 'creating') {
      throw new FerryError('VOLUME_BUSY', `volume ${v.name} is being created right now; try again in a moment`);
    }
    const noOptions = Object.keys(opts).length === 0;
    const same =
      v.backend === spec.backend &&
      (v.sizeBytes ?? undefined) === spec.sizeBytes &&
      (v.fs ?? undefined) === spec.fs &&
      v.options.replica === spec.replica &&
      v.options.from === opts.from;
    if (noOptions || same) return v;
    const has = `backend=${v.backend}${v.sizeBytes ? ` size=${formatSize(v.sizeBytes)}` : ''}${v.fs ? ` fs=${v.fs}` : ''}${v.options.replica ? ` replica=${v.options.replica}` : ''}`;
    throw new FerryError(
      'VOLUME_EXISTS',
      `volume ${v.name} already exists with ${has}: use it without options, pick another name, or remove it first`,
    );
  }

  /** snap: the volume a clone comes from, as control records it; VOLUME_NOT_FOUND / SNAPSHOT_NOT_FOUND saying what to check. */
  private async cloneSourceVolume(from: CloneSource): Promise<VolumeView> {
    const v = await this.control.getVolume(from.volume);
    if (!v || v.state !== 'ready') {
      throw new FerryError('VOLUME_NOT_FOUND', `cannot make a volume from ${from.volume}@${from.snapshot}: volume ${from.volume} does not exist (docker volume ls)`);
    }
    if (!(await this.control.snapshotsOf(from.volume)).some((s) => s.name === from.snapshot)) {
      throw new FerryError('SNAPSHOT_NOT_FOUND', `cannot make a volume from ${from.volume}@${from.snapshot}: ${from.volume} has no snapshot ${from.snapshot} (ferry snapshot ls ${from.volume})`);
    }
    return v;
  }

  /**
   * snap: a clone is made on a host that holds the snapshot (no data crosses hosts for a Create);
   * another host is told where to run it. The new volume can move afterwards like any other.
   */
  private async checkCloneSourceHere(from: CloneSource, backend: Backend): Promise<void> {
    if (hasSnapshots(backend) && (await backend.listSnapshots(from.volume)).includes(from.snapshot)) return;
    const held = (await this.control.snapshotsOf(from.volume)).find((s) => s.name === from.snapshot)?.hosts ?? [];
    throw new FerryError(
      'NOT_PRIMARY',
      `snapshot ${from.snapshot} of ${from.volume} is held on ${held.join(', ') || 'no host'}, not on ${this.node}: create the volume on ${held[0] ?? 'that host'} (it moves here on first use)`,
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
  async remove(name: string): Promise<string[]> {
    return this.lock.run(name, async () => {
      const v = await this.control.getVolume(name);
      if (!v) {
        this.log.warn({ volume: name, op: 'remove' }, 'remove of unknown volume');
        return [];
      }
      const { hosts, retained } = await this.control.beginRemove(name, this.node);
      this.log.info({ volume: name, op: 'remove', copies: hosts, retained: retained?.dataset }, 'volume marked for removal');
      // reclaim=retain: this host keeps the data before its live copy goes (another primary's upkeep does its own).
      if (retained?.node === this.node) {
        try {
          await this.reclaimer.retainHere(retained);
        } catch (err) {
          const e = toFerryError(err);
          throw new FerryError(
            e.code,
            `volume ${name} is being removed with its data retained, but its copy on ${this.node} could not be kept yet: ${e.message}; ferry retries by itself (or run ferry volume rm ${name} again)`,
            { cause: err },
          );
        }
        return hosts.filter((h) => h !== this.node);
      }
      if (!hosts.includes(this.node)) return hosts;
      try {
        await this.copies.destroyHere(name, v.backend);
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

  /** A volume as Docker sees it: one being created or removed does not exist yet, or any more. */
  async get(name: string): Promise<VolumeView> {
    const v = await this.inspectOrRecorded(name);
    if (v.state === 'deleting') throw volumeNotFound(v.name);
    return v;
  }

  /**
   * fence: control's answer, kept in the volume book; while control is unreachable, the book's record
   * (marked `controlAway`). Never "no such volume" for a volume the book knows: dockerd would make an
   * empty `local` volume of that name.
   */
  private async inspectOrRecorded(name: string): Promise<VolumeView> {
    try {
      return await this.inspect(name);
    } catch (err) {
      if (this.away && isControlUnreachable(err)) return this.away.view(name, err);
      throw err;
    }
  }

  /** A volume as `ferry volume inspect` shows it: also while it is being removed (which copies are left). */
  async inspect(name: string): Promise<VolumeView> {
    await this.meter.settled(name);
    const v = await this.control.getVolume(name);
    this.away?.seen(name, v);
    if (!v || v.state === 'creating') throw volumeNotFound(name);
    return v;
  }

  /** Volumes as Docker lists them; `all` adds those being removed (for ferry volume ls). */
  async list(opts: { all?: boolean } = {}): Promise<VolumeView[]> {
    // ferry volume ls shows used bytes; Docker's List shows none, so it does not wait.
    if (opts.all) await this.meter.settled();
    let all: VolumeView[];
    try {
      all = await this.control.listVolumes();
      this.away?.seenAll(all);
    } catch (err) {
      // fence: control unreachable: every volume this host knows, as last recorded.
      if (!this.away || !isControlUnreachable(err)) throw err;
      all = this.away.list();
    }
    return all.filter((v) => v.state === 'ready' || (opts.all && v.state === 'deleting'));
  }
}

/** `o` without `key` (policy: the Create options as recorded). */
function withoutKey(o: CreateOptions, key: string): Record<string, string> {
  const { [key]: _dropped, ...rest } = o;
  return rest;
}
