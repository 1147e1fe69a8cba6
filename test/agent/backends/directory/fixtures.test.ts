import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountsShowing, parseDiskUsage } from '../../../../src/agent/backends/directory/parse';
import { parseMountInfo } from '../../../../src/agent/mount-table';

// Captured on this machine with coreutils 9.1 on Linux 6.18 (see VERSION.txt there); the source tree, not dist/.
const FIXTURES = join(__dirname, '../../../../../test/fixtures/directory');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

describe('directory parse, on captured output', function () {
  it('reads du --summarize --bytes --null of three volumes (one empty)', function () {
    expect([...parseDiskUsage(fixture('du-summarize.bin'))]).to.deep.equal([
      ['pool/volumes/db', 3004096],
      ['pool/volumes/web.1', 4099],
      ['pool/volumes/empty', 4096],
    ]);
  });

  it('finds the bind mount of a volume directory in a real mountinfo, and none for another volume', function () {
    const table = parseMountInfo(fixture('mountinfo-bind.txt'));
    expect(mountsShowing(table, '/var/lib/ferry/directory/pool/volumes/db').map((e) => e.mountPoint)).to.deep.equal(['/var/lib/ferry/mounts/db']);
    expect(mountsShowing(table, '/var/lib/ferry/directory/pool/volumes/web.1')).to.deep.equal([]);
  });
});
