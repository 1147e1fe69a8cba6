import { expect } from 'chai';
import { parseMountInfo } from '../../src/agent/mount-table';

describe('parseMountInfo', function () {
  const text = [
    '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '90 22 7:0 /volumes/db /var/lib/ferry/mounts/db rw,relatime shared:50 - btrfs /dev/loop0 rw,space_cache=v2,subvolid=257,subvol=/volumes/db',
    '91 22 7:1 / /var/lib/ferry/mounts/with\\040space rw - ext4 /dev/loop1 rw',
    '92 22 0:50 / /mnt/opt rw shared:7 master:2 - tmpfs tmpfs rw',
    'garbage line',
    '',
  ].join('\n');
  it('reads mount point, root, type and source, unescaping octal', function () {
    const t = parseMountInfo(text);
    expect(t).to.have.length(4);
    expect(t[1]).to.deep.include({ root: '/volumes/db', mountPoint: '/var/lib/ferry/mounts/db', fsType: 'btrfs', source: '/dev/loop0' });
    expect(t[2].mountPoint).to.equal('/var/lib/ferry/mounts/with space');
    expect(t[3]).to.deep.include({ fsType: 'tmpfs', mountPoint: '/mnt/opt' });
  });
});
