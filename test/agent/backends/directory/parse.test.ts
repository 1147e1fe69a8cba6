import { expect } from 'chai';
import * as cmd from '../../../../src/agent/backends/directory/commands';
import { mountsShowing, parseDiskUsage } from '../../../../src/agent/backends/directory/parse';
import { parseMountInfo } from '../../../../src/agent/mount-table';

// Captured from /proc/self/mountinfo on Debian 12 (kernel 6.x): a loop-backed ext4 pool at /tmp/p,
// a bind of one of its volumes at /tmp/m, a bind of a subdirectory at /tmp/m2, a tmpfs with a
// directory of the same relative path, and a second mount of the whole pool at /srv/p.
const MOUNTINFO = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 27 0:25 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw
43 30 7:0 / /tmp/p rw,relatime - ext4 /dev/loop0 rw
44 30 7:0 /directory/volumes/v1 /tmp/m rw,relatime - ext4 /dev/loop0 rw
45 30 7:0 /directory/volumes/v1/sub /tmp/m2 ro,relatime - ext4 /dev/loop0 rw
46 30 7:0 /directory/volumes/v10 /tmp/m3 rw,relatime - ext4 /dev/loop0 rw
47 27 7:0 / /srv/p rw,relatime - ext4 /dev/loop0 rw
48 30 0:30 /directory/volumes/v1 /tmp/other rw,relatime - tmpfs tmpfs rw
`;

describe('directory backend: parsers and commands', function () {
  const table = parseMountInfo(MOUNTINFO);

  it('finds binds of a volume and of its subdirectories, not of a volume with a longer name', function () {
    expect(mountsShowing(table, '/tmp/p/directory/volumes/v1').map((e) => e.mountPoint)).to.deep.equal(['/tmp/m', '/tmp/m2']);
    expect(mountsShowing(table, '/tmp/p/directory/volumes/v2')).to.deep.equal([]);
  });

  it('finds the same binds through another mount of the pool', function () {
    expect(mountsShowing(table, '/srv/p/directory/volumes/v10').map((e) => e.mountPoint)).to.deep.equal(['/tmp/m3']);
  });

  it('finds a mount on the volume directory itself or below it', function () {
    const t = parseMountInfo(`${MOUNTINFO}49 43 0:31 / /tmp/p/directory/volumes/v2/x rw - tmpfs tmpfs rw\n`);
    expect(mountsShowing(t, '/tmp/p/directory/volumes/v2').map((e) => e.mountPoint)).to.deep.equal(['/tmp/p/directory/volumes/v2/x']);
  });

  it('reads du --null output, keeping paths with spaces', function () {
    expect(parseDiskUsage('14336\t/p/volumes/a\x004096\t/p/volumes/b c\x00')).to.deep.equal(
      new Map([
        ['/p/volumes/a', 14336],
        ['/p/volumes/b c', 4096],
      ]),
    );
    expect(parseDiskUsage('')).to.deep.equal(new Map());
  });

  describe('argv', function () {
    it('copies trees with everything preserved, never taking a path for an option', function () {
      expect(cmd.copyTree('-x', '/d')).to.deep.equal(['cp', '-a', '--reflink=auto', '--', '-x', '/d']);
    });
    it('puts tar list options before --files-from (they are positional)', function () {
      const argv = cmd.tarCreate('/snap');
      const from = argv.indexOf('--files-from=-');
      expect(from).to.equal(argv.length - 1);
      for (const opt of ['--no-recursion', '--null', '--verbatim-files-from']) expect(argv.indexOf(opt)).to.be.within(0, from);
      expect(argv).to.include.members(['--numeric-owner', '--format=posix', '--xattrs', '--acls', '--sparse', '--directory=/snap']);
    });
    it('extracts keeping owners and modes', function () {
      expect(cmd.tarExtract('/t')).to.include.members(['--extract', '--same-owner', '--same-permissions', '--numeric-owner', '--directory=/t']);
    });
  });
});
