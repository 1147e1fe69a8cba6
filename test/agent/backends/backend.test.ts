import { expect } from 'chai';
import {
  abilitiesOf,
  hasClones,
  hasSnapshots,
  hasStreams,
  hasUsage,
  requireClones,
  requireSnapshots,
  requireStreams,
  type Backend,
} from '../../../src/agent/backends/backend';
import { isFerryError } from '../../../src/errors';
import { plainBackend, withAbilities } from '../../support/plain-backend';

describe('backend abilities', function () {
  it('finds no optional ability on a core-only backend', function () {
    const b = plainBackend('directory');
    expect([hasSnapshots(b), hasClones(b), hasStreams(b), hasUsage(b)]).to.deep.equal([false, false, false, false]);
    expect(abilitiesOf(b)).to.deep.equal([]);
  });

  it('counts streams only with snapshots to send (a backend with send but no snapshots cannot move)', function () {
    const sendOnly = withAbilities(plainBackend('directory'), ['send', 'receive']);
    expect(hasStreams(sendOnly)).to.equal(false);
    const full = withAbilities(plainBackend('directory'), ['snapshot', 'send', 'receive', 'clone', 'usage']);
    expect(abilitiesOf(full)).to.deep.equal(['snapshots', 'clones', 'streams', 'usage']);
  });

  const cases: [string, (b: Backend) => unknown, RegExp][] = [
    ['requireStreams', (b) => requireStreams(b, 'db', 'move'), /cannot move volume db: its backend directory has no streams/],
    ['requireSnapshots', (b) => requireSnapshots(b, 'db', 'snapshot'), /cannot snapshot volume db: its backend directory has no snapshots/],
    ['requireClones', (b) => requireClones(b, 'db', 'clone'), /cannot clone volume db: its backend directory has no clones/],
  ];
  for (const [name, call, message] of cases) {
    it(`${name} refuses with INVALID_REQUEST naming the volume, the backend and the ability`, function () {
      try {
        call(plainBackend('directory'));
        expect.fail(`${name} accepted a backend without the ability`);
      } catch (err) {
        expect(isFerryError(err, 'INVALID_REQUEST'), String(err)).to.equal(true);
        expect((err as Error).message).to.match(message);
      }
    });
  }

  it('hands back the same backend when it has the ability', function () {
    const full = withAbilities(plainBackend('directory'), ['snapshot', 'send', 'receive', 'clone']);
    expect(requireStreams(full, 'db', 'move')).to.equal(full);
    expect(requireClones(full, 'db', 'clone')).to.equal(full);
  });
});
