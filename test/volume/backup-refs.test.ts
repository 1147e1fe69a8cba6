import { expect } from 'chai';
import { checkRestoring, parseCheckpointRef, parsePercent, validateBankName, validateCheckpointId } from '../../src/volume/backup-refs';
import { restoreCreateOptions, type RestoreSource } from '../../src/volume/restore-options';

describe('backup refs (pure): bank names, VOLUME@CHECKPOINT, restoring, percentages', function () {
  const bad = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return (err as { code: string }).code;
    }
    return 'ok';
  };

  for (const [name, code] of [
    ['main', 'ok'],
    ['b-2_x', 'ok'],
    ['a'.repeat(40), 'ok'],
    ['a'.repeat(41), 'INVALID_NAME'],
    ['Main', 'INVALID_NAME'],
    ['-x', 'INVALID_NAME'],
    ['', 'INVALID_NAME'],
    ['a/b', 'INVALID_NAME'],
  ] as const) {
    it(`bank name ${JSON.stringify(name)}: ${code}`, () => expect(bad(() => validateBankName(name))).to.equal(code));
  }

  for (const [text, want] of [
    ['db@latest', { volume: 'db', checkpoint: 'latest' }],
    ['db@20261202T101500Z-1a2b3c4d', { volume: 'db', checkpoint: '20261202T101500Z-1a2b3c4d' }],
    ['my.vol_1@latest', { volume: 'my.vol_1', checkpoint: 'latest' }],
    ['db', 'INVALID_REQUEST'],
    ['db@', 'INVALID_REQUEST'],
    ['@latest', 'INVALID_REQUEST'],
    ['db@yesterday', 'INVALID_NAME'],
    ['db@20261202T101500Z-1A2B3C4D', 'INVALID_NAME'],
    ['-db@latest', 'INVALID_NAME'],
  ] as const) {
    it(`checkpoint ref ${JSON.stringify(text)}`, () => {
      if (typeof want === 'string') expect(bad(() => parseCheckpointRef(text))).to.equal(want);
      else expect(parseCheckpointRef(text)).to.deep.equal(want);
    });
  }

  it('checkpoint ids and the restoring option', () => {
    expect(validateCheckpointId('latest')).to.equal('latest');
    expect(bad(() => validateCheckpointId(3))).to.equal('INVALID_NAME');
    expect(bad(() => checkRestoring('main/20261202T101500Z-1a2b3c4d'))).to.equal('ok');
    for (const v of ['main', 'main/latest', '/20261202T101500Z-1a2b3c4d', 'Main/20261202T101500Z-1a2b3c4d']) expect(bad(() => checkRestoring(v)), v).to.equal('INVALID_OPTION');
  });

  for (const [text, want] of [
    ['10%', 10],
    ['10', 10],
    [' 2.5 % ', 2.5],
    ['0%', 0],
    ['100%', 100],
    ['101%', 'INVALID_OPTION'],
    ['-1', 'INVALID_OPTION'],
    ['ten', 'INVALID_OPTION'],
    ['', 'INVALID_OPTION'],
  ] as const) {
    it(`--read-data ${JSON.stringify(text)}`, () => {
      if (typeof want === 'string') expect(bad(() => parsePercent(text))).to.equal(want);
      else expect(parsePercent(text)).to.equal(want);
    });
  }
});

describe('restore options (pure): a new volume from a checkpoint', function () {
  const cp = (o: Partial<RestoreSource>): RestoreSource => ({ volume: 'db', id: '20261202T101500Z-1a2b3c4d', backend: 'btrfs', dataBytes: 5 << 20, ...o });
  const R = 'main/20261202T101500Z-1a2b3c4d';
  const all = ['btrfs', 'loop', 'directory'];
  const cases: Array<[string, RestoreSource, Record<string, string>, string[], Record<string, string> | string]> = [
    ['the checkpoint backend when here', cp({}), {}, all, { backend: 'btrfs', restoring: R }],
    ['its size with a backend that enforces one', cp({ sizeBytes: 1 << 30 }), {}, all, { backend: 'btrfs', size: String(1 << 30), restoring: R }],
    ['the host default when its backend is not here', cp({ backend: 'zfs', sizeBytes: 1 << 30 }), {}, ['directory'], { backend: 'directory', restoring: R }],
    ['loop xfs as asked', cp({}), { backend: 'loop', size: '1G', fs: 'xfs' }, all, { backend: 'loop', size: '1G', fs: 'xfs', restoring: R }],
    ['a loop checkpoint keeps its size and fs', cp({ backend: 'loop', sizeBytes: 1 << 30, fs: 'xfs' }), {}, all, { backend: 'loop', size: String(1 << 30), fs: 'xfs', restoring: R }],
    ['fs dropped on a backend without it', cp({ backend: 'loop', sizeBytes: 1 << 30, fs: 'xfs' }), { backend: 'btrfs' }, all, { backend: 'btrfs', size: String(1 << 30), restoring: R }],
    ['size dropped on a backend that cannot enforce one', cp({ backend: 'loop', sizeBytes: 1 << 30, fs: 'ext4' }), { backend: 'directory' }, all, { backend: 'directory', restoring: R }],
    ['loop without a known size: refused, naming the data', cp({}), { backend: 'loop' }, all, 'INVALID_OPTION'],
  ];
  for (const [what, source, asked, here, want] of cases) {
    it(what, () => {
      if (typeof want === 'string') expect(() => restoreCreateOptions(source, asked, here, 'directory', R)).to.throw(/needs a size.*5\.0 MiB.*-o size=/);
      else expect(restoreCreateOptions(source, asked, here, 'directory', R)).to.deep.equal(want);
    });
  }
});
