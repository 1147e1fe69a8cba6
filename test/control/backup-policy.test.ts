import { expect } from 'chai';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { checkPolicy } from '../../src/control/policy-check';
import { isFerryError } from '../../src/errors';
import { AGENT_CALLS, policySpecSchema } from '../../src/wire/agent-calls';
import type { PolicySpec } from '../../src/wire/control-client';
import { policyShape } from '../../src/wire/shapes';

/* bank-policy (issue 8 items 4, 5): a policy's backup and drill fields: stored, checked, carried. */

const BASE: PolicySpec = {
  name: 'safe',
  schedule: null,
  keep: null,
  replicateTo: [],
  replicas: null,
  rpoSeconds: null,
  bandwidthBytes: null,
  failover: 'manual',
  reclaim: 'delete',
  retainRemovedSeconds: null,
};
const BACKUP: PolicySpec = { ...BASE, backupTo: 'offsite', backupSchedule: '0 2 * * *', backupKeep: '7d 4w 12m', verifyEverySeconds: 7 * 86400, verifyWith: 'busybox test -s /data/f' };

async function expectCode(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as { code?: string }).code, String(err)).to.equal(code);
    expect((err as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected ${code}, but it succeeded`);
}

describe('control: backup policies (bank-policy)', () => {
  const good: [string, Partial<PolicySpec>][] = [
    ['a bank and a schedule', { backupTo: 'offsite', backupSchedule: '0 2 * * *' }],
    ['with a keep by periods', { backupTo: 'offsite', backupSchedule: '0 2 * * *', backupKeep: '7d 4w 12m' }],
    ['with a count', { backupTo: 'offsite', backupSchedule: '*/5 * * * * *', backupKeep: '3' }],
    ['with a drill', { backupTo: 'b-1', backupSchedule: '0 2 * * *', verifyEverySeconds: 60, verifyWith: 'registry.local:5000/app/check:1.2 sh -c "exit 0"' }],
    ['beside snapshots', { schedule: '0 * * * *', keep: '48h', backupTo: 'offsite', backupSchedule: '0 2 * * *' }],
    ['none at all (issue 7 shape)', {}],
  ];
  for (const [what, fields] of good) {
    it(`accepts ${what}`, () => {
      expect(checkPolicy({ ...BASE, ...fields })).to.deep.include(fields);
    });
  }

  const bad: [string, Partial<PolicySpec>, RegExp][] = [
    ['a bank without a schedule', { backupTo: 'offsite' }, /backup-to offsite needs a schedule; add --backup-schedule/],
    ['a schedule without a bank', { backupSchedule: '0 2 * * *' }, /backup-schedule needs a bank to back up to; add --backup-to BANK/],
    ['a keep without a bank', { backupKeep: '7d' }, /backup-keep applies to scheduled backups; add --backup-to BANK --backup-schedule CRON/],
    ['a bad keep', { backupTo: 'o', backupSchedule: '0 2 * * *', backupKeep: '7x' }, /"7x" is not a count or a period/],
    ['a bad cron', { backupTo: 'o', backupSchedule: '0 25 * * *' }, /invalid backup schedule "0 25 \* \* \*"/],
    ['a bad bank name', { backupTo: '../etc', backupSchedule: '0 2 * * *' }, /backup-to "..\/etc" is not a bank name/],
    ['verify-every without verify-with', { backupTo: 'o', backupSchedule: '0 2 * * *', verifyEverySeconds: 60 }, /verify-every needs a check to run; add --verify-with/],
    ['verify-with without verify-every', { backupTo: 'o', backupSchedule: '0 2 * * *', verifyWith: 'busybox true' }, /verify-with needs an interval; add --verify-every/],
    ['a drill without backups', { verifyEverySeconds: 60, verifyWith: 'busybox true' }, /a restore drill restores scheduled backups; add --backup-to/],
    ['verify-with without a command', { backupTo: 'o', backupSchedule: '0 2 * * *', verifyEverySeconds: 60, verifyWith: 'busybox' }, /needs an image and a command/],
    ['verify-with with a bad image', { backupTo: 'o', backupSchedule: '0 2 * * *', verifyEverySeconds: 60, verifyWith: 'Busy;box true' }, /"Busy;box" is not an image reference/],
  ];
  for (const [what, fields, message] of bad) {
    it(`refuses ${what}, saying what to add`, () => {
      expect(() => checkPolicy({ ...BASE, ...fields }))
        .to.throw(message)
        .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
    });
  }

  const addBank = (c: LocalControl, name: string, readOnly = false) =>
    c.addBank({ name, url: `file:///tmp/${name}`, endpoint: null, region: null, readOnly, bankId: `id-${name}` }, { keyBase64: 'a2V5' }, 'h1');

  it('backs up only to a bank this cluster has, and not a read-only one', async () => {
    const c = new LocalControl(openDb(':memory:'));
    await expectCode(c.createPolicy(BACKUP), 'BANK_NOT_FOUND', /policy safe: no bank named offsite is added to this cluster: ferry bank ls/);
    await addBank(c, 'mirror', true);
    await expectCode(c.createPolicy({ ...BACKUP, backupTo: 'mirror' }), 'BANK_READ_ONLY', /bank mirror was added read-only/);
    await addBank(c, 'offsite');
    await c.createPolicy(BACKUP);
    await expectCode(c.updatePolicy('safe', { backupTo: 'nowhere' }), 'BANK_NOT_FOUND', /no bank named nowhere/);
    expect((await c.getPolicy('safe'))!.backupTo).to.equal('offsite');
  });

  it('refuses to forget a bank a policy backs up to, naming the policy; forgets it once no policy does', async () => {
    const c = new LocalControl(openDb(':memory:'));
    await addBank(c, 'offsite');
    await c.createPolicy(BACKUP);
    await expectCode(c.removeBank('offsite', 'h1'), 'BANK_IN_USE', /bank offsite is where policy safe backs up: give it another bank first/);
    expect(await c.getBank('offsite')).to.not.equal(undefined);
    await c.updatePolicy('safe', { backupTo: null, backupSchedule: null, backupKeep: null, verifyEverySeconds: null, verifyWith: null });
    await c.removeBank('offsite', 'h1');
    expect(await c.getBank('offsite')).to.equal(undefined);
  });

  it('stores the fields (one migration), shows them, updates and clears them, with events', async () => {
    const c = new LocalControl(openDb(':memory:'));
    await addBank(c, 'offsite');
    await addBank(c, 'other');
    const made = await c.createPolicy(BACKUP);
    const { createdAt: _c, updatedAt: _u, ...stored } = made;
    expect(stored).to.deep.equal(BACKUP);
    expect(policyShape.parse(made)).to.deep.equal(made);
    expect((await c.recentEvents(1))[0].detail).to.match(/back up to offsite "0 2 \* \* \*", backup keep "7d 4w 12m", restore drill every 604800s with "busybox test -s \/data\/f"/);
    // A drill cannot stay when its backups go; all of them go together.
    await expectCode(c.updatePolicy('safe', { backupTo: null, backupSchedule: null }), 'INVALID_OPTION', /applies to scheduled backups; add --backup-to BANK/);
    const cleared = await c.updatePolicy('safe', { backupTo: null, backupSchedule: null, backupKeep: null, verifyEverySeconds: null, verifyWith: null });
    expect(cleared).to.include({ backupTo: null, backupSchedule: null, backupKeep: null, verifyEverySeconds: null, verifyWith: null });
    const again = await c.updatePolicy('safe', { backupTo: 'other', backupSchedule: '*/10 * * * * *' });
    expect(again).to.include({ backupTo: 'other', backupSchedule: '*/10 * * * * *', backupKeep: null });
  });

  it('the wire takes a spec with or without the backup fields', () => {
    expect(AGENT_CALLS.createPolicy.parse([BACKUP])).to.deep.equal([BACKUP]);
    expect(policySpecSchema.parse(BASE)).to.deep.equal(BASE);
    expect(() => policySpecSchema.parse({ ...BASE, verifyEverySeconds: 0 })).to.throw();
  });
});
