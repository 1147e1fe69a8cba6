import { expect } from 'chai';
import { movePollMs } from '../../src/cli/main';
import type { MoveState } from '../../src/wire/records';

describe('ferry volume move: how often the CLI asks about its move', () => {
  const cases: [MoveState, number][] = [
    ['precopy', 250],
    ['releasing', 250],
    ['final', 50],
    ['switched', 50],
  ];
  for (const [state, ms] of cases) {
    it(`asks again after ${ms} ms in ${state}`, () => {
      expect(movePollMs(state)).to.equal(ms);
    });
  }
});
