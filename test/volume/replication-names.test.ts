import { expect } from 'chai';
import { newestCommonBase, prunableReplicationSnapshots, replicationSnapshotAt, replicationSnapshotsDropped, replicationTimeOf } from '../../src/volume/replication-names';

/* replicate: replication snapshot names, the common base of an increment, and what may be pruned (pure). */

const at = (s: number) => new Date(Date.UTC(2026, 11, 2, 7, 0, s, 999));
const r = (s: number) => replicationSnapshotAt(at(s));

describe('volume: replication snapshot names', function () {
  it('names a snapshot after the UTC second it was asked for, and reads the time back', function () {
    expect(r(5)).to.equal('_replication.20261202T070005Z');
    expect(replicationTimeOf('_replication.20261202T070005Z')?.toISOString()).to.equal('2026-12-02T07:00:05.000Z');
  });

  it('reads no time from names replication does not own or that carry none', function () {
    for (const n of ['nightly', '_move.3.1', '_schedule.p.20261202T070005Z', '_replication.abc', '_replication.20261302T070005Z']) {
      expect(replicationTimeOf(n), n).to.equal(undefined);
    }
  });

  const cases: { why: string; names: string[]; oldest: string | null; want: string[] }[] = [
    { why: 'older than every standby\'s newest go', names: [r(1), r(2), r(3), r(4)], oldest: r(3), want: [r(1), r(2)] },
    { why: 'the oldest base itself stays (a standby\'s next base)', names: [r(3)], oldest: r(3), want: [] },
    { why: 'newer ones stay (a round under way may be sending one)', names: [r(3), r(4), r(5)], oldest: r(3), want: [] },
    { why: 'nothing while a standby has no base yet (its first round may send any)', names: [r(1), r(2)], oldest: null, want: [] },
    { why: 'never another owner\'s', names: ['a', '_move.1.final', '_schedule.p.20261202T070000Z', r(1)], oldest: r(2), want: [r(1)] },
  ];
  for (const c of cases) {
    it(`prunes: ${c.why}`, function () {
      expect(prunableReplicationSnapshots(c.names, c.oldest)).to.deep.equal(c.want);
    });
  }

  const dropped: { why: string; theirs: string[]; ours: string[]; want: string[] }[] = [
    { why: 'older than the receiver\'s newest, which it lacks: dropped', theirs: [r(1), r(2), r(3)], ours: [r(3)], want: [r(1), r(2)] },
    { why: 'newer than the receiver\'s newest: not dropped (a round it has not had)', theirs: [r(2), r(3), r(4)], ours: [r(2)], want: [] },
    { why: 'a receiver with no replication snapshot dropped none', theirs: [r(1), r(2)], ours: ['daily', '_move.2.final'], want: [] },
    { why: 'ones it holds are not dropped', theirs: [r(1), r(2)], ours: [r(1), r(2)], want: [] },
    { why: 'other owners\' never are', theirs: ['a', '_move.1.final', '_schedule.p.20261202T070000Z', r(1)], ours: [r(2)], want: [r(1)] },
  ];
  for (const c of dropped) {
    it(`dropped by the receiver: ${c.why}`, function () {
      expect(replicationSnapshotsDropped(c.theirs, c.ours)).to.deep.equal(c.want);
    });
  }

  it('bases an increment on the newest move or replication snapshot both hosts hold, never a user\'s', function () {
    expect(newestCommonBase([r(1), '_move.4.final', r(2)], [r(1), '_move.4.final'])).to.equal('_move.4.final');
    expect(newestCommonBase([r(1), r(2)], [r(2), r(1)])).to.equal(r(2));
    expect(newestCommonBase(['daily', r(1)], ['daily'])).to.equal(undefined);
    expect(newestCommonBase([r(1)], [])).to.equal(undefined);
  });
});
