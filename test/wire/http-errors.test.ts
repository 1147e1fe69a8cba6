import { expect } from 'chai';
import { FerryError, type ErrorCode } from '../../src/errors';
import { errorFromBody, errorResponse, sendError } from '../../src/wire/http-errors';

/** One code of each kind, and the status it travels with. */
const STATUSES: [ErrorCode, number][] = [
  ['VOLUME_NOT_FOUND', 404],
  ['INVALID_NAME', 400],
  ['VOLUME_IN_USE', 409],
  ['NODE_UNREACHABLE', 503],
  ['UNAUTHORIZED', 401],
  ['INTERNAL', 500],
];

describe('FerryError <-> HTTP, both directions in one module', function () {
  for (const [code, status] of STATUSES) {
    it(`${code} travels as ${status} and comes back as the same code and message`, function () {
      const r = errorResponse(new FerryError(code, `what happened to ${code}`));
      expect(r.status).to.equal(status);
      const back = errorFromBody(JSON.parse(JSON.stringify(r.body)));
      expect(back).to.be.instanceOf(FerryError);
      expect(back!.code).to.equal(code);
      expect(back!.message).to.equal(`what happened to ${code}`);
    });
  }

  it('answers anything thrown as an internal error, and sends it on a response', function () {
    const sent: { status?: number; body?: unknown } = {};
    sendError({ status: (s) => ((sent.status = s), { json: (b) => (sent.body = b) }) }, new Error('boom'));
    expect(sent.status).to.equal(500);
    expect(errorFromBody(sent.body)!.message).to.equal('internal error: boom');
  });

  it('finds no error in a body that carries none', function () {
    for (const body of [{ result: 1 }, null, [], { error: 'text' }, { error: { message: 'no code' } }]) expect(errorFromBody(body)).to.equal(undefined);
  });
});
