import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SUPERBLOCK_PROBE_BYTES, detectFilesystem, ext4NeedsRecovery, parseFilefrag, parseLosetupNames } from '../../../../src/agent/backends/loop/parse';

// Captured on this machine with util-linux 2.38, e2fsprogs 1.47, xfsprogs 6.1 on Linux 6.18 (see VERSION.txt there).
const FIXTURES = join(__dirname, '../../../../../test/fixtures/loop');
const text = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const bytes = (name: string): Buffer => readFileSync(join(FIXTURES, name));

describe('loop parse, on captured output', function () {
  it('reads the loop device of an attached image from losetup --list --json, and none from an empty list', function () {
    expect(parseLosetupNames(text('losetup-associated.json'))).to.deep.equal(['/dev/loop4']);
    expect(parseLosetupNames(text('losetup-associated-none.json'))).to.deep.equal([]);
  });

  it('tells ext4 from xfs by the first bytes of fresh images made by mkfs', function () {
    expect(bytes('ext4-head.bin')).to.have.length(SUPERBLOCK_PROBE_BYTES);
    expect(detectFilesystem(bytes('ext4-head.bin'))).to.equal('ext4');
    expect(detectFilesystem(bytes('xfs-head.bin'))).to.equal('xfs');
    expect(ext4NeedsRecovery(bytes('ext4-head.bin')), 'a cleanly unmounted image').to.equal(false);
  });

  it('reads the extents of a real image from filefrag, with the unwritten tail flagged', function () {
    const extents = parseFilefrag(text('filefrag-image.txt'));
    expect(extents).to.have.length(6);
    expect(extents[0]).to.deep.equal({ logical: 0, physical: 93834969088, length: 98304, flags: [] });
    expect(extents[4]).to.deep.equal({ logical: 8458240, physical: 93885370368, length: 3145728, flags: [] });
    expect(extents[5]).to.deep.equal({ logical: 67043328, physical: 93820354560, length: 65536, flags: ['last', 'unwritten', 'eof'] });
  });
});
