import { expect } from 'chai';
import { isFerryError } from '../../src/errors';
import {
  MAX_SNAPSHOT_NAME,
  moveFinalSnapshot,
  moveOfSnapshot,
  moveRoundSnapshot,
  newSnapshotName,
  scheduleSnapshot,
  utcStamp,
  parseSnapshotName,
  validateSnapshotName,
  validateStoredSnapshotName,
  type SnapshotName,
} from '../../src/volume/snapshot-names';

describe('snapshot names', function () {
  it("builds a move's names in the move's namespace", function () {
    expect(moveRoundSnapshot(12, 1)).to.equal('_move.12.1');
    expect(moveRoundSnapshot(12, 4)).to.equal('_move.12.4');
    expect(moveFinalSnapshot(12)).to.equal('_move.12.final');
  });

  const table: [string, SnapshotName | undefined][] = [
    ['_move.12.1', { owner: 'move', move: 12, round: 1, legacy: false }],
    ['_move.12.final', { owner: 'move', move: 12, round: 'final', legacy: false }],
    ['m12-3', { owner: 'move', move: 12, round: 3, legacy: true }],
    ['m7-final', { owner: 'move', move: 7, round: 'final', legacy: true }],
    ['before-1', { owner: 'user', name: 'before-1' }],
    ['m12', { owner: 'user', name: 'm12' }],
    ['m12-x', { owner: 'user', name: 'm12-x' }],
    ['m0-1', { owner: 'user', name: 'm0-1' }],
    ['2024.01.01_daily', { owner: 'user', name: '2024.01.01_daily' }],
    ['_schedule.hourly.20260101T0000', { owner: 'schedule', key: 'hourly.20260101T0000' }],
    ['_replication.h2.5', { owner: 'replication', key: 'h2.5' }],
    ['_backup.bank1.3', { owner: 'backup', key: 'bank1.3' }],
    ['_move.12', undefined],
    ['_move.x.1', undefined],
    ['_move.012.1', undefined],
    ['_move.12.0', undefined],
    ['_user.a', undefined],
    ['_other.a', undefined],
    ['_move..1', undefined],
    ['_', undefined],
    ['', undefined],
    ['-x', undefined],
    ['.x', undefined],
    ['a/b', undefined],
    ['a b', undefined],
    ['x'.repeat(MAX_SNAPSHOT_NAME + 1), undefined],
  ];
  for (const [name, want] of table) {
    it(`parses ${JSON.stringify(name.length > 20 ? name.slice(0, 20) + '…' : name)} as ${want ? want.owner : 'no stored name'}`, function () {
      expect(parseSnapshotName(name)).to.deep.equal(want);
      if (want) expect(validateStoredSnapshotName(name)).to.equal(name);
      else expect(() => validateStoredSnapshotName(name)).to.throw().that.satisfies((e: unknown) => isFerryError(e, 'INVALID_NAME'));
    });
  }

  it('round-trips every name a move builds, and names the move that owns it', function () {
    for (const id of [1, 9, 123456]) {
      for (const n of [moveRoundSnapshot(id, 1), moveRoundSnapshot(id, 4), moveFinalSnapshot(id)]) {
        expect(moveOfSnapshot(n), n).to.equal(id);
      }
    }
    expect(moveOfSnapshot('before-1')).to.equal(undefined);
    expect(moveOfSnapshot('m3-final')).to.equal(3);
  });

  it('stored names keep to characters and lengths every backend accepts (btrfs, files, ZFS, LVM)', function () {
    for (const [name, want] of table) {
      if (!want) continue;
      expect(name, name).to.match(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/);
      expect(name.length).to.be.at.most(MAX_SNAPSHOT_NAME);
    }
  });

  describe('validateSnapshotName (what a user may name a snapshot)', function () {
    for (const ok of ['s1', 'before-1', 'a', 'A.b_c-d', 'm12', 'x'.repeat(MAX_SNAPSHOT_NAME)]) {
      it(`accepts ${JSON.stringify(ok.slice(0, 20))}`, function () {
        expect(validateSnapshotName(ok)).to.equal(ok);
        expect(parseSnapshotName(ok)?.owner).to.equal('user');
      });
    }
    for (const bad of ['../s', '', '_move.1.1', '_x', '-a', '.a', 'a/b', 'x'.repeat(MAX_SNAPSHOT_NAME + 1), 'm1-1', 'm4-final', 42]) {
      it(`refuses ${JSON.stringify(typeof bad === 'string' ? bad.slice(0, 20) : bad)}`, function () {
        expect(() => validateSnapshotName(bad))
          .to.throw(/snapshot name/)
          .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_NAME'));
      });
    }
    it('no user name is ever an internal name: every accepted name parses as the user’s', function () {
      // Internal names start with "_", which the user rule refuses; legacy move names are refused by name.
      for (const [name, want] of table) {
        let accepted = true;
        try {
          validateSnapshotName(name);
        } catch {
          accepted = false;
        }
        if (accepted) expect(want?.owner, name).to.equal('user');
        if (want && want.owner !== 'user') expect(accepted, name).to.equal(false);
      }
    });
  });
});

describe('snapshot names: names of new snapshots (snap)', function () {
  const at = new Date(Date.UTC(2026, 11, 2, 7, 5, 9, 123));
  const cases: [string, Parameters<typeof newSnapshotName>[0], { name?: string; policy?: string }, string | RegExp][] = [
    ['manual default is the UTC time', 'manual', {}, '20261202T070509Z'],
    ['manual takes a user name', 'manual', { name: 'before-upgrade' }, 'before-upgrade'],
    ['manual refuses an internal name', 'manual', { name: '_schedule.x.1' }, /INVALID_NAME/],
    ['manual refuses a legacy move name', 'manual', { name: 'm3-final' }, /INVALID_NAME/],
    ['schedule default from its policy', 'schedule', { policy: 'nightly' }, '_schedule.nightly.20261202T070509Z'],
    ['schedule without policy or name', 'schedule', {}, /INVALID_REQUEST/],
    ['schedule refuses a replication name', 'schedule', { name: '_replication.k' }, /INVALID_NAME/],
    ['replication takes its own name', 'replication', { name: '_replication.h2.7' }, '_replication.h2.7'],
    ['replication default', 'replication', {}, '_replication.20261202T070509Z'],
    ['replication refuses a move name', 'replication', { name: '_move.1.final' }, /INVALID_NAME/],
    ['fenced takes a user-visible name', 'fenced', { name: 'lost-gen4-h1' }, 'lost-gen4-h1'],
    ['fenced needs a name', 'fenced', {}, /INVALID_REQUEST/],
    ['removed takes _removed.<key>', 'removed', { name: '_removed.20261202T070509Z' }, '_removed.20261202T070509Z'],
    ['removed refuses a user name', 'removed', { name: 'x' }, /INVALID_NAME/],
  ];
  for (const [what, origin, o, want] of cases) {
    it(what, function () {
      if (typeof want === 'string') {
        expect(newSnapshotName(origin, o, at)).to.equal(want);
        return;
      }
      try {
        newSnapshotName(origin, o, at);
        expect.fail('accepted');
      } catch (err) {
        expect(`${(err as { code?: string }).code}`).to.match(want);
      }
    });
  }
  it('stamps and schedule names', function () {
    expect(utcStamp(at)).to.equal('20261202T070509Z');
    expect(scheduleSnapshot('gold', at)).to.equal('_schedule.gold.20261202T070509Z');
    expect(parseSnapshotName(scheduleSnapshot('gold', at))).to.deep.equal({ owner: 'schedule', key: 'gold.20261202T070509Z' });
  });
});
