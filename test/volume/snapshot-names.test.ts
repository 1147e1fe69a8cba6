import { expect } from 'chai';
import { isFerryError } from '../../src/errors';
import {
  MAX_SNAPSHOT_NAME,
  moveFinalSnapshot,
  moveOfSnapshot,
  moveRoundSnapshot,
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
