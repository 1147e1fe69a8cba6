import { expect } from 'chai';
import { lagSeconds, lagTransitions, type LagInput } from '../../src/control/replication-lag';

/* replicate: when a standby becomes late and when it catches up (pure), under a fixed clock. */

const T0 = Date.UTC(2026, 11, 2, 7, 0, 0);
const s = (o: Partial<LagInput>): LagInput => ({ volume: 'db', node: 'h2', snapshotAt: T0, chosenAt: T0 - 60_000, rpoSeconds: 10, late: false, ...o });

describe('control: replication lag and its events', function () {
  it('measures the lag from the newest snapshot, or from when the standby was chosen before its first', function () {
    expect(lagSeconds({ snapshotAt: T0, chosenAt: T0 - 99_000 }, T0 + 2500)).to.equal(2.5);
    expect(lagSeconds({ snapshotAt: null, chosenAt: T0 }, T0 + 4000)).to.equal(4);
    // A clock a little behind the snapshot's time is no negative lag.
    expect(lagSeconds({ snapshotAt: T0 + 500, chosenAt: T0 }, T0)).to.equal(0);
  });

  const cases: { why: string; input: LagInput; now: number; want: { kind: string; late: boolean }[] }[] = [
    { why: 'within the RPO, not late: nothing', input: s({}), now: T0 + 9_000, want: [] },
    { why: 'exactly the RPO is still within it', input: s({}), now: T0 + 10_000, want: [] },
    { why: 'past the RPO: late', input: s({}), now: T0 + 10_001, want: [{ kind: 'replication-late', late: true }] },
    { why: 'late already and still late: nothing (one event, not one a second)', input: s({ late: true }), now: T0 + 60_000, want: [] },
    { why: 'late, then within the RPO: caught up', input: s({ late: true }), now: T0 + 3_000, want: [{ kind: 'replication-caught-up', late: false }] },
    { why: 'no snapshot yet, chosen long ago: late', input: s({ snapshotAt: null }), now: T0, want: [{ kind: 'replication-late', late: true }] },
    { why: 'no snapshot yet, chosen just now: not late', input: s({ snapshotAt: null, chosenAt: T0 }), now: T0 + 1000, want: [] },
  ];
  for (const c of cases) {
    it(c.why, function () {
      expect(lagTransitions([c.input], c.now).map((t) => ({ kind: t.kind, late: t.late }))).to.deep.equal(c.want);
    });
  }

  it('says in the event how far behind the standby is, against which RPO', function () {
    const [t] = lagTransitions([s({})], T0 + 25_000);
    expect(t).to.include({ volume: 'db', node: 'h2', kind: 'replication-late' });
    expect(t.detail).to.equal('standby h2 is 25 s behind, past the RPO of 10 s (its newest snapshot is 25 s old)');
    const [back] = lagTransitions([s({ late: true })], T0 + 2_000);
    expect(back.detail).to.equal('standby h2 is within the RPO of 10 s again (2 s behind)');
  });

  it('decides each standby on its own', function () {
    const out = lagTransitions([s({ node: 'h2' }), s({ node: 'h3', snapshotAt: T0 + 20_000 }), s({ node: 'h4', late: true, snapshotAt: T0 + 20_000 })], T0 + 21_000);
    expect(out.map((t) => `${t.node}:${t.kind}`)).to.deep.equal(['h2:replication-late', 'h4:replication-caught-up']);
  });
});
