import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  recoverTemps,
  classify,
  lvBytes,
  parseLvReport,
  parseVgReport,
  poolFreeBytes,
  saysPoolFull,
  snapshotLv,
  volumeLv,
} from '../../../../src/agent/backends/lvm/parse';
import { isFerryError } from '../../../../src/errors';

const FIXTURES = join(__dirname, '..', '..', '..', '..', '..', 'test', 'fixtures', 'lvm');
const fixture = (f: string): string => readFileSync(join(FIXTURES, f), 'utf8');
const MiB = 1024 * 1024;

describe('lvm parse (outputs captured from lvm2 2.03.16 in the test VM)', function () {
  it('reads ferry volumes, snapshots (oldest first), temp LVs and the pool from lvs', function () {
    const state = classify('fvg', 'pool', parseLvReport(fixture('lvs-ferry.json')));
    expect([...state.volumes.keys()].sort()).to.deep.equal(['db', 'web-1']);
    expect(state.volumes.get('db')).to.include({ lv: 'fv_db', fs: 'ext4', sizeBytes: 64 * MiB, active: true });
    expect(state.volumes.get('db')!.usedBytes).to.be.above(0);
    expect(state.volumes.get('web-1')).to.include({ lv: 'fv_web-1', fs: 'xfs', sizeBytes: 300 * MiB });
    expect(state.snapshots.get('db')!.map((s) => [s.snap, s.lv, s.active])).to.deep.equal([
      ['before-1', 'fs_db+before-1', false],
      ['_move.7.final', 'fs_db+_move.7.final', false],
    ]);
    expect(state.temps.map((t) => t.lv)).to.deep.equal(['ft_0123456789abcdef']);
    expect(state.pool).to.include({ lvName: 'pool', whenFull: 'error', sizeBytes: 256 * MiB });
    expect(poolFreeBytes(state.pool!)).to.equal(Math.floor((256 * MiB * (100 - state.pool!.dataPercent!)) / 100));
    expect(state.pool!.dataPercent).to.be.within(1, 50);
  });

  it('ignores LVs without the ferry tag (the pool internals, other users of the VG)', function () {
    const rows = parseLvReport(fixture('lvs-volume-and-snapshot.json'));
    expect(rows.map((r) => r.lvName)).to.include.members(['[pool_tdata]', 'v_vol1']);
    const state = classify('fvg', 'pool', rows.map((r) => ({ ...r, tags: r.tags.filter((t) => t !== 'ferry') })));
    expect(state.volumes.size).to.equal(0);
    expect(state.temps).to.deep.equal([]);
    expect(state.pool?.dataPercent).to.equal(1.66);
  });

  it('sees a full pool: no free bytes, and lvcreate says so', function () {
    const state = classify('fvg', 'pool', parseLvReport(fixture('lvs-pool-full.json')));
    expect(state.pool!.dataPercent).to.equal(100);
    expect(poolFreeBytes(state.pool!)).to.equal(0);
    expect(saysPoolFull(fixture('lvcreate-pool-full.stderr'))).to.equal(true);
    expect(saysPoolFull('  Volume group "fvg" not found')).to.equal(false);
  });

  it('reads the VG, and no VG from a report of a missing one', function () {
    expect(parseVgReport(fixture('vgs.json'), 'fvg')).to.deep.equal({ sizeBytes: 1069547520, freeBytes: parseVgReport(fixture('vgs.json'), 'fvg')!.freeBytes, extentBytes: 4 * MiB });
    expect(parseVgReport(fixture('vgs-missing.json'), 'nosuchvg')).to.equal(undefined);
  });

  it('refuses output that is not a report', function () {
    expect(() => parseLvReport('  Volume group "x" not found')).to.throw().that.satisfies((e: unknown) => isFerryError(e, 'INTERNAL'));
    expect(() => parseLvReport('{"report":[{"lv":[{"lv_name":"a","lv_size":"12.5"}]}]}')).to.throw(/not a byte count/);
  });

  it('names LVs so that no two ferry names meet, and within device-mapper limits', function () {
    const cases: [string, string, string][] = [
      ['db', 'fv_db', 'fs_db+s1'],
      ['a_b', 'fv_a_b', 'fs_a_b+s1'],
      // Reserved by LVM for internal LVs: hashed.
      ['x_tmeta', 'fvh_', 'fsh_'],
    ];
    for (const [name, vol, snap] of cases) {
      expect(volumeLv('fvg', name).startsWith(vol), name).to.equal(true);
      expect(snapshotLv('fvg', name, 's1').startsWith(snap), name).to.equal(true);
    }
    // `+` is in no ferry name, so (a_b, c) and (a, b_c) differ.
    expect(snapshotLv('fvg', 'a_b', 'c')).not.to.equal(snapshotLv('fvg', 'a', 'b_c'));
    const long = 'v'.repeat(128);
    expect(volumeLv('fvg', long)).to.match(/^fvh_[0-9a-f]{32}$/);
    expect(snapshotLv('fvg', long, 's')).to.match(/^fsh_[0-9a-f]{32}$/);
    expect(snapshotLv('fvg', long, 's')).not.to.equal(snapshotLv('fvg', long, 't'));
    // Dashes count twice in a device-mapper name.
    const dashy = '-'.repeat(70);
    expect(volumeLv('fvg', `a${dashy}`)).to.match(/^fvh_/);
  });

  it('rounds sizes down to whole extents, never below one', function () {
    expect(lvBytes(64 * MiB, 4 * MiB)).to.equal(64 * MiB);
    expect(lvBytes(65 * MiB, 4 * MiB)).to.equal(64 * MiB);
    expect(lvBytes(1 * MiB, 4 * MiB)).to.equal(4 * MiB);
  });
});

describe('lvm: what start does with temp LVs an interrupted operation left (recoverTemps)', function () {
  const vol = { lv: 'fv_db', fs: 'ext4' as const, sizeBytes: 64 * MiB, active: true };
  const state = (volumes: string[], temps: { lv: string; volume?: string }[]) => ({
    volumes: new Map(volumes.map((v) => [v, { ...vol, lv: `fv_${v}` }])),
    snapshots: new Map(),
    temps,
  });
  const cases: { title: string; volumes: string[]; temps: { lv: string; volume?: string }[]; restore: { from: string; to: string }[]; remove: string[] }[] = [
    { title: 'nothing left', volumes: ['db'], temps: [], restore: [], remove: [] },
    { title: 'a receive or a rollback stopped before touching the volume: its copy goes', volumes: ['db'], temps: [{ lv: 'ft_1', volume: 'db' }], restore: [], remove: ['ft_1'] },
    {
      title: 'a rollback stopped with the volume set aside: it goes back, the copy goes',
      volumes: [],
      temps: [{ lv: 'ft_1', volume: 'db' }, { lv: 'fo_2', volume: 'db' }],
      restore: [{ from: 'fo_2', to: 'fv_db' }],
      remove: ['ft_1'],
    },
    { title: 'a rollback that finished but for removing the set-aside volume: it goes', volumes: ['db'], temps: [{ lv: 'fo_2', volume: 'db' }], restore: [], remove: ['fo_2'] },
    { title: 'a temp LV naming no volume goes', volumes: [], temps: [{ lv: 'ft_3' }], restore: [], remove: ['ft_3'] },
    {
      title: 'two set-aside copies of one missing volume: one goes back, the other goes',
      volumes: [],
      temps: [{ lv: 'fo_a', volume: 'db' }, { lv: 'fo_b', volume: 'db' }],
      restore: [{ from: 'fo_a', to: 'fv_db' }],
      remove: ['fo_b'],
    },
  ];
  for (const c of cases) {
    it(c.title, function () {
      expect(recoverTemps(state(c.volumes, c.temps), 'fvg')).to.deep.equal({ restore: c.restore, remove: c.remove });
    });
  }
});
