import { expect } from 'chai';
import { formatSize, parseSize } from '../../src/volume/size';
import { isFerryError } from '../../src/errors';

describe('parseSize', function () {
  const good: [string, number][] = [
    ['1048576', 1048576],
    ['64M', 64 * 2 ** 20],
    ['64m', 64 * 2 ** 20],
    ['64MiB', 64 * 2 ** 20],
    ['64MB', 64 * 2 ** 20],
    ['10G', 10 * 2 ** 30],
    ['10GiB', 10 * 2 ** 30],
    ['1.5G', 1.5 * 2 ** 30],
    ['2T', 2 * 2 ** 40],
    ['512k', 512 * 1024],
    ['512KiB', 512 * 1024],
    [' 3 G ', 3 * 2 ** 30],
  ];
  for (const [text, bytes] of good) {
    it(`reads ${JSON.stringify(text)} as ${bytes} bytes`, function () {
      expect(parseSize(text)).to.equal(bytes);
    });
  }
  const bad = ['', '0', '0G', '-1G', 'abc', '10X', '10 GiBs', '1e9', 'G', '10G10', '9999999999T'];
  for (const text of bad) {
    it(`refuses ${JSON.stringify(text)} with INVALID_OPTION`, function () {
      expect(() => parseSize(text)).to.throw().that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
    });
  }
  it('says what a valid size looks like', function () {
    expect(() => parseSize('lots')).to.throw(/k, M, G or T/);
  });
});

describe('formatSize', function () {
  it('formats binary units', function () {
    expect(formatSize(512)).to.equal('512 B');
    expect(formatSize(64 * 2 ** 20)).to.equal('64.0 MiB');
    expect(formatSize(1.5 * 2 ** 30)).to.equal('1.5 GiB');
  });
});
