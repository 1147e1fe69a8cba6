import { expect } from 'chai';
import { isFerryError } from '../../src/errors';
import { retainedDatasetId, retainedDatasetName } from '../../src/volume/names';
import { checkReclaimOptions, parseDuration, planReclaim, reclaimOf, type Reclaim, type RetainedItem } from '../../src/volume/reclaim';
import { parseSnapshotName, removedSnapshot, validateSnapshotName } from '../../src/volume/snapshot-names';

describe('reclaim: the pure decisions', function () {
  describe('parseDuration', function () {
    const table: [string, number | RegExp][] = [
      ['30s', 30],
      ['15m', 900],
      ['12h', 43_200],
      ['7d', 604_800],
      ['2w', 1_209_600],
      [' 1d ', 86_400],
      ['0d', /invalid retain-removed "0d": give a whole number and a unit s, m, h, d or w/],
      ['7', /give a whole number and a unit/],
      ['1.5h', /give a whole number and a unit/],
      ['7D', /give a whole number and a unit/],
      ['-1d', /give a whole number and a unit/],
      ['', /give a whole number and a unit/],
    ];
    for (const [text, want] of table) {
      it(`${JSON.stringify(text)} -> ${want}`, function () {
        if (typeof want === 'number') expect(parseDuration(text, 'retain-removed')).to.equal(want);
        else expect(() => parseDuration(text, 'retain-removed')).to.throw(want);
      });
    }
  });

  describe('reclaimOf: options, then policy, then the cluster default', function () {
    const DEL: Reclaim = { reclaim: 'delete', retainSeconds: 604_800 };
    const RET: Reclaim = { reclaim: 'retain', retainSeconds: 3600 };
    const table: [string, Record<string, string>, { reclaim: 'delete' | 'retain'; retainRemovedSeconds: number | null } | null, Reclaim, Reclaim][] = [
      ['nothing said: the default stays delete', {}, null, DEL, DEL],
      ['-o reclaim=retain keeps for the default time', { reclaim: 'retain' }, null, DEL, { reclaim: 'retain', retainSeconds: 604_800 }],
      ['-o retain-removed sets the time', { reclaim: 'retain', 'retain-removed': '2h' }, null, DEL, { reclaim: 'retain', retainSeconds: 7200 }],
      ['-o reclaim=delete wins over a retaining default', { reclaim: 'delete' }, null, RET, { reclaim: 'delete', retainSeconds: 3600 }],
      ['a cluster default of retain applies to volumes that say nothing', {}, null, RET, RET],
      ['a policy decides when the options do not', {}, { reclaim: 'retain', retainRemovedSeconds: 60 }, DEL, { reclaim: 'retain', retainSeconds: 60 }],
      ['a policy without a time keeps the default time', {}, { reclaim: 'retain', retainRemovedSeconds: null }, DEL, { reclaim: 'retain', retainSeconds: 604_800 }],
      ['the volume\'s own option wins over its policy', { reclaim: 'delete' }, { reclaim: 'retain', retainRemovedSeconds: 60 }, DEL, { reclaim: 'delete', retainSeconds: 60 }],
      ['a stored value no longer valid retains (never loses data by doubt)', { reclaim: 'keep' }, null, DEL, { reclaim: 'retain', retainSeconds: 604_800 }],
    ];
    for (const [what, options, policy, defaults, want] of table) {
      it(what, function () {
        expect(reclaimOf(options, policy, defaults)).to.deep.equal(want);
      });
    }
  });

  it('checks the Create options, naming valid values', function () {
    expect(() => checkReclaimOptions({ reclaim: 'retain', 'retain-removed': '7d' })).not.to.throw();
    expect(() => checkReclaimOptions({ reclaim: 'keep' })).to.throw(/invalid reclaim "keep": valid values are delete, retain/);
    try {
      checkReclaimOptions({ 'retain-removed': 'forever' });
      expect.fail('accepted retain-removed=forever');
    } catch (err) {
      expect(isFerryError(err, 'INVALID_OPTION')).to.equal(true);
    }
  });

  describe('planReclaim: what a host does with retained data', function () {
    const now = new Date('2026-12-02T07:00:00Z');
    const item = (id: number, state: RetainedItem['state'], expiresAt: string, node = 'h1'): RetainedItem => ({ id, node, state, expiresAt });
    const table: [string, RetainedItem[], string[]][] = [
      ['nothing recorded: nothing to do', [], []],
      ['kept, not yet expired: left alone', [item(1, 'retained', '2026-12-02T07:00:01Z')], []],
      ['expired exactly now: expires', [item(1, 'retained', '2026-12-02T07:00:00Z')], ['expire 1']],
      ['expired a week ago (the host was down): expires once', [item(1, 'retained', '2026-11-25T07:00:00Z')], ['expire 1']],
      ['a retain cut off by a crash, or asked on another host: finished here', [item(2, 'retaining', '2026-12-09T07:00:00Z')], ['finish-retain 2']],
      ['a retain whose time passed before it was made: finished first, expired at the next pass', [item(2, 'retaining', '2026-01-01T00:00:00Z')], ['finish-retain 2']],
      ['expired or undeleted whose dataset is still here: destroyed', [item(3, 'dropping', '2026-12-09T07:00:00Z')], ['destroy 3']],
      ["another host's data: its own upkeep's", [item(4, 'retained', '2026-01-01T00:00:00Z', 'h2'), item(5, 'retaining', '2026-01-01T00:00:00Z', 'h2')], []],
      [
        'several at once, each on its own',
        [item(1, 'retained', '2026-12-01T00:00:00Z'), item(2, 'retained', '2027-01-01T00:00:00Z'), item(3, 'dropping', '2027-01-01T00:00:00Z')],
        ['expire 1', 'destroy 3'],
      ],
    ];
    for (const [what, items, want] of table) {
      it(what, function () {
        expect(planReclaim(items, 'h1', now).map((a) => `${a.kind} ${a.id}`)).to.deep.equal(want);
      });
    }
  });

  it('names the retained dataset and the last snapshot in namespaces no volume or user snapshot can use', function () {
    expect(retainedDatasetName(12)).to.equal('_removed.12');
    expect(retainedDatasetId('_removed.12')).to.equal(12);
    for (const other of ['removed.12', '_removed.0', '_removed.x', '_removed.12.db', 'db', '_move.1.1']) expect(retainedDatasetId(other), other).to.equal(undefined);
    expect(removedSnapshot(12)).to.equal('_removed.12');
    expect(parseSnapshotName('_removed.12')).to.deep.equal({ owner: 'removed', key: '12' });
    expect(() => validateSnapshotName('_removed.12')).to.throw(/invalid snapshot name/);
  });
});
