import { expect } from 'chai';
import { validateVolumeName } from '../../src/volume/names';
import { isFerryError } from '../../src/errors';

describe('validateVolumeName', function () {
  for (const name of ['db', 'my-db_1.data', 'A1', '0x', 'a'.repeat(128)]) {
    it(`accepts ${name.slice(0, 20)}`, function () {
      expect(validateVolumeName(name)).to.equal(name);
    });
  }
  const bad: [unknown, RegExp][] = [
    ['../x', /invalid volume name/],
    ['a/b', /invalid volume name/],
    ['', /empty/],
    ['x', /at least 2/],
    ['-db', /starting with a letter or digit/],
    ['.hidden', /starting/],
    ['db name', /invalid/],
    ['a'.repeat(300), /300 characters/],
    [undefined, /empty/],
    [42, /empty/],
  ];
  for (const [name, msg] of bad) {
    it(`refuses ${JSON.stringify(name)?.slice(0, 20)}`, function () {
      expect(() => validateVolumeName(name))
        .to.throw(msg)
        .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_NAME'));
    });
  }
});
