import { Readable } from 'node:stream';
import type { Backend, DatasetSpec, PoolCapacity, SizeRules, SnapshotCapable, StreamCapable, UsageCapable } from '../../src/agent/backends/backend';
import { FerryError } from '../../src/errors';

/**
 * A backend in memory, for unit tests of the logic above backends (the agent's parts, the mover, the
 * transfer handler):
 * a dataset is a string, a snapshot a frozen copy of it, a stream a JSON line naming its snapshot and
 * base. It checks what real backends check (a base must be here to receive an increment, names are
 * taken once), so that a mover's mistake shows. Snapshots list oldest first.
 */
export class MemoryBackend implements Backend, SnapshotCapable, StreamCapable, UsageCapable {
  readonly kind = 'directory' as const;
  readonly sizeRules: SizeRules = { enforcesSize: false, requiresSize: false, minBytes: () => 0 };
  readonly live = new Map<string, string>();
  readonly snaps = new Map<string, Map<string, string>>();
  /** Mounted datasets and where; and each create, destroy, mount and unmount that changed something, in order. */
  readonly mounted = new Map<string, string>();
  readonly calls: string[] = [];
  /** Fails the next send of a snapshot whose name matches, as a source whose disk broke would. */
  failSend?: RegExp;

  async init(): Promise<void> {}
  async capacity(): Promise<PoolCapacity> {
    return { totalBytes: 1 << 30, freeBytes: 1 << 30 };
  }
  async create(name: string, _spec: DatasetSpec): Promise<void> {
    if (this.live.has(name)) return;
    this.live.set(name, '');
    this.calls.push(`create ${name}`);
  }
  async destroy(name: string): Promise<void> {
    if (this.mounted.has(name)) throw new FerryError('VOLUME_BUSY', `dataset ${name} is mounted`);
    if (this.live.delete(name)) this.calls.push(`destroy ${name}`);
    this.snaps.delete(name);
  }
  async list(): Promise<string[]> {
    return [...this.live.keys()].sort();
  }
  async exists(name: string): Promise<boolean> {
    return this.live.has(name);
  }
  async usage(): Promise<Map<string, number>> {
    return new Map([...this.live].map(([n, d]) => [n, d.length]));
  }
  async mount(name: string, target: string): Promise<void> {
    if (!this.live.has(name)) throw new FerryError('VOLUME_NOT_FOUND', `no dataset ${name}`);
    if (this.mounted.get(name) === target) return;
    this.mounted.set(name, target);
    this.calls.push(`mount ${name}`);
  }
  async unmount(name: string): Promise<void> {
    if (this.mounted.delete(name)) this.calls.push(`unmount ${name}`);
  }

  /** What a container would write. */
  write(name: string, data: string): void {
    if (!this.live.has(name)) throw new Error(`no dataset ${name}`);
    this.live.set(name, data);
  }

  private of(name: string): Map<string, string> {
    let m = this.snaps.get(name);
    if (!m) this.snaps.set(name, (m = new Map()));
    return m;
  }

  async snapshot(name: string, snap: string): Promise<void> {
    const data = this.live.get(name);
    if (data === undefined) throw new FerryError('VOLUME_NOT_FOUND', `no dataset ${name}`);
    if (this.of(name).has(snap)) throw new FerryError('VOLUME_EXISTS', `snapshot ${snap} of ${name} exists`);
    this.of(name).set(snap, data);
  }
  async listSnapshots(name: string): Promise<string[]> {
    return [...(this.snaps.get(name)?.keys() ?? [])];
  }
  async deleteSnapshot(name: string, snap: string): Promise<void> {
    this.snaps.get(name)?.delete(snap);
  }
  async rollback(name: string, snap: string, _spec: DatasetSpec): Promise<void> {
    const data = this.snaps.get(name)?.get(snap);
    if (data === undefined) throw new FerryError('SNAPSHOT_NOT_FOUND', `no snapshot ${snap} of ${name}`);
    this.live.set(name, data);
  }
  async clone(name: string, snap: string, target: string, spec: DatasetSpec): Promise<void> {
    await this.create(target, spec);
    this.live.set(target, this.snaps.get(name)?.get(snap) ?? '');
  }

  send(name: string, snap: string, base?: string): Readable {
    const data = this.snaps.get(name)?.get(snap);
    const broken = this.failSend?.test(snap);
    if (data === undefined || broken || (base !== undefined && !this.snaps.get(name)?.has(base))) {
      const r = new Readable({ read() {} });
      const why = broken ? `the disk under ${name} failed` : `no snapshot ${data === undefined ? snap : base} of ${name}`;
      process.nextTick(() => r.destroy(new FerryError(broken ? 'COMMAND_FAILED' : 'SNAPSHOT_NOT_FOUND', why)));
      return r;
    }
    return Readable.from([Buffer.from(JSON.stringify({ snap, base, data }))]);
  }

  async receive(name: string, snap: string, stream: Readable): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    const s = JSON.parse(Buffer.concat(parts).toString('utf8')) as { snap: string; base?: string; data: string };
    if (s.snap !== snap) throw new FerryError('INVALID_REQUEST', `stream of ${s.snap}, not ${snap}`);
    if (s.base !== undefined && !this.snaps.get(name)?.has(s.base)) throw new FerryError('SNAPSHOT_NOT_FOUND', `base ${s.base} of ${name} is not here`);
    if (this.of(name).has(snap)) throw new FerryError('VOLUME_EXISTS', `snapshot ${snap} of ${name} exists`);
    this.of(name).set(snap, s.data);
  }
}
