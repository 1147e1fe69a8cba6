import { expect } from 'chai';
import { needsOf } from '../../src/agent/backends/descriptor';
import { loopBackend } from '../../src/agent/backends/loop/descriptor';
import { BACKENDS } from '../../src/agent/backends/registry';
import {
  apiCheck,
  clockCheck,
  controlCheck,
  dockerdCheck,
  peerCheck,
  pluginActivatedCheck,
  pluginSocketCheck,
  poolCheck,
  staleLoops,
  staleLoopsCheck,
  staleMounts,
  staleMountsCheck,
  toolsCheck,
  bankToolsCheck,
} from '../../src/doctor/checks';
import { backendToolChecks } from '../../src/doctor/host-probes';
import { doctorCheckShape } from '../../src/wire/shapes';
import type { DoctorCheck } from '../../src/wire/records';

const GiB = 1024 ** 3;

/** [what, the check's answer, expected ok, a fragment of the problem, a fragment of the fix]. */
const TABLE: [string, DoctorCheck, boolean, string?, string?][] = [
  ['tools all there', toolsCheck({ label: 'btrfs', missingTools: [], missingFilesystems: [], required: true }), true],
  ['tools missing, backend used', toolsCheck({ label: 'btrfs', missingTools: ['mkfs.btrfs'], missingFilesystems: ['btrfs'] , required: true }), false, 'lacks the command mkfs.btrfs, the btrfs filesystem', 'modprobe btrfs'],
  ['tools missing, backend unused', toolsCheck({ label: 'loop:fs=xfs', missingTools: ['mkfs.xfs'], missingFilesystems: [], required: false }), true],
  ['bank tools all there', bankToolsCheck({ missingTools: [], banks: 2 }), true],
  ['bank tools missing, a bank added', bankToolsCheck({ missingTools: ['getfattr', 'setfattr'], banks: 1 }), false, 'lacks getfattr, setfattr', 'apt-get install attr'],
  ['bank tools missing, no bank yet', bankToolsCheck({ missingTools: ['setfattr'], banks: 0 }), true],
  ['dockerd answers', dockerdCheck('/run/docker.sock', { version: '27.0' }), true],
  ['dockerd silent', dockerdCheck('/run/docker.sock', { error: 'ECONNREFUSED' }), false, 'does not answer at /run/docker.sock', 'start it'],
  ['legacy plugin activated', pluginActivatedCheck({ driver: 'ferry', volumeDrivers: ['local', 'ferry'], managed: [] }), true],
  ['managed plugin enabled', pluginActivatedCheck({ driver: 'ferry', volumeDrivers: ['local'], managed: [{ name: '127.0.0.1:5000/ferry:0.2', enabled: true }] }), true],
  ['managed plugin disabled', pluginActivatedCheck({ driver: 'ferry', volumeDrivers: ['local'], managed: [{ name: 'ferry:latest', enabled: false }] }), false, 'disabled', 'docker plugin enable ferry:latest'],
  ['plugin not activated', pluginActivatedCheck({ driver: 'ferry', volumeDrivers: ['local'], managed: [] }), false, 'has not activated the volume driver ferry', 'docker volume ls'],
  ['plugin socket answers', pluginSocketCheck('/run/docker/plugins/ferry.sock', { exists: true, implements: ['VolumeDriver'] }), true],
  ['plugin socket missing', pluginSocketCheck('/run/docker/plugins/ferry.sock', { exists: false }), false, 'is missing', 'restart ferry'],
  ['plugin socket dead', pluginSocketCheck('/p.sock', { exists: true, error: 'ECONNREFUSED' }), false, 'does not answer', 'restart ferry'],
  ['plugin socket of another driver', pluginSocketCheck('/p.sock', { exists: true, implements: ['NetworkDriver'] }), false, 'not as a volume driver', 'another program'],
  ['api answers', apiCheck('/run/ferry/ferry.sock', { ok: true }), true],
  ['api silent', apiCheck('/run/ferry/ferry.sock', { ok: false, error: 'ENOENT' }), false, 'not answering', 'ferry serve'],
  ['pool roomy', poolCheck({ kind: 'btrfs', ok: true, freeBytes: 20 * GiB, totalBytes: 32 * GiB, inUse: true }), true],
  ['pool nearly full', poolCheck({ kind: 'btrfs', ok: true, freeBytes: 1 * GiB, totalBytes: 32 * GiB, inUse: true }), false, 'nearly full: 1.0 GiB free of 32.0 GiB', 'ferry volume rm NAME'],
  ['pool nearly full, unused', poolCheck({ kind: 'loop', ok: true, freeBytes: 0, totalBytes: GiB, inUse: false }), false, 'nearly full'],
  ['pool down, used', poolCheck({ kind: 'btrfs', ok: false, error: 'no mkfs.btrfs', inUse: true }), false, 'unavailable: no mkfs.btrfs', 'tools:btrfs'],
  ['pool down, unused', poolCheck({ kind: 'btrfs', ok: false, error: 'no mkfs.btrfs', inUse: false }), true],
  ['control in process', controlCheck({ url: null, ok: true }), true],
  ['control answers', controlCheck({ url: 'http://c:7400', ok: true }), true],
  ['control refuses the token', controlCheck({ url: 'http://c:7400', ok: false, code: 'UNAUTHORIZED', tokenFile: '/etc/ferry/token' }), false, 'refuses', '/etc/ferry/token'],
  ['control stopped', controlCheck({ url: 'http://c:7400', ok: false, code: 'NODE_UNREACHABLE', error: 'ECONNREFUSED' }), false, 'unreachable: ECONNREFUSED', 'start ferry control'],
  ['clock same process', clockCheck({ url: null, skewMs: null }), true],
  ['clock close', clockCheck({ url: 'http://c:7400', skewMs: 800 }), true],
  ['clock behind', clockCheck({ url: 'http://c:7400', skewMs: 9000 }), false, '9.0 s behind', 'NTP'],
  ['clock ahead', clockCheck({ url: 'http://c:7400', skewMs: -7000 }), false, '7.0 s ahead of', 'NTP'],
  ['clock unknown', clockCheck({ url: 'http://c:7400', skewMs: null }), false, 'cannot compare', 'control check'],
  ['peer answers', peerCheck({ name: 'h2', address: '10.0.0.2:7401', up: true, ok: true }), true],
  ['peer blocked', peerCheck({ name: 'h2', address: '10.0.0.2:7401', up: true, ok: false, error: 'timed out' }), false, 'cannot open a transfer connection to h2', 'TCP 7401'],
  ['peer down', peerCheck({ name: 'h2', address: '10.0.0.2:7401', up: false, ok: false, error: 'ECONNREFUSED' }), false, 'h2 is down', 'start ferry agent on h2'],
  ['peer never registered', peerCheck({ name: 'h2', address: null, up: false, ok: false }), false, 'no transfer address', 'start ferry agent on h2'],
  ['no stale mounts', staleMountsCheck('/var/lib/ferry/mounts', []), true],
  ['stale mounts', staleMountsCheck('/m', ['/m/a']), false, '/m/a', 'umount /m/a'],
  ['no stale loops', staleLoopsCheck([]), true],
  ['stale loops', staleLoopsCheck([{ device: '/dev/loop7', backingFile: '/d/loop/images/x.img' }]), false, '/dev/loop7', 'losetup -d /dev/loop7'],
];

describe('ferry doctor: the decisions', function () {
  for (const [what, c, ok, problem, fix] of TABLE) {
    it(`${what}: ${ok ? 'passes' : 'fails, saying what to run'}`, function () {
      expect(doctorCheckShape.parse(c)).to.deep.equal(c);
      expect(c.ok).to.equal(ok);
      if (ok) {
        expect(c.problem).to.equal(null);
        expect(c.fix).to.equal(null);
        return;
      }
      expect(c.problem).to.be.a('string').and.include(problem);
      expect(c.fix).to.be.a('string').and.not.equal('');
      if (fix) expect(c.fix).to.include(fix);
    });
  }

  it('finds mounts under the mount root that no mounted volume owns, and nothing outside it', function () {
    const table = ['/', '/var/lib/ferry/mounts/a', '/var/lib/ferry/mounts/b', '/var/lib/ferry/mountsX/c', '/var/lib/ferry/mounts/b', '/other/d'];
    expect(staleMounts('/var/lib/ferry/mounts', table, ['a'])).to.deep.equal(['/var/lib/ferry/mounts/b']);
    expect(staleMounts('/var/lib/ferry/mounts/', table, ['a', 'b'])).to.deep.equal([]);
  });

  it('finds loop devices on ferry files that nothing mounts, or whose file is gone', function () {
    const devices = [
      { device: '/dev/loop0', backingFile: '/var/lib/ferry/btrfs/pool.img' },
      { device: '/dev/loop1', backingFile: '/var/lib/ferry/loop/images/a.img' },
      { device: '/dev/loop2', backingFile: '/var/lib/ferry/loop/images/b.img' },
      { device: '/dev/loop3', backingFile: '/var/lib/ferry/loop/images/c.img (deleted)' },
      { device: '/dev/loop4', backingFile: '/home/me/other.img' },
      { device: '/dev/loop5', backingFile: '/var/lib/ferryX/x.img' },
    ];
    const stale = staleLoops(devices, ['/var/lib/ferry'], ['/dev/loop0', '/dev/loop1', '/dev/loop3', '/dev/sda1']);
    expect(stale.map((d) => d.device)).to.deep.equal(['/dev/loop2', '/dev/loop3']);
  });

  it('asks every backend (and each option value) for what it needs, from its descriptor', function () {
    const missingTool = 'mkfs.xfs';
    const checks = backendToolChecks(new Set(['btrfs', 'loop', 'loop:fs=xfs']), { hasTool: (t) => t !== missingTool, kernelHasFilesystem: (f) => f !== 'btrfs' });
    const byName = new Map(checks.map((c) => [c.check, c]));
    for (const d of BACKENDS) expect(byName.has(`tools:${d.kind}`), d.kind).to.equal(true);
    expect(byName.get('tools:btrfs')!.ok).to.equal(false);
    expect(byName.get('tools:btrfs')!.fix).to.include('modprobe btrfs');
    expect(byName.get('tools:loop:fs=xfs')!.ok).to.equal(false);
    expect(byName.get('tools:loop:fs=xfs')!.problem).to.include('mkfs.xfs');
    expect(byName.get('tools:loop:fs=ext4')!.ok).to.equal(true);
    expect(byName.get('tools:directory')!.ok).to.equal(true);
    // Not required here: reported, not failed.
    const relaxed = backendToolChecks(new Set(['directory']), { hasTool: (t) => t !== missingTool, kernelHasFilesystem: (f) => f !== 'btrfs' });
    expect(relaxed.every((c) => c.ok)).to.equal(true);
    expect(relaxed.find((c) => c.check === 'tools:btrfs')!.detail).to.include('not usable here');
  });

  it("a loop volume's needs are its base needs plus its filesystem's", function () {
    const n = needsOf(loopBackend, { fs: 'xfs' });
    expect(n.tools).to.include.members(['losetup', 'mkfs.xfs']);
    expect(n.tools).to.not.include('mkfs.ext4');
    expect(n.filesystems).to.deep.equal(['xfs']);
  });
});
