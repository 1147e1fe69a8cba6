import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BackendSlots } from '../../src/agent/backend-slots';
import { KeyedLock } from '../../src/agent/keyed-lock';
import { ScheduleBook } from '../../src/agent/schedule-book';
import { Scheduler, snapshotsHere, standbyBases } from '../../src/agent/scheduler';
import { Snapshots } from '../../src/agent/snapshots';
import { FerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import type { ControlClient, PolicySpec } from '../../src/wire/control-client';
import type { SnapshotRecord } from '../../src/wire/records';
import { agentParts } from '../support/agent-parts';
import { waitFor } from '../support/docker';
import { cleanupDir, makeTempDir } from '../support/host';

/*
 * The agent's scheduler over real node-cron (`* * * * * *` runs every second), an in-memory backend
 * and an in-process control: snapshots, retention after each run, the book that keeps schedules
 * going while control is unreachable, and the one catch-up run.
 */

const POLICY: PolicySpec = {
  name: 'fast',
  schedule: '* * * * * *',
  keep: '3',
  replicateTo: [],
  replicas: null,
  rpoSeconds: null,
  bandwidthBytes: null,
  failover: 'manual',
  reclaim: 'delete',
  retainRemovedSeconds: null,
};

/** A ControlClient that answers as `inner` until `away` is set, then throws NODE_UNREACHABLE for everything. */
function switchable(inner: ControlClient): { control: ControlClient; away: (v: boolean) => void } {
  let isAway = false;
  const control = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (isAway) return Promise.reject(new FerryError('NODE_UNREACHABLE', 'control at http://control:7400 is unreachable (test)'));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { control, away: (v) => (isAway = v) };
}

describe('agent: scheduler (node-cron, retention, the schedule book)', function () {
  this.timeout(60_000);
  let dir: string;
  const stops: (() => Promise<void>)[] = [];
  beforeEach(() => {
    dir = makeTempDir('scheduler');
  });
  afterEach(async () => {
    for (const s of stops.splice(0)) await s();
    cleanupDir(dir);
  });

  async function setup(policy: PolicySpec = POLICY) {
    const parts = agentParts();
    const sw = switchable(parts.control);
    await parts.control.createPolicy(policy);
    await parts.volumes.create('db', { policy: policy.name });
    const log = silentLogger();
    // The scheduler's own view of the host: the same backend, control through the switch.
    const lock = new KeyedLock();
    const slots = new BackendSlots(parts.node, sw.control);
    slots.set('directory', { backend: parts.backend });
    const snapshots = new Snapshots(parts.node, sw.control, slots, lock, log);
    const bookFile = join(dir, 'schedules.json');
    const make = (now?: () => Date): Scheduler => {
      const s = new Scheduler(parts.node, sw.control, snapshots, slots, lock, new ScheduleBook(bookFile, log), 200, log, now);
      stops.push(() => s.stop());
      return s;
    };
    const scheduled = async (): Promise<string[]> => (await parts.backend.listSnapshots('db')).filter((n) => n.startsWith(`_schedule.${policy.name}.`));
    return { parts, sw, make, bookFile, scheduled, snapshots };
  }

  it('snapshots every second on the primary and prunes to keep 3, never the user\'s own', async () => {
    const { parts, make, scheduled, snapshots } = await setup();
    await snapshots.take('db', { name: 'mine', origin: 'manual' });
    const s = make();
    await s.start();
    expect(s.scheduled()).to.deep.equal([{ volume: 'db', policy: 'fast', schedule: '* * * * * *' }]);
    const seen = new Set<string>();
    await waitFor('five scheduled snapshots', async () => {
      for (const n of await scheduled()) seen.add(n);
      return seen.size >= 5;
    }, 30_000, 100);
    // Each run prunes right after its snapshot; once stopped (the last run ended), exactly the newest 3 remain.
    await s.stop();
    const kept = await scheduled();
    for (const n of kept) seen.add(n);
    expect(kept).to.deep.equal([...seen].sort().slice(-3));
    expect(await parts.backend.listSnapshots('db')).to.include('mine');
    // Control's registry follows: the pruned ones are forgotten, the user's stays.
    const registry = (await parts.control.snapshotsOf('db')).map((r) => r.name);
    expect(registry).to.include('mine');
    for (const n of seen) if (!kept.includes(n)) expect(registry).to.not.include(n);
    expect((await parts.control.snapshotsOf('db')).find((r) => r.name === kept[0])).to.include({ origin: 'schedule', policy: 'fast' });
  });

  it('goes on from the policies in its book while control is unreachable, records later, and prunes only then', async () => {
    const { parts, sw, make, bookFile, scheduled } = await setup({ ...POLICY, keep: '1' });
    // A first life with control: the book learns the policy and the volume.
    const first = make();
    await first.refresh();
    await first.stop();
    const book = JSON.parse(readFileSync(bookFile, 'utf8')) as { policies: Record<string, unknown>; volumes: unknown[] };
    expect(book.policies).to.have.property('fast');
    expect(book.volumes).to.deep.equal([{ volume: 'db', backend: 'directory', policy: 'fast' }]);

    // Control away from the start of the second life: the schedule runs from the book.
    sw.away(true);
    const second = make();
    await second.start();
    expect(second.scheduled().map((j) => j.volume)).to.deep.equal(['db']);
    await waitFor('two snapshots taken while control is away', async () => (await scheduled()).length >= 2, 30_000, 100);
    const offline = await scheduled();
    expect(await parts.control.snapshotsOf('db')).to.deep.equal([]);
    const pending = (JSON.parse(readFileSync(bookFile, 'utf8')) as { pending: { name: string }[] }).pending.map((p) => p.name);
    for (const n of offline) expect(pending).to.include(n);

    // Control is back: what was taken is recorded, and the next runs prune to keep 1.
    sw.away(false);
    await second.refresh();
    const recorded = (await parts.control.snapshotsOf('db')).map((r) => r.name);
    for (const n of offline) expect(recorded).to.include(n);
    await waitFor('retention down to 1', async () => (await scheduled()).length === 1, 10_000, 50);
    // A run that began while control was away may have added one more; the next refresh or prune records it.
    await waitFor('nothing left to record', () => (JSON.parse(readFileSync(bookFile, 'utf8')) as { pending: unknown[] }).pending.length === 0, 10_000, 50);
  });

  it('a host that missed scheduled times takes one catch-up snapshot when back, not a burst', async () => {
    const { make, bookFile, scheduled } = await setup({ ...POLICY, name: 'yearly', schedule: '0 0 1 1 *', keep: null });
    const first = make();
    await first.refresh();
    await first.stop();
    // Its last run was three New Years ago.
    new ScheduleBook(bookFile, silentLogger()).ran('db', 'yearly', new Date(Date.UTC(new Date().getUTCFullYear() - 3, 0, 1)));
    const second = make();
    await second.start();
    await waitFor('the catch-up snapshot', async () => (await scheduled()).length >= 1, 10_000, 50);
    await second.refresh();
    await second.refresh();
    expect(await scheduled()).to.have.length(1);
    expect(existsSync(bookFile)).to.equal(true);
  });

  it('stops a volume\'s schedule when it loses its policy, and starts one when it gets one', async () => {
    const { parts, make } = await setup();
    const s = make();
    await s.start();
    expect(s.scheduled()).to.have.length(1);
    await parts.control.setVolumeOptions('db', { policy: null }, parts.node);
    await s.refresh();
    expect(s.scheduled()).to.deep.equal([]);
    await parts.control.createPolicy({ ...POLICY, name: 'hourly', schedule: '0 * * * *' });
    await parts.control.setVolumeOptions('db', { policy: 'hourly' }, parts.node);
    await s.refresh();
    expect(s.scheduled()).to.deep.equal([{ volume: 'db', policy: 'hourly', schedule: '0 * * * *' }]);
  });
});

describe('agent: scheduler helpers (pure)', () => {
  const rec = (name: string, createdAt: string, hosts: string[]): SnapshotRecord => ({ volume: 'db', name, origin: 'schedule', createdAt, sizeBytes: null, hosts, group: null, policy: 'p' });

  it("protects the newest snapshot each other host holds: a standby's base", () => {
    const registry = [
      rec('_schedule.p.20261201T000000Z', '2026-12-01T00:00:00Z', ['h1', 'h2', 'h3']),
      rec('_schedule.p.20261201T010000Z', '2026-12-01T01:00:00Z', ['h1', 'h2']),
      rec('_schedule.p.20261201T020000Z', '2026-12-01T02:00:00Z', ['h1']),
    ];
    expect([...standbyBases(registry, 'h1')]).to.deep.equal([
      ['_schedule.p.20261201T010000Z', "the newest snapshot on h2 (a standby's base)"],
      ['_schedule.p.20261201T000000Z', "the newest snapshot on h3 (a standby's base)"],
    ]);
    expect(standbyBases(registry.slice(1, 2).map((r) => ({ ...r, hosts: ['h2', 'h3'] })), 'h1').get('_schedule.p.20261201T010000Z')).to.equal(
      "the newest snapshot on h2, h3 (a standby's base)",
    );
  });

  it("dates what is on disk by the registry, else by the scheduled name; other names have no time", () => {
    const here = snapshotsHere(['_schedule.p.20261201T000000Z', '_schedule.p.20261201T010000Z', 'mine'], [rec('_schedule.p.20261201T010000Z', '2026-12-01T01:00:00.500Z', ['h1'])], 'p');
    expect(here).to.deep.equal([
      { name: '_schedule.p.20261201T000000Z', createdAt: '2026-12-01T00:00:00.000Z' },
      { name: '_schedule.p.20261201T010000Z', createdAt: '2026-12-01T01:00:00.500Z' },
      { name: 'mine', createdAt: '' },
    ]);
  });
});
