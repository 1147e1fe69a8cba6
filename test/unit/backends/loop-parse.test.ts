import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cmd from '../../../src/agent/backends/loop/commands';
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
} from '../../../src/agent/backends/loop/files';
import { detectFilesystem, ext4NeedsRecovery, imageEntryName, parseLosetupNames } from '../../../src/agent/backends/loop/parse';

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
