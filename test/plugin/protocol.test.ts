import { expect } from 'chai';
import { isFerryError, type ErrorCode } from '../../src/errors';
import { decodeCreate, decodeMount, decodeName, type RequestBody } from '../../src/plugin/protocol';

/** Each decoder: a body, and the typed request it gives or the error code and text it throws. */
const CASES: [string, (b: RequestBody) => unknown, RequestBody, unknown | { code: ErrorCode; match: RegExp }][] = [
  ['Create with null Opts', decodeCreate, { Name: 'db', Opts: null }, { Name: 'db', Opts: {} }],
  ['Create without Opts', decodeCreate, { Name: 'db' }, { Name: 'db', Opts: {} }],
  ['Create with options', decodeCreate, { Name: 'db', Opts: { size: '1G' } }, { Name: 'db', Opts: { size: '1G' } }],
  ['Create with Opts that are not an object', decodeCreate, { Name: 'db', Opts: ['size=1G'] }, { code: 'INVALID_REQUEST', match: /Opts must be an object of strings/ }],
  ['Create with a value that is not a string', decodeCreate, { Name: 'db', Opts: { size: 5 } }, { code: 'INVALID_OPTION', match: /option size must be a string, got 5/ }],
  ['Create with a bad name', decodeCreate, { Name: '../x', Opts: null }, { code: 'INVALID_NAME', match: /invalid volume name/ }],
  ['Create without a name', decodeCreate, { Opts: null }, { code: 'INVALID_NAME', match: /empty/ }],
  ['Mount', decodeMount, { Name: 'db', ID: 'abc' }, { Name: 'db', ID: 'abc' }],
  ['Mount without an ID', decodeMount, { Name: 'db' }, { code: 'INVALID_REQUEST', match: /need a non-empty ID/ }],
  ['Mount with an empty ID', decodeMount, { Name: 'db', ID: '' }, { code: 'INVALID_REQUEST', match: /need a non-empty ID/ }],
  ['Mount with an ID that is not a string', decodeMount, { Name: 'db', ID: 7 }, { code: 'INVALID_REQUEST', match: /need a non-empty ID/ }],
  ['Mount with a bad name (named before the ID)', decodeMount, { Name: 'a/b' }, { code: 'INVALID_NAME', match: /invalid volume name/ }],
  ['a name', decodeName, { Name: 'db', Extra: 1 }, { Name: 'db' }],
  ['a name too long', decodeName, { Name: 'x'.repeat(300) }, { code: 'INVALID_NAME', match: /at most 128/ }],
];

describe('plugin protocol: Docker requests decoded once into typed values', function () {
  for (const [what, decode, body, want] of CASES) {
    const fails = typeof want === 'object' && want !== null && 'code' in want && 'match' in want;
    it(`${fails ? 'refuses' : 'decodes'} ${what}`, function () {
      if (!fails) {
        expect(decode(body)).to.deep.equal(want);
        return;
      }
      const { code, match } = want as { code: ErrorCode; match: RegExp };
      let thrown: unknown;
      try {
        decode(body);
      } catch (err) {
        thrown = err;
      }
      expect(isFerryError(thrown, code), `${what}: ${String(thrown)}`).to.equal(true);
      expect((thrown as Error).message).to.match(match);
    });
  }
});
