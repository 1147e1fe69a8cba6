import { expect } from 'chai';
import { planBackupRetention, type RetainedCheckpoint } from '../../src/volume/backup-retention';
import { parseKeepSpec } from '../../src/volume/retention';

/* Retention of a volume's checkpoints in a bank (pure, fixed clock): which go after a scheduled backup. */

const NOW = new Date('2026-12-02T10:00:00Z');

/** A checkpoint of `volume` taken at `time`, by the schedule unless said. */
function cp(time: string, origin = 'schedule', volume = 'db'): RetainedCheckpoint {
  const stamp = time.replace(/[-:]/g, '').replace(/\.\d+/, '');
  return { id: `${stamp}-${origin.slice(0, 1)}${volume.slice(0, 1)}000000`, volume, time, origin };
}

/** Daily scheduled checkpoints at 02:00 for the `days` days before NOW (oldest first). */
function daily(days: number): RetainedCheckpoint[] {
  return Array.from({ length: days }, (_, i) => cp(new Date(Date.UTC(2026, 11, 2 - days + i, 2)).toISOString().replace('.000', '')));
}

describe('backup retention (pure)', () => {
  const cases: { what: string; checkpoints: RetainedCheckpoint[]; keep: string; deleted: string[] }[] = [
    {
      what: 'a count keeps the newest N scheduled',
      checkpoints: daily(5),
      keep: '2',
      deleted: ['2026-11-27T02:00:00Z', '2026-11-28T02:00:00Z', '2026-11-29T02:00:00Z'],
    },
    {
      what: '7d keeps one per day for 7 days (today counts)',
      checkpoints: daily(10),
      keep: '7d',
      // days 2026-11-22 .. 2026-12-01 exist; 7 days back from 2026-12-02 reach 2026-11-26.
      deleted: ['2026-11-22T02:00:00Z', '2026-11-23T02:00:00Z', '2026-11-24T02:00:00Z', '2026-11-25T02:00:00Z'],
    },
    {
      what: 'within a day only the newest stays',
      checkpoints: [cp('2026-12-01T01:00:00Z'), cp('2026-12-01T13:00:00Z'), cp('2026-12-02T09:00:00Z')],
      keep: '7d',
      deleted: ['2026-12-01T01:00:00Z'],
    },
    {
      what: 'GFS: 2d 2w 3m',
      checkpoints: [
        cp('2026-09-30T02:00:00Z'), // September: 3 months back, past 3m
        cp('2026-10-31T02:00:00Z'), // the newest of October: monthly
        cp('2026-11-15T02:00:00Z'), // week of 11-09 (3 weeks back), not November's newest: goes
        cp('2026-11-27T02:00:00Z'), // the newest of the week of 11-23: weekly
        cp('2026-11-30T02:00:00Z'), // the newest of November: monthly
        cp('2026-12-01T02:00:00Z'), // yesterday: daily
        cp('2026-12-02T02:00:00Z'), // the newest
      ],
      keep: '2d 2w 3m',
      deleted: ['2026-09-30T02:00:00Z', '2026-11-15T02:00:00Z'],
    },
    {
      what: 'never a manual or drill checkpoint, whatever their age',
      checkpoints: [cp('2026-01-01T00:00:00Z', 'manual'), cp('2026-02-01T00:00:00Z', 'drill'), ...daily(3)],
      keep: '1',
      deleted: ['2026-11-29T02:00:00Z', '2026-11-30T02:00:00Z'],
    },
    {
      what: "never the volume's newest, even when a manual one is newer than the newest scheduled",
      checkpoints: [cp('2026-11-01T02:00:00Z'), cp('2026-11-02T02:00:00Z'), cp('2026-12-02T09:00:00Z', 'manual')],
      keep: '1d',
      // the newest scheduled (11-02) stays: it is the schedule's newest; 11-01 goes.
      deleted: ['2026-11-01T02:00:00Z'],
    },
    {
      what: "another volume's checkpoints are never touched",
      checkpoints: [cp('2026-10-01T02:00:00Z', 'schedule', 'web'), ...daily(2)],
      keep: '1',
      deleted: ['2026-11-30T02:00:00Z'],
    },
    {
      what: 'a checkpoint dated after now (a clock stepped back) stays and takes no slot',
      checkpoints: [cp('2026-11-30T02:00:00Z'), cp('2026-12-01T02:00:00Z'), cp('2026-12-03T02:00:00Z')],
      keep: '1',
      deleted: ['2026-11-30T02:00:00Z'],
    },
    {
      what: 'one scheduled checkpoint is never deleted, even by a keep that keeps nothing older',
      checkpoints: [cp('2020-01-01T00:00:00Z')],
      keep: '1d',
      deleted: [],
    },
    { what: 'no checkpoints: nothing to do', checkpoints: [], keep: '3', deleted: [] },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const plan = planBackupRetention({ checkpoints: c.checkpoints, volume: 'db', keep: parseKeepSpec(c.keep), now: NOW });
      const timeOf = new Map(c.checkpoints.map((x) => [x.id, x.time]));
      expect(plan.delete.map((d) => timeOf.get(d.name))).to.deep.equal(c.deleted);
      // Every checkpoint is decided once, each with a reason.
      expect(plan.keep.length + plan.delete.length).to.equal(c.checkpoints.length);
      for (const v of [...plan.keep, ...plan.delete]) expect(v.reasons.length).to.be.greaterThan(0);
    });
  }

  it('says why each is kept or goes', () => {
    const cps = [cp('2026-11-29T02:00:00Z'), cp('2026-11-30T02:00:00Z', 'manual'), cp('2026-12-01T02:00:00Z')];
    const plan = planBackupRetention({ checkpoints: cps, volume: 'db', keep: parseKeepSpec('1'), now: NOW });
    expect(plan.delete).to.deep.equal([{ name: cps[0].id, reasons: ['kept by none of the backup keep "1"'] }]);
    expect(plan.keep.find((k) => k.name === cps[1].id)!.reasons).to.deep.equal(['taken by hand: only scheduled checkpoints are pruned']);
    expect(plan.keep.find((k) => k.name === cps[2].id)!.reasons).to.include.members([
      "the volume's newest checkpoint (the next backup's parent)",
      'the newest scheduled checkpoint',
      'among the newest 1 (#1)',
    ]);
  });
});
