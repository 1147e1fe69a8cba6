import { expect } from 'chai';
import { isFerryError } from '../../src/errors';
import { formatKeepSpec, ownedBySchedule, parseKeepSpec, planRetention, type KeepSpec, type RetainedSnapshot } from '../../src/volume/retention';
import { scheduleSnapshotName } from '../../src/volume/schedule';

/* Retention of scheduled snapshots (pure): GFS, counts, and what is never deleted; a fixed clock, UTC. */

const HOUR = 3_600_000;

/** A snapshot of policy `policy`'s schedule taken at `iso`, named as the schedule names it. */
function sched(iso: string, policy = 'p'): RetainedSnapshot {
  return { name: scheduleSnapshotName(policy, new Date(iso)), createdAt: new Date(iso).toISOString() };
}

/** Snapshots every `stepHours` from `fromIso`, `count` of them. */
function series(fromIso: string, stepHours: number, count: number, policy = 'p'): RetainedSnapshot[] {
  const t0 = Date.parse(fromIso);
  return Array.from({ length: count }, (_, i) => sched(new Date(t0 + i * stepHours * HOUR).toISOString(), policy));
}

function plan(snapshots: RetainedSnapshot[], keep: string, nowIso: string, protectedNames?: Map<string, string>) {
  return planRetention({ snapshots, policy: 'p', keep: parseKeepSpec(keep), now: new Date(nowIso), protectedNames });
}

const kept = (p: ReturnType<typeof plan>): string[] => p.keep.map((k) => k.name);
const deleted = (p: ReturnType<typeof plan>): string[] => p.delete.map((k) => k.name);
const n = (iso: string, policy = 'p'): string => sched(iso, policy).name;

describe('retention: keep specs', () => {
  const valid: [string, KeepSpec, string][] = [
    ['48h 14d 8w 12m', { latest: 0, periods: { h: 48, d: 14, w: 8, m: 12 } }, '48h 14d 8w 12m'],
    ['10', { latest: 10, periods: {} }, '10'],
    ['  12m, 3  24H ', { latest: 3, periods: { m: 12, h: 24 } }, '3 24h 12m'],
    ['2y', { latest: 0, periods: { y: 2 } }, '2y'],
  ];
  for (const [text, spec, canonical] of valid) {
    it(`reads ${JSON.stringify(text)}`, () => {
      expect(parseKeepSpec(text)).to.deep.equal(spec);
      expect(formatKeepSpec(parseKeepSpec(text))).to.equal(canonical);
    });
  }
  const invalid: [unknown, RegExp][] = [
    ['', /use words like 48h 14d 8w 12m/],
    [undefined, /invalid keep/],
    ['10 20', /one count, not two/],
    ['48h 2h', /h is given twice/],
    ['5x', /"5x" is not a count or a period/],
    ['48 hours', /"hours" is not a count or a period/],
    ['0', /must count 1 to/],
    ['0d', /must count 1 to/],
    ['-3', /is not a count/],
  ];
  for (const [text, message] of invalid) {
    it(`refuses ${JSON.stringify(text)}, saying why`, () => {
      try {
        parseKeepSpec(text);
      } catch (err) {
        expect(isFerryError(err, 'INVALID_OPTION'), String(err)).to.equal(true);
        expect((err as Error).message).to.match(message);
        return;
      }
      expect.fail('accepted');
    });
  }
});

describe('retention: which snapshots go', () => {
  it('a count keeps the newest N and deletes the rest, oldest first', () => {
    const snaps = series('2026-12-01T00:00:00Z', 1, 5);
    const p = plan([...snaps].reverse(), '3', '2026-12-01T05:00:00Z');
    expect(kept(p)).to.deep.equal(snaps.slice(2).map((s) => s.name));
    expect(deleted(p)).to.deep.equal(snaps.slice(0, 2).map((s) => s.name));
    expect(p.keep[2].reasons).to.deep.equal(['the newest snapshot of the schedule', 'among the newest 3 (#1)']);
    expect(p.delete[0].reasons).to.deep.equal(['kept by none of "3"']);
  });

  it('GFS keeps the newest of each hour, day, ISO week and month in its window (UTC)', () => {
    // Every 6 hours from 1 October for 40 days: 160 snapshots, the last at 2026-11-09 18:00 (a Monday).
    const snaps = series('2026-10-01T00:00:00Z', 6, 160);
    const p = plan(snaps, '12h 3d 2w 2m', '2026-11-09T20:00:00Z');
    expect(kept(p)).to.deep.equal([
      n('2026-10-31T18:00:00Z'), // monthly: October
      n('2026-11-07T18:00:00Z'), // daily
      n('2026-11-08T18:00:00Z'), // daily; weekly: the week of 2 November
      n('2026-11-09T12:00:00Z'), // hourly
      n('2026-11-09T18:00:00Z'), // newest; hourly, daily, weekly, monthly
    ]);
    expect(p.delete).to.have.length(155);
    const byName = new Map(p.keep.map((k) => [k.name, k.reasons]));
    expect(byName.get(n('2026-10-31T18:00:00Z'))).to.deep.equal(['monthly: the newest of 2026-10 (2m)']);
    expect(byName.get(n('2026-11-08T18:00:00Z'))).to.deep.equal(['daily: the newest of 2026-11-08 (3d)', 'weekly: the newest of week of 2026-11-02 (2w)']);
    expect(byName.get(n('2026-11-09T18:00:00Z'))).to.include('hourly: the newest of 2026-11-09T18h (12h)');
  });

  it('the classic 48h 14d 8w 12m over a year of hourly snapshots keeps exactly what a plain recount of each window keeps', () => {
    const snaps = series('2025-12-01T00:00:00Z', 1, 366 * 24);
    const p = plan(snaps, '48h 14d 8w 12m', '2026-12-01T23:59:59Z');
    // Each window's newest-per-period, overlaps counted once; checked against a plain recount.
    const expectKept = new Set<string>();
    const last = snaps.at(-1)!;
    for (const s of snaps) {
      const t = Date.parse(s.createdAt);
      const ageH = Math.floor(Date.parse('2026-12-01T23:59:59Z') / HOUR) - Math.floor(t / HOUR);
      if (ageH < 48) expectKept.add(s.name);
    }
    // Days: 23:00 of each of the 14 days up to 1 December.
    for (let d = 0; d < 14; d++) expectKept.add(n(new Date(Date.parse('2026-12-01T23:00:00Z') - d * 24 * HOUR).toISOString()));
    // Weeks (from Monday): the week of 30 November holds today; the Sundays 23:00 before it, 7 of them.
    for (let w = 1; w < 8; w++) expectKept.add(n(new Date(Date.parse('2026-11-29T23:00:00Z') - (w - 1) * 7 * 24 * HOUR).toISOString()));
    // Months: December (the newest) and the last hour of January..November; December 2025 is 12 months back.
    for (const m of ['2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30', '2026-05-31', '2026-06-30', '2026-07-31', '2026-08-31', '2026-09-30', '2026-10-31', '2026-11-30']) {
      expectKept.add(n(`${m}T23:00:00Z`));
    }
    expectKept.add(last.name);
    expect(new Set(kept(p))).to.deep.equal(expectKept);
    expect(p.keep.length + p.delete.length).to.equal(snaps.length);
  });

  it('never deletes a protected snapshot, and says why it stays', () => {
    const snaps = series('2026-12-01T00:00:00Z', 1, 6);
    const p = plan(snaps, '2', '2026-12-01T06:00:00Z', new Map([[snaps[0].name, 'base of standby h2']]));
    expect(kept(p)).to.deep.equal([snaps[0].name, snaps[4].name, snaps[5].name]);
    expect(p.keep[0].reasons).to.deep.equal(['protected: base of standby h2']);
  });

  it("never deletes what the schedule does not own: a user's, a move's, another policy's", () => {
    const mine = series('2026-12-01T00:00:00Z', 1, 4);
    const others: RetainedSnapshot[] = [
      { name: 'before-upgrade', createdAt: '2026-11-01T00:00:00Z' },
      { name: '_move.3.final', createdAt: '2026-11-02T00:00:00Z' },
      sched('2026-11-03T00:00:00Z', 'other'),
      sched('2026-11-04T00:00:00Z', 'p-2'),
      { name: '_schedule.p.x.20261101T000000Z', createdAt: '2026-11-05T00:00:00Z' },
      { name: '_replication.h2.7', createdAt: '2026-11-06T00:00:00Z' },
    ];
    const p = plan([...mine, ...others], '1', '2026-12-01T04:00:00Z');
    expect(deleted(p)).to.deep.equal(mine.slice(0, 3).map((s) => s.name));
    for (const o of others) expect(kept(p)).to.include(o.name);
    expect(p.keep[0].reasons[0]).to.match(/not the schedule's of policy p: only its owner deletes it/);
    expect(ownedBySchedule('_schedule.p.20261101T000000Z', 'p')).to.equal(true);
    expect(ownedBySchedule('_schedule.p-2.20261101T000000Z', 'p')).to.equal(false);
  });

  it('never deletes the newest, even when every window has passed it', () => {
    const snaps = series('2026-11-01T00:00:00Z', 24, 3);
    const p = plan(snaps, '1h', '2026-12-01T00:00:00Z');
    expect(kept(p)).to.deep.equal([snaps[2].name]);
    expect(p.keep[0].reasons).to.deep.equal(['the newest snapshot of the schedule']);
  });

  it('keeps one whose time cannot be read, and one stamped after now, which takes no slot', () => {
    const odd: RetainedSnapshot = { name: scheduleSnapshotName('p', new Date('2026-12-01T01:00:00Z')), createdAt: 'yesterday' };
    const future = sched('2026-12-01T09:00:00Z');
    const older = sched('2026-12-01T04:00:00Z');
    const current = sched('2026-12-01T05:00:00Z');
    const p = plan([odd, older, current, future], '1h', '2026-12-01T05:30:00Z');
    expect(kept(p)).to.deep.equal([odd.name, current.name, future.name]);
    expect(p.keep[0].reasons[0]).to.match(/cannot be read/);
    expect(p.keep[1].reasons).to.deep.equal(['the newest snapshot of the schedule', 'hourly: the newest of 2026-12-01T05h (1h)']);
    expect(p.keep[2].reasons[0]).to.match(/after now: kept until then/);
    expect(deleted(p)).to.deep.equal([older.name]);
  });

  it('an empty list plans nothing', () => {
    expect(plan([], '48h', '2026-12-01T00:00:00Z')).to.deep.equal({ keep: [], delete: [] });
  });
});
