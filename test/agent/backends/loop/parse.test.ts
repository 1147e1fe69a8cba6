import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cmd from '../../../../src/agent/backends/loop/commands';
import { isFerryError } from '../../../../src/errors';
import {
  TEMP_PREFIX,
  nextStampMs,
  oldestFirst,
  publishFileNoReplace,
  readStamped,
  removeStaleTemps,
  removeTree,
  stampNewest,
  tempPath,
} from '../../../../src/agent/backends/files';
import {
  detectFilesystem,
  ext4NeedsRecovery,
  imageEntryName,
  imageSpec,
  mergeRanges,
  parseFilefrag,
  parseLosetupNames,
  rangesToCompare,
  subtractRanges,
  type Extent,
} from '../../../../src/agent/backends/loop/parse';

describe('loop backend: parsers and commands', function () {
  describe('parseLosetupNames (util-linux 2.38 output)', function () {
    const cases: [string, string, string[]][] = [
      ['one device', '{\n   "loopdevices": [\n      {\n         "name": "/dev/loop0"\n      }\n   ]\n}\n', ['/dev/loop0']],
      ['no device', '{\n   "loopdevices": [\n\n   ]\n}\n', []],
      ['nothing printed (older util-linux)', '', []],
      ['two devices', '{"loopdevices":[{"name":"/dev/loop3"},{"name":"/dev/loop12"}]}', ['/dev/loop3', '/dev/loop12']],
    ];
    for (const [label, out, want] of cases) it(label, () => expect(parseLosetupNames(out)).to.deep.equal(want));
  });

  describe('imageSpec', function () {
    const MiB = 1024 * 1024;
    it('defaults to ext4 and rounds the size down to 4 KiB', function () {
      expect(imageSpec('v', { sizeBytes: 64 * MiB + 100 })).to.deep.equal({ fs: 'ext4', sizeBytes: 64 * MiB });
      expect(imageSpec('v', { fs: 'xfs', sizeBytes: 300 * MiB })).to.deep.equal({ fs: 'xfs', sizeBytes: 300 * MiB });
    });
    const bad: [string, object][] = [
      ['no size', {}],
      ['an ext4 image below 8 MiB', { sizeBytes: 8 * MiB - 1 }],
      ['an xfs image below 300 MiB', { fs: 'xfs', sizeBytes: 299 * MiB }],
      ['an unknown filesystem', { fs: 'btrfs', sizeBytes: 1024 * MiB }],
    ];
    for (const [label, spec] of bad) {
      it(`refuses ${label} with INVALID_OPTION`, function () {
        expect(() => imageSpec('v', spec)).to.throw().that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
      });
    }
  });

  describe('parseFilefrag (e2fsprogs 1.47, -v -e -s -b1)', function () {
    // Captured: an xfs image reflinked from another on an xfs pool, then two blocks rewritten.
    const XFS_REFLINKED = `Filesystem type is: 58465342
File size of pool/b.img is 314572800 (314572800 blocks of 1 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..  131071:   67207168..  67338239: 131072:             shared
   1:  4096000.. 4104191:   67543040..  67551231:   8192:   71303168:
   2: 157315072..224419839:     102400..  67207167: 67104768:             unwritten
   3: 314441728..314572799:   67411968..  67543039: 131072:             last,shared,eof
pool/b.img: 5 extents found
`;
    // Captured on ext4: physical offsets wider than their column run into the colon before them.
    const EXT4_WIDE = `Filesystem type is: ef53
File size of a.img is 104857600 (104857600 blocks of 1 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:    40960..   53247: 104564039680..104564051967:  12288:      40960:
   1: 52428800..53477375: 104558755840..104559804415: 1048576: 104616427520: last,unwritten
a.img: 2 extents found
`;
    it('reads extents with and without the expected column and flags', function () {
      expect(parseFilefrag(XFS_REFLINKED)).to.deep.equal([
        { logical: 0, physical: 67207168, length: 131072, flags: ['shared'] },
        { logical: 4096000, physical: 67543040, length: 8192, flags: [] },
        { logical: 157315072, physical: 102400, length: 67104768, flags: ['unwritten'] },
        { logical: 314441728, physical: 67411968, length: 131072, flags: ['last', 'shared', 'eof'] },
      ]);
      expect(parseFilefrag(EXT4_WIDE)).to.deep.equal([
        { logical: 40960, physical: 104564039680, length: 12288, flags: [] },
        { logical: 52428800, physical: 104558755840, length: 1048576, flags: ['last', 'unwritten'] },
      ]);
    });
    it('reads nothing from output without a table', function () {
      expect(parseFilefrag('Filesystem type is: ef53\nFile size of x is 0 (0 blocks of 1 bytes)\nx: 0 extents found\n')).to.deep.equal([]);
    });
  });

  describe('ranges to compare', function () {
    const x = (logical: number, physical: number, length: number, ...flags: string[]): Extent => ({ logical, physical, length, flags });
    const P = 4096;

    it('merges and subtracts ranges', function () {
      expect(mergeRanges([[10, 20], [0, 5], [5, 8], [19, 30], [40, 40]])).to.deep.equal([[0, 8], [10, 30]]);
      expect(subtractRanges([[0, 100], [200, 300]], [[10, 20], [90, 210], [250, 260]])).to.deep.equal([[0, 10], [20, 90], [210, 250], [260, 300]]);
      expect(subtractRanges([[0, 100]], [])).to.deep.equal([[0, 100]]);
    });

    it('without a base: the data extents, not holes or unwritten ones, aligned to pages', function () {
      expect(rangesToCompare(100 * P, [x(0, 1000 * P, 2 * P), x(10 * P + 100, 5000 * P, 50), x(20 * P, 9000 * P, 5 * P, 'unwritten')], undefined, P)).to.deep.equal([
        [0, 2 * P],
        [10 * P, 11 * P],
      ]);
    });

    it('with a base: skips blocks both files share on disk, compares everything else that holds data in either', function () {
      const base = [x(0, 1000 * P, 10 * P, 'shared'), x(50 * P, 3000 * P, 2 * P)];
      // The image shares 0..4 and 6..10 with the base; 4..6 were rewritten elsewhere; 50..52 are a hole now.
      const image = [x(0, 1000 * P, 4 * P, 'shared'), x(4 * P, 7000 * P, 2 * P), x(6 * P, 1006 * P, 4 * P, 'shared')];
      expect(rangesToCompare(100 * P, image, base, P)).to.deep.equal([
        [4 * P, 6 * P],
        [50 * P, 52 * P],
      ]);
    });

    it('does not trust equal addresses of compressed or unplaced extents', function () {
      const base = [x(0, 1000 * P, 4 * P, 'encoded')];
      const image = [x(0, 1000 * P, 4 * P, 'encoded')];
      expect(rangesToCompare(4 * P, image, base, P)).to.deep.equal([[0, 4 * P]]);
    });

    it('clips to the image size', function () {
      expect(rangesToCompare(3 * P + 10, [x(0, 0, 8 * P)], undefined, P)).to.deep.equal([[0, 3 * P + 10]]);
    });
  });

  describe('superblock probes', function () {
    const head = () => Buffer.alloc(2048);
    it('finds xfs by its magic at byte 0', function () {
      const h = head();
      h.write('XFSB', 0, 'latin1');
      expect(detectFilesystem(h)).to.equal('xfs');
    });
    it('finds ext4 by its magic at byte 1080, and its recovery flag', function () {
      const h = head();
      h.writeUInt16LE(0xef53, 1080);
      expect(detectFilesystem(h)).to.equal('ext4');
      expect(ext4NeedsRecovery(h)).to.equal(false);
      h.writeUInt32LE(0x4 | 0x40, 1024 + 0x60);
      expect(ext4NeedsRecovery(h)).to.equal(true);
    });
    it('finds nothing in zeros or a short buffer', function () {
      expect(detectFilesystem(head())).to.equal(undefined);
      expect(detectFilesystem(Buffer.from('XF'))).to.equal(undefined);
    });

    // mkfs works on a plain file without root; this checks the probes against the real tools.
    for (const fs of ['ext4', 'xfs'] as const) {
      it(`recognizes a real ${fs} image`, function () {
        const tool = fs === 'xfs' ? 'mkfs.xfs' : 'mkfs.ext4';
        if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`this test needs ${tool}: install ${fs === 'xfs' ? 'xfsprogs' : 'e2fsprogs'}`);
        const dir = mkdtempSync(join(tmpdir(), 'ferry-unit-mkfs-'));
        try {
          const image = join(dir, 'a.img');
          writeFileSync(image, '');
          truncateSync(image, 300 * 1024 * 1024);
          const r = spawnSync(cmd.mkfs(fs, image)[0], cmd.mkfs(fs, image).slice(1), { encoding: 'utf8' });
          expect(r.status, r.stderr).to.equal(0);
          const h = readFileSync(image).subarray(0, 2048);
          expect(detectFilesystem(h)).to.equal(fs);
          if (fs === 'ext4') expect(ext4NeedsRecovery(h)).to.equal(false);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });

  it('maps image file names to dataset names, skipping temps and strays', function () {
    expect(['db.img', 'a.b.img', `${TEMP_PREFIX}create-db-12ab.img`, '.img', 'notes.txt', 'img'].map(imageEntryName)).to.deep.equal([
      'db',
      'a.b',
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  describe('argv', function () {
    it('formats ext4 without reserved blocks, 4 KiB blocks, lazily', function () {
      expect(cmd.mkfs('ext4', '/p/i.img')).to.deep.equal(['mkfs.ext4', '-q', '-F', '-b', '4096', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', '/p/i.img']);
    });
    it('formats xfs forcibly and quietly', function () {
      expect(cmd.mkfs('xfs', '/p/i.img')).to.deep.equal(['mkfs.xfs', '-q', '-f', '/p/i.img']);
    });
    it('copies images with reflinks or sparsely, never taking a path for an option', function () {
      expect(cmd.copyImage('-a', '/b')).to.deep.equal(['cp', '--reflink=auto', '--sparse=always', '--', '-a', '/b']);
    });
    it('asks losetup for JSON', function () {
      expect(cmd.losetupAssociated('/p/i.img')).to.deep.equal(['losetup', '--list', '--json', '--output', 'NAME', '--associated', '/p/i.img']);
    });
  });

  describe('snapshot stamps', function () {
    it('uses the clock when it is ahead of every stamp', function () {
      expect(nextStampMs(5_000, [1_000_000_000n, 2_000_000_000n])).to.equal(5_000);
    });
    it('stays after the newest stamp when the clock stepped back or stood still', function () {
      expect(nextStampMs(1_000, [5_000_000_000n])).to.equal(5_001);
      // A stamp read back slightly below its whole millisecond still counts as that millisecond.
      expect(nextStampMs(1_000, [4_999_999_800n])).to.equal(5_001);
    });
    it('orders by stamp, not by name', function () {
      expect(oldestFirst([{ name: 'a', stampNs: 3n }, { name: 'z', stampNs: 1n }, { name: 'm', stampNs: 2n }])).to.deep.equal(['z', 'm', 'a']);
    });

    it('stamps files on disk so that they list oldest first even when made within one millisecond', async function () {
      const dir = mkdtempSync(join(tmpdir(), 'ferry-unit-stamps-'));
      try {
        for (const name of ['c', 'a', 'b', 'd']) {
          const tmp = tempPath(dir, 'snap', name, '.img');
          writeFileSync(tmp, name);
          await stampNewest(tmp, dir, imageEntryName, 1_000_000);
          expect(await publishFileNoReplace(tmp, join(dir, `${name}.img`))).to.equal(true);
        }
        expect(oldestFirst(await readStamped(dir, imageEntryName))).to.deep.equal(['c', 'a', 'b', 'd']);
        // Publishing over an existing name is refused and leaves no temp behind.
        const tmp = tempPath(dir, 'snap', 'a', '.img');
        writeFileSync(tmp, 'again');
        expect(await publishFileNoReplace(tmp, join(dir, 'a.img'))).to.equal(false);
        expect(readFileSync(join(dir, 'a.img'), 'utf8')).to.equal('a');
        expect(readdirSync(dir).sort()).to.deep.equal(['a.img', 'b.img', 'c.img', 'd.img']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('removes trees at once and cleans temp leftovers', async function () {
      const dir = mkdtempSync(join(tmpdir(), 'ferry-unit-remove-'));
      try {
        await mkdir(join(dir, 'snap/x'), { recursive: true });
        await removeTree(join(dir, 'snap'), dir, 'snap');
        await removeTree(join(dir, 'snap'), dir, 'snap');
        await mkdir(join(dir, `${TEMP_PREFIX}receive-s1-0000`));
        writeFileSync(join(dir, 'keep.img'), '');
        expect(await removeStaleTemps(dir)).to.equal(1);
        expect(readdirSync(dir)).to.deep.equal(['keep.img']);
        expect(statSync(join(dir, 'keep.img')).isFile()).to.equal(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
