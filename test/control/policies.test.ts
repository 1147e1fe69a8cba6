import { expect } from 'chai';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import type { PolicySpec } from '../../src/wire/control-client';
import { AGENT_CALLS } from '../../src/wire/agent-calls';

/* Control's policies: records, checks, refusals, events, and a volume's policy (pure SQLite, no hosts). */

const NIGHTLY: PolicySpec = {
  name: 'nightly',
  schedule: '0 3 * * *',
  keep: '48h 14d 8w 12m',
  replicateTo: [],
  replicas: null,
  rpoSeconds: null,
  bandwidthBytes: null,
  failover: 'manual',
  reclaim: 'delete',
  retainRemovedSeconds: null,
};

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as { code?: string }).code, String(err)).to.equal(code);
    if (message) expect((err as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected ${code}, but it succeeded`);
}

async function withVolume(c: LocalControl, name: string, options: Record<string, string> = {}): Promise<void> {
  expect(await c.reserveVolume({ name, backend: 'btrfs', options, primaryNode: 'h1' })).to.equal(true);
  await c.confirmVolume(name, 'h1');
}

describe('control: policies', () => {
  let c: LocalControl;
  beforeEach(() => {
    c = new LocalControl(openDb(':memory:'));
  });

  it('stores every field as given, lists by name, and records an event', async () => {
    const full: PolicySpec = { ...NIGHTLY, name: 'gold', replicateTo: ['h2', 'h3'], rpoSeconds: 30, bandwidthBytes: 50 * 2 ** 20, failover: 'auto', reclaim: 'retain', retainRemovedSeconds: 7 * 86400 };
    const made = await c.createPolicy(full);
    await c.createPolicy(NIGHTLY);
    const { createdAt, updatedAt, ...stored } = made;
    // bank-policy: a spec of issue 7's shape is stored with no backups.
    expect(stored).to.deep.equal({ backupTo: null, backupSchedule: null, backupKeep: null, verifyEverySeconds: null, verifyWith: null, ...full });
    expect(Date.parse(createdAt)).to.equal(Date.parse(updatedAt));
    expect(await c.getPolicy('gold')).to.deep.equal(made);
    expect((await c.listPolicies()).map((p) => p.name)).to.deep.equal(['gold', 'nightly']);
    const events = await c.recentEvents(10);
    expect(events.map((e) => e.kind)).to.deep.equal(['policy-created', 'policy-created']);
    expect(events[0].detail).to.match(/policy gold: .*replicate to h2,h3.*failover auto/);
    // The arguments travel through the agent-call schema unchanged.
    expect(AGENT_CALLS.createPolicy.parse([full])).to.deep.equal([full]);
  });

  it('refuses a taken name, bad names, bad cron, bad keep and fields that do not fit together, naming them', async () => {
    await c.createPolicy(NIGHTLY);
    await expectCode(c.createPolicy(NIGHTLY), 'POLICY_EXISTS', /nightly already exists/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'Nightly' }), 'INVALID_NAME', /\[a-z0-9_-\]/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'a.b' }), 'INVALID_NAME');
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', schedule: '61 * * * *' }), 'INVALID_OPTION', /invalid schedule "61 \* \* \* \*".*UTC/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', schedule: 'daily' }), 'INVALID_OPTION', /5 or 6 fields/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', keep: '48x' }), 'INVALID_OPTION', /"48x" is not a count or a period/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', schedule: null }), 'INVALID_OPTION', /keep applies to scheduled snapshots/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', replicateTo: ['h2'], replicas: 2 }), 'INVALID_OPTION', /either --replicate-to HOSTS or --replicas N/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', replicateTo: ['h2', 'h2'] }), 'INVALID_OPTION', /twice/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', rpoSeconds: 30 }), 'INVALID_OPTION', /rpo applies to standbys/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', failover: 'auto' }), 'INVALID_OPTION', /failover auto needs a standby/);
    await expectCode(c.createPolicy({ ...NIGHTLY, name: 'x', retainRemovedSeconds: 60 }), 'INVALID_OPTION', /add --reclaim retain/);
    expect((await c.listPolicies()).map((p) => p.name)).to.deep.equal(['nightly']);
  });

  it('updates some fields, checks the result whole, and keeps the creation time', async () => {
    const made = await c.createPolicy(NIGHTLY);
    const updated = await c.updatePolicy('nightly', { keep: '10', replicas: 1, rpoSeconds: 60 });
    expect(updated).to.include({ keep: '10', replicas: 1, rpoSeconds: 60, schedule: '0 3 * * *', createdAt: made.createdAt });
    await expectCode(c.updatePolicy('nightly', { schedule: null }), 'INVALID_OPTION', /keep applies/);
    await expectCode(c.updatePolicy('weekly', { keep: '3' }), 'POLICY_NOT_FOUND', /policy weekly does not exist: the policies are nightly/);
    expect((await c.getPolicy('nightly'))!.keep).to.equal('10');
  });

  it('a volume names only an existing policy; rm is refused while volumes use it, naming them', async () => {
    await expectCode(c.reserveVolume({ name: 'db', backend: 'btrfs', options: { policy: 'nightly' }, primaryNode: 'h1' }), 'POLICY_NOT_FOUND', /there are no policies yet/);
    expect(await c.getVolume('db')).to.equal(undefined);
    await c.createPolicy(NIGHTLY);
    await withVolume(c, 'db', { policy: 'nightly' });
    await withVolume(c, 'web', { policy: 'nightly' });
    await withVolume(c, 'tmp');
    await expectCode(c.deletePolicy('nightly'), 'POLICY_IN_USE', /used by volumes db, web: give them another policy first/);
    await c.setVolumeOptions('db', { policy: null }, 'h1');
    await c.setVolumeOptions('web', { policy: '' }, 'h2');
    await c.deletePolicy('nightly');
    expect(await c.getPolicy('nightly')).to.equal(undefined);
    await expectCode(c.deletePolicy('nightly'), 'POLICY_NOT_FOUND');
    expect((await c.recentEvents(3)).map((e) => e.kind)).to.deep.equal(['volume-set', 'volume-set', 'policy-deleted']);
  });

  it('volume set changes settable options only, checks them, and records who asked', async () => {
    await c.createPolicy(NIGHTLY);
    await withVolume(c, 'db', { size: '1G' });
    const v = await c.setVolumeOptions('db', { policy: 'nightly', replica: 'drop' }, 'h2');
    expect(v.options).to.deep.equal({ size: '1G', policy: 'nightly', replica: 'drop' });
    const [e] = (await c.eventsOf('db')).slice(-1);
    expect(e).to.include({ kind: 'volume-set', node: 'h2', detail: 'policy=nightly, replica=drop' });
    await expectCode(c.setVolumeOptions('db', { policy: 'weekly' }, 'h1'), 'POLICY_NOT_FOUND', /the policies are nightly/);
    await expectCode(c.setVolumeOptions('db', { size: '2G' }, 'h1'), 'INVALID_OPTION', /cannot be changed on an existing volume: the ones that can are policy, replica/);
    await expectCode(c.setVolumeOptions('db', { replica: 'maybe' }, 'h1'), 'INVALID_OPTION', /keep, drop/);
    await expectCode(c.setVolumeOptions('db', {}, 'h1'), 'INVALID_OPTION', /say what to change/);
    await expectCode(c.setVolumeOptions('nope', { policy: 'nightly' }, 'h1'), 'VOLUME_NOT_FOUND');
    expect((await c.getVolume('db'))!.options).to.deep.equal({ size: '1G', policy: 'nightly', replica: 'drop' });
  });
});
