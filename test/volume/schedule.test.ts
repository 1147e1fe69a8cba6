import { expect } from 'chai';
import { createTask, parse } from 'node-cron';
import { catchUp, nextRunAfter, scheduleSnapshotName, scheduleTimeOf } from '../../src/volume/schedule';
import { utcStamp } from '../../src/volume/snapshot-names';

/* Schedules under a fixed clock (UTC, no DST): next runs, missed runs, scheduled snapshot names. */

const at = (iso: string): Date => new Date(iso);

describe('schedule: next run (node-cron fields, UTC)', () => {
  const table: [string, string, string | null][] = [
    ['0 3 * * *', '2026-12-02T03:00:00Z', '2026-12-03T03:00:00Z'],
    ['0 3 * * *', '2026-12-02T02:59:59.900Z', '2026-12-02T03:00:00Z'],
    ['* * * * * *', '2026-12-02T10:00:05.400Z', '2026-12-02T10:00:06Z'],
    ['*/15 * * * *', '2026-12-02T10:07:00Z', '2026-12-02T10:15:00Z'],
    ['*/15 * * * *', '2026-12-02T23:50:00Z', '2026-12-03T00:00:00Z'],
    ['30 */10 * * * *', '2026-12-31T23:59:31Z', '2027-01-01T00:00:30Z'],
    ['0 0 L * *', '2027-02-10T00:00:00Z', '2027-02-28T00:00:00Z'],
    ['0 0 L * *', '2028-02-10T00:00:00Z', '2028-02-29T00:00:00Z'],
    ['0 0 29 2 *', '2026-03-01T00:00:00Z', '2028-02-29T00:00:00Z'],
    // node-cron matches day of month AND day of week: the 1st that is a Monday.
    ['0 0 1 * mon', '2026-12-02T00:00:00Z', '2027-02-01T00:00:00Z'],
    ['0 12 * * 7', '2026-12-02T00:00:00Z', '2026-12-06T12:00:00Z'],
    ['0 0 1,15 jan,jul *', '2026-12-02T00:00:00Z', '2027-01-01T00:00:00Z'],
    ['5 4 * * sun', '2026-12-06T04:05:00Z', '2026-12-13T04:05:00Z'],
  ];
  for (const [expr, after, next] of table) {
    it(`${expr} after ${after} -> ${next}`, () => {
      expect(nextRunAfter(parse(expr), at(after))?.toISOString() ?? null).to.equal(next && at(next).toISOString());
    });
  }

  it("agrees with node-cron's own matcher: the next run matches, and no minute of the two days before it does", function () {
    this.timeout(30_000);
    for (const expr of ['0 3 * * *', '*/7 1-5 * * mon-fri', '0 0 L * *', '15 */6 1,10,20 * *', '0 0 1 * mon', '0 22 * * 0']) {
      const task = createTask(expr, () => undefined, { timezone: 'UTC' });
      try {
        for (const start of ['2026-01-31T22:10:00Z', '2026-12-02T06:48:00Z', '2027-02-27T23:59:00Z']) {
          const next = nextRunAfter(parse(expr), at(start))!;
          expect(task.match(next), `${expr} from ${start}: ${next.toISOString()}`).to.equal(true);
          for (let t = Math.max(at(start).getTime(), next.getTime() - 2 * 86_400_000) + 60_000; t < next.getTime(); t += 60_000) {
            if (task.match(new Date(t))) expect.fail(`${expr} from ${start}: ${new Date(t).toISOString()} matches before ${next.toISOString()}`);
          }
        }
      } finally {
        void task.destroy();
      }
    }
  });
});

describe('schedule: missed runs', () => {
  const hourly = parse('0 * * * *');
  const table: [string, string | null, string, { run: boolean; missed: number; since?: string; reason: RegExp }][] = [
    ['a new schedule waits for its first time', null, '2026-12-02T10:30:00Z', { run: false, missed: 0, reason: /waits for the first scheduled time/ }],
    ['nothing passed since the last run', '2026-12-02T10:00:00Z', '2026-12-02T10:59:59Z', { run: false, missed: 0, reason: /no scheduled time passed/ }],
    ['one run missed', '2026-12-02T10:00:00Z', '2026-12-02T11:20:00Z', { run: true, missed: 1, since: '2026-12-02T11:00:00Z', reason: /^1 scheduled run missed since/ }],
    ['exactly at the missed time', '2026-12-02T10:00:00Z', '2026-12-02T11:00:00Z', { run: true, missed: 1, since: '2026-12-02T11:00:00Z', reason: /one catch-up run now/ }],
    ['down for a week: one run, not a burst of 168', '2026-11-25T10:00:00Z', '2026-12-02T10:30:00Z', { run: true, missed: 168, since: '2026-11-25T11:00:00Z', reason: /^168 scheduled runs missed/ }],
    ['down for years: counted up to a limit', '2020-01-01T00:00:00Z', '2026-12-02T10:30:00Z', { run: true, missed: 1000, since: '2020-01-01T01:00:00Z', reason: /^at least 1000 scheduled runs/ }],
    ['a last run in the future (a clock stepped back)', '2026-12-02T12:00:00Z', '2026-12-02T10:30:00Z', { run: false, missed: 0, reason: /no scheduled time passed/ }],
  ];
  for (const [what, last, now, want] of table) {
    it(what, () => {
      const c = catchUp(hourly, last ? at(last) : null, at(now));
      expect(c.run).to.equal(want.run);
      expect(c.missed).to.equal(want.missed);
      expect(c.missedSince?.toISOString() ?? undefined).to.equal(want.since && at(want.since).toISOString());
      expect(c.reason).to.match(want.reason);
    });
  }
});

describe('schedule: snapshot names', () => {
  it('names a scheduled snapshot after its policy and UTC second, and reads the time back', () => {
    const name = scheduleSnapshotName('nightly', at('2026-12-02T03:00:00.250Z'));
    expect(name).to.equal('_schedule.nightly.20261202T030000Z');
    expect(utcStamp(at('2026-01-05T07:08:09Z'))).to.equal('20260105T070809Z');
    expect(scheduleTimeOf(name, 'nightly')?.toISOString()).to.equal('2026-12-02T03:00:00.000Z');
    expect(scheduleTimeOf(name, 'night')).to.equal(undefined);
    expect(scheduleTimeOf('_schedule.nightly.yesterday', 'nightly')).to.equal(undefined);
    expect(() => scheduleSnapshotName('Bad.Name', new Date())).to.throw(/invalid policy name/);
  });
});
