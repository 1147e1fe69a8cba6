import { expect } from 'chai';
import { checkSpecFits, keepsReplica, resolveCreateOptions } from '../../src/volume/options';
import { loadConfig } from '../../src/config/config';
import { isFerryError } from '../../src/errors';
import type { SizeRules } from '../../src/agent/backends/backend';
import { BACKEND_KINDS } from '../../src/agent/backends/registry';

const config = loadConfig({
  overrides: {
    dataDir: '/tmp/ferry-unit',
    profiles: { fast: { backend: 'loop', fs: 'xfs', size: '1G' }, big: { size: '100G' }, gold: { policy: 'gold' } },
  },
});
const G = 2 ** 30;

describe('resolveCreateOptions', function () {
  const cases: [string, Record<string, string> | null, object][] = [
    ['null Opts get the defaults', null, { backend: 'btrfs', sizeBytes: undefined, fs: undefined }],
    ['size alone', { size: '10G' }, { backend: 'btrfs', sizeBytes: 10 * G }],
    ['loop gets the default fs', { backend: 'loop', size: '1G' }, { backend: 'loop', fs: 'ext4', sizeBytes: G }],
    ['loop xfs', { backend: 'loop', fs: 'xfs', size: '2GiB' }, { backend: 'loop', fs: 'xfs', sizeBytes: 2 * G }],
    ['a profile', { profile: 'fast' }, { backend: 'loop', fs: 'xfs', sizeBytes: G, profile: 'fast' }],
    ['explicit options win over the profile', { profile: 'fast', size: '2G' }, { backend: 'loop', fs: 'xfs', sizeBytes: 2 * G }],
    ['directory has no size', { backend: 'directory' }, { backend: 'directory', sizeBytes: undefined }],
    ['a replica policy', { replica: 'drop' }, { backend: 'btrfs', replica: 'drop' }],
    ['a protection policy', { policy: 'nightly' }, { backend: 'btrfs', policy: 'nightly' }],
    ["a profile's protection policy", { profile: 'gold' }, { backend: 'btrfs', policy: 'gold', profile: 'gold' }],
    ["an explicit policy over the profile's", { profile: 'gold', policy: 'nightly' }, { policy: 'nightly' }],
  ];
  for (const [label, opts, want] of cases) {
    it(label, function () {
      expect(resolveCreateOptions(opts, config)).to.include(want);
    });
  }
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown option names the valid ones', { sise: '1G' }, /unknown option "sise": valid options are size, backend, fs, profile, replica, policy, from, quiesce/],
    ['an unknown replica policy names the valid ones', { replica: 'maybe' }, /invalid replica "maybe": valid values are keep, drop/],
    ['an unknown backend names the valid ones', { backend: 'nosuch' }, new RegExp(`valid values are ${BACKEND_KINDS.join(', ')}`)],
    ['an unknown fs names the valid ones', { backend: 'loop', fs: 'ntfs' }, /valid values are ext4, xfs/],
    ['fs without loop', { fs: 'xfs' }, /applies to backend loop, lvm only/],
    ['an unknown profile names the valid ones', { profile: 'nope' }, /valid profiles are fast, big, gold/],
    ['a bad size', { size: '-5G' }, /invalid size/],
    ['a zero size', { size: '0' }, /larger than 0|invalid size/],
    ['a non-string value', { size: 5 }, /must be a string/],
  ];
  for (const [label, opts, msg] of bad) {
    it(`refuses ${label}`, function () {
      expect(() => resolveCreateOptions(opts, config))
        .to.throw(msg)
        .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
    });
  }
});

describe('resolveCreateOptions: policy (issue 7 item 3)', function () {
  it('policy= means none, over a profile that names one', function () {
    expect(resolveCreateOptions({ profile: 'gold', policy: '' }, config)).to.not.have.property('policy');
  });
  it('refuses a policy name that cannot be one, saying what a name is', function () {
    expect(() => resolveCreateOptions({ policy: 'Nightly!' }, config))
      .to.throw(/invalid policy name "Nightly!": use 1 to 40 characters of \[a-z0-9_-\]/)
      .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_NAME'));
  });
  it('a profile may name a policy; the config refuses a name that cannot be one', function () {
    expect(() => loadConfig({ overrides: { dataDir: '/tmp/ferry-unit', profiles: { bad: { policy: 'No Such' } } } })).to.throw(/policy/);
  });
});

describe('checkSpecFits', function () {
  const sized: SizeRules = { enforcesSize: true, requiresSize: false, minBytes: () => 16 * 2 ** 20 };
  const loop: SizeRules = { enforcesSize: true, requiresSize: true, minBytes: (s) => (s.fs === 'xfs' ? 300 * 2 ** 20 : 8 * 2 ** 20) };
  const dir: SizeRules = { enforcesSize: false, requiresSize: false, minBytes: () => 0 };
  const cap = { totalBytes: 32 * G, freeBytes: 30 * G };
  it('accepts a size within the pool', function () {
    checkSpecFits({ backend: 'btrfs', sizeBytes: 10 * G }, sized, cap);
  });
  it('refuses a size larger than the pool, saying how large the pool is', function () {
    expect(() => checkSpecFits({ backend: 'btrfs', sizeBytes: 64 * G }, sized, cap)).to.throw(/larger than the btrfs pool \(32.0 GiB\)/);
  });
  it('refuses a size below the backend minimum', function () {
    expect(() => checkSpecFits({ backend: 'loop', fs: 'xfs', sizeBytes: 64 * 2 ** 20 }, loop, cap)).to.throw(/minimum is 300.0 MiB/);
  });
  it('refuses a loop volume without a size', function () {
    expect(() => checkSpecFits({ backend: 'loop', fs: 'ext4' }, loop, cap)).to.throw(/needs a size/);
  });
  it('refuses a size on a backend that cannot enforce one', function () {
    expect(() => checkSpecFits({ backend: 'directory', sizeBytes: G }, dir, cap)).to.throw(/cannot enforce a size limit/);
  });
});

describe('keepsReplica', function () {
  const cases: [Record<string, string>, boolean, boolean][] = [
    [{}, true, true],
    [{}, false, false],
    [{ replica: 'keep' }, false, true],
    [{ replica: 'drop' }, true, false],
    [{ size: '1G' }, false, false],
  ];
  for (const [options, cluster, want] of cases) {
    it(`${JSON.stringify(options)} with the cluster's keepReplica ${cluster}: ${want ? 'keeps' : 'drops'}`, function () {
      expect(keepsReplica(options, cluster)).to.equal(want);
    });
  }
});
