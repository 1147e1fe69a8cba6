import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cmd from '../../../../src/agent/backends/btrfs/commands';
import * as parse from '../../../../src/agent/backends/btrfs/parse';
import { parseMountInfo } from '../../../../src/agent/mount-table';

// Captured with btrfs-progs 6.2 on Linux 6.18 (see VERSION.txt there); the source tree, not dist/.
const FIXTURES = join(__dirname, '../../../../../test/fixtures/btrfs');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

describe('btrfs parse', function () {
  describe('parseSubvolumeList', function () {
    it('reads id, parent and path of each line', function () {
      expect(parse.parseSubvolumeList(fixture('subvolume-list-volumes.txt'))).to.deep.equal([
        { id: 258, topLevel: 256, path: 'volumes/db' },
        { id: 259, topLevel: 256, path: 'volumes/web.1' },
        { id: 260, topLevel: 256, path: 'volumes/.db.new' },
      ]);
    });
    it('keeps paths with spaces and skips lines it does not know', function () {
      const text = 'WARNING: something\nID 300 gen 5 cgen 5 top level 257 otime 2026-11-22 10:12:51 path snapshots/a b/c\n\n';
      expect(parse.parseSubvolumeList(text)).to.deep.equal([{ id: 300, topLevel: 257, path: 'snapshots/a b/c' }]);
    });
    it('returns nothing for empty output', function () {
      expect(parse.parseSubvolumeList('')).to.deep.equal([]);
    });
  });

  describe('volumeIds', function () {
    it('maps volume names to ids and leaves out temporary names', function () {
      const ids = parse.volumeIds(parse.parseSubvolumeList(fixture('subvolume-list-volumes.txt')), 256);
      expect([...ids]).to.deep.equal([
        ['db', 258],
        ['web.1', 259],
      ]);
    });
    it('matches on the parent id, whatever form the printed path takes', function () {
      // -o prints "@ferry/srv/volumes/db", the plain list "srv/volumes/db" for the same subvolumes.
      for (const file of ['subvolume-list-subvol-mount.txt', 'subvolume-list-subvol-mount-plain.txt']) {
        const ids = parse.volumeIds(parse.parseSubvolumeList(fixture(file)), 257);
        expect([...ids], file).to.deep.equal([
          ['db', 258],
          ['web', 259],
        ]);
      }
    });
    it('leaves out subvolumes of another parent', function () {
      expect(parse.volumeIds(parse.parseSubvolumeList(fixture('subvolume-list-volumes.txt')), 5).size).to.equal(0);
    });
  });

  describe('snapshotsOf', function () {
    it('orders by subvolume id (creation), not by name', function () {
      // "zz" was taken before "aa".
      const entries = parse.parseSubvolumeList(fixture('subvolume-list-snapshots.txt'));
      expect(parse.snapshotsOf(entries, 257, 'db')).to.deep.equal(['zz', 'aa']);
    });
    it('keeps snapshots of one volume only', function () {
      const entries = parse.parseSubvolumeList(fixture('subvolume-list-received-all.txt'));
      expect(parse.snapshotsOf(entries, 257, 'db')).to.deep.equal(['zz', 'aa', 'rw-leftover']);
      expect(parse.snapshotsOf(entries, 257, 'web')).to.deep.equal(['zz']);
      expect(parse.snapshotsOf(entries, 257, 'nope')).to.deep.equal([]);
    });
    it('sorts ids numerically', function () {
      const text = 'ID 1000 gen 1 top level 257 path snapshots/v/b\nID 999 gen 1 top level 257 path snapshots/v/a\n';
      expect(parse.snapshotsOf(parse.parseSubvolumeList(text), 257, 'v')).to.deep.equal(['a', 'b']);
    });
    it('keeps internal snapshot names (they start with "_") and leaves out temporary ones (".")', function () {
      const text = 'ID 300 gen 1 top level 257 path snapshots/v/_move.3.1\nID 301 gen 1 top level 257 path snapshots/v/.tmp\nID 302 gen 1 top level 257 path snapshots/v/_move.3.final\n';
      expect(parse.snapshotsOf(parse.parseSubvolumeList(text), 257, 'v')).to.deep.equal(['_move.3.1', '_move.3.final']);
    });
    it('leaves out received read-write leftovers when listed with -r', function () {
      const entries = parse.parseSubvolumeList(fixture('subvolume-list-received.txt'));
      expect(parse.snapshotsOf(entries, 257, 'db')).to.deep.equal(['zz', 'aa']);
    });
  });

  describe('snapshotEntries', function () {
    it('lists every snapshot with its volume, oldest first', function () {
      const entries = parse.parseSubvolumeList(fixture('subvolume-list-received-all.txt'));
      expect(parse.snapshotEntries(entries, 257).map((s) => `${s.volume}/${s.snapshot}`)).to.deep.equal([
        'db/zz',
        'db/aa',
        'web/zz',
        'db/rw-leftover',
      ]);
    });
  });

  describe('isDatasetName', function () {
    const cases: [string, boolean][] = [
      ['db', true],
      ['web.1', true],
      ['a_b-c', true],
      ['.db.new', false],
      ['.db.rollback', false],
      ['', false],
      ['-x', false],
    ];
    for (const [name, ok] of cases) {
      it(`${JSON.stringify(name)} -> ${ok}`, function () {
        expect(parse.isDatasetName(name)).to.equal(ok);
      });
    }
  });

  describe('parseQgroupShow', function () {
    it('reads referenced and exclusive bytes of level-0 qgroups', function () {
      const q = parse.parseQgroupShow(fixture('qgroup-show-raw.txt'));
      expect(q.get(258)).to.deep.equal({ referencedBytes: 3162112, exclusiveBytes: 16384 });
      expect(q.get(5)).to.deep.equal({ referencedBytes: 16384, exclusiveBytes: 16384 });
      expect(q.size).to.equal(8);
    });
    it('ignores higher-level qgroups and headers', function () {
      const q = parse.parseQgroupShow(fixture('qgroup-show-raw.txt'));
      expect(q.has(100)).to.equal(false);
    });
    it('reads the older layout: lower-case headers, limit columns, no path column', function () {
      const text = [
        'qgroupid         rfer         excl     max_rfer     max_excl',
        '--------         ----         ----     --------     --------',
        '0/5             16384        16384         none         none',
        '0/256         3162112        16384     67108864         none',
      ].join('\n');
      expect([...parse.parseQgroupShow(text).keys()]).to.deep.equal([5, 256]);
    });
  });

  describe('parseSubvolumeShow', function () {
    it('reads a received snapshot', function () {
      expect(parse.parseSubvolumeShow(fixture('subvolume-show-received.txt'))).to.deep.equal({
        name: 'zz',
        id: 258,
        uuid: '3207b61d-fa00-8f4d-9afb-e7a614ccd028',
        receivedUuid: 'b6aadd43-7372-464f-a723-14da82cc5166',
        readOnly: true,
      });
    });
    it('reads a local read-only snapshot: no received UUID', function () {
      const info = parse.parseSubvolumeShow(fixture('subvolume-show-snapshot.txt'));
      expect(info).to.include({ name: 'aa', id: 262, readOnly: true });
      expect(info.receivedUuid).to.equal(undefined);
    });
    it('reads a partial receive: writable, no received UUID', function () {
      const info = parse.parseSubvolumeShow(fixture('subvolume-show-partial.txt'));
      expect(info).to.include({ id: 260, readOnly: false });
      expect(info.receivedUuid).to.equal(undefined);
    });
    it('reads a volume', function () {
      expect(parse.parseSubvolumeShow(fixture('subvolume-show-volume.txt'))).to.include({ name: 'db', id: 258, readOnly: false });
    });
    it('throws on output without a subvolume id', function () {
      expect(() => parse.parseSubvolumeShow('ERROR: Not a Btrfs subvolume: Invalid argument')).to.throw(/no subvolume id/);
    });
  });

  describe('parseRootId', function () {
    it('reads the id', function () {
      expect(parse.parseRootId(fixture('inspect-rootid.txt'))).to.equal(256);
    });
    for (const bad of ['', 'abc', '0', '12 13']) {
      it(`throws on ${JSON.stringify(bad)}`, function () {
        expect(() => parse.parseRootId(bad)).to.throw();
      });
    }
  });

  describe('poolMountOf and mountsOf', function () {
    const table = parseMountInfo(fixture('mountinfo.txt'));
    const pool = '/tmp/ferry-test-capture/pool';

    it('finds the pool at the top of its filesystem', function () {
      expect(parse.poolMountOf(table, pool)).to.deep.equal({ source: '/dev/loop0', root: '/' });
      expect(parse.poolMountOf(table, `${pool}/sub/dir`)).to.deep.equal({ source: '/dev/loop0', root: '/sub/dir' });
    });
    it('finds a pool inside a subvolume mount', function () {
      const sub = parseMountInfo(fixture('mountinfo-subvol.txt'));
      expect(parse.poolMountOf(sub, '/tmp/ferry-test-capture-svCS/m/srv')).to.deep.equal({ source: '/dev/loop0', root: '/@ferry/srv' });
    });
    it('is undefined when the path is not on btrfs', function () {
      expect(parse.poolMountOf(table, '/tmp/elsewhere')).to.equal(undefined);
      expect(parse.poolMountOf(table, '/tmp/ferry-test-capture/poolx')).to.equal(undefined);
    });
    it('finds the bind mount of a volume by its root', function () {
      const p = parse.poolMountOf(table, pool)!;
      expect(parse.mountsOf(table, p, '/volumes/db')).to.deep.equal(['/tmp/ferry-test-capture/mnt']);
      expect(parse.mountsOf(table, p, '/volumes/d')).to.deep.equal([]);
      expect(parse.mountsOf(table, p, '/volumes/web.1')).to.deep.equal([]);
    });
    it('does not confuse the same path in another pool', function () {
      // /dev/loop1 has "/snapshots" bound; in the pool on /dev/loop0 nothing of it is mounted.
      const p = parse.poolMountOf(table, pool)!;
      expect(parse.mountsOf(table, p, '/snapshots')).to.deep.equal([]);
      const other = parse.poolMountOf(table, '/tmp/ferry-test-capture/other')!;
      expect(parse.mountsOf(table, other, '/snapshots')).to.deep.equal(['/tmp/ferry-test-capture/mnt2']);
    });
    it('counts a bind of a directory inside the dataset', function () {
      const p = parse.poolMountOf(table, pool)!;
      expect(parse.mountsOf(table, p, '/volumes')).to.deep.equal(['/tmp/ferry-test-capture/mnt']);
    });
  });
});

describe('btrfs commands', function () {
  const cases: [string, string[], string[]][] = [
    ['truncateFile', cmd.truncateFile('/p.img.mkfs-tmp', 536870912), ['truncate', '-s', '536870912', '/p.img.mkfs-tmp']],
    ['mkfs', cmd.mkfs('/p.img'), ['mkfs.btrfs', '-q', '-L', 'ferry', '/p.img']],
    ['quotaEnable', cmd.quotaEnable('/pool'), ['btrfs', 'quota', 'enable', '/pool']],
    ['quotaRescan', cmd.quotaRescan('/pool'), ['btrfs', 'quota', 'rescan', '-w', '/pool']],
    ['quotaRescanWait', cmd.quotaRescanWait('/pool'), ['btrfs', 'quota', 'rescan', '-W', '/pool']],
    ['subvolumeCreate', cmd.subvolumeCreate('/pool/volumes/db'), ['btrfs', 'subvolume', 'create', '/pool/volumes/db']],
    ['snapshot ro', cmd.subvolumeSnapshot('/v', '/s', true), ['btrfs', 'subvolume', 'snapshot', '-r', '/v', '/s']],
    ['snapshot rw', cmd.subvolumeSnapshot('/s', '/v', false), ['btrfs', 'subvolume', 'snapshot', '/s', '/v']],
    ['subvolumeDelete', cmd.subvolumeDelete(['/a', '/b']), ['btrfs', 'subvolume', 'delete', '-c', '/a', '/b']],
    ['subvolumeList', cmd.subvolumeList('/pool/volumes'), ['btrfs', 'subvolume', 'list', '-o', '/pool/volumes']],
    ['subvolumeList ro', cmd.subvolumeList('/pool/snapshots', true), ['btrfs', 'subvolume', 'list', '-o', '-r', '/pool/snapshots']],
    ['subvolumeShow', cmd.subvolumeShow('/s'), ['btrfs', 'subvolume', 'show', '/s']],
    ['rootId', cmd.rootId('/pool/volumes'), ['btrfs', 'inspect-internal', 'rootid', '/pool/volumes']],
    ['qgroupLimit', cmd.qgroupLimit(67108864, '/v'), ['btrfs', 'qgroup', 'limit', '67108864', '/v']],
    ['qgroupLimit none', cmd.qgroupLimit('none', '/v'), ['btrfs', 'qgroup', 'limit', 'none', '/v']],
    ['qgroupShow', cmd.qgroupShow('/pool'), ['btrfs', 'qgroup', 'show', '--raw', '/pool']],
    ['qgroupClearStale', cmd.qgroupClearStale('/pool'), ['btrfs', 'qgroup', 'clear-stale', '/pool']],
    ['filesystemSync', cmd.filesystemSync('/pool'), ['btrfs', 'filesystem', 'sync', '/pool']],
    ['send full', cmd.send('/s/db/s1'), ['btrfs', 'send', '-q', '/s/db/s1']],
    ['send incremental', cmd.send('/s/db/s2', '/s/db/s1'), ['btrfs', 'send', '-q', '-p', '/s/db/s1', '/s/db/s2']],
    ['receive', cmd.receive('/pool/snapshots/db'), ['btrfs', 'receive', '-q', '/pool/snapshots/db']],
  ];
  for (const [label, got, want] of cases) {
    it(label, function () {
      expect(got).to.deep.equal(want);
    });
  }
});
