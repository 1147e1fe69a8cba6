import { expect } from 'chai';
import { isFerryError } from '../../src/errors';
import { openDb } from '../../src/control/db';
import {
  ACTIVE_MOVE_STATES,
  ACTIVE_MOVE_STATES_SQL,
  ALL_MOVE_STATES,
  MOVE_EVENTS,
  MOVE_TRANSITIONS,
  acceptsProgress,
  canMove,
  isActiveMove,
  nextMoveState,
  type ActiveMoveState,
  type MoveEvent,
  type MoveState,
} from '../../src/control/move-states';

/** The legal transitions, written out by hand: the table in move-states.ts must say exactly this. */
const LEGAL: Record<string, MoveState> = {
  'precopy precopied': 'releasing',
  'releasing released': 'final',
  'final switch': 'switched',
  'switched mounted': 'done',
  'precopy fail': 'failed',
  'releasing fail': 'failed',
  'final fail': 'failed',
  'precopy host-down': 'failed',
  'releasing host-down': 'failed',
  'final host-down': 'failed',
};

describe('move states', function () {
  describe('every state × every event', function () {
    for (const from of ALL_MOVE_STATES) {
      for (const event of MOVE_EVENTS) {
        const to = LEGAL[`${from} ${event}`];
        if (to) {
          it(`${from} --${event}--> ${to}`, function () {
            expect(nextMoveState(from, event)).to.equal(to);
            expect(canMove(from, event)).to.equal(true);
          });
        } else {
          it(`${from} --${event}--> refused`, function () {
            expect(canMove(from, event)).to.equal(false);
            expect(() => nextMoveState(from, event, { id: 7, volume: 'db' }))
              .to.throw(new RegExp(`move 7 of db is ${from}: event ${event} is not allowed`))
              .that.satisfies((e: unknown) => isFerryError(e, 'MOVE_CONFLICT'));
          });
        }
      }
    }
  });

  it('has a reason for every transition and no two rows for one state and event', function () {
    const keys = MOVE_TRANSITIONS.map((t) => `${t.from} ${t.event}`);
    expect(new Set(keys).size).to.equal(keys.length);
    expect(keys.sort()).to.deep.equal(Object.keys(LEGAL).sort());
    for (const t of MOVE_TRANSITIONS) expect(t.reason.length, `${t.from} ${t.event}`).to.be.greaterThan(20);
  });

  it('never goes backwards: final cannot return to releasing, nor switched to final', function () {
    // What updateMove({state: 'releasing'}) means on a move in `final`.
    expect(() => nextMoveState('final', 'precopied')).to.throw(/final: event precopied is not allowed there \(it accepts only switch, fail, host-down\)/);
    expect(() => nextMoveState('switched', 'fail')).to.throw(/it accepts only mounted/);
    expect(() => nextMoveState('done', 'mounted')).to.throw(/it has ended/);
  });

  it('derives the active states, the progress states and their SQL from the table', function () {
    expect([...ACTIVE_MOVE_STATES]).to.deep.equal(['precopy', 'releasing', 'final', 'switched']);
    const active: ActiveMoveState[] = ['precopy', 'releasing', 'final', 'switched'];
    for (const s of ALL_MOVE_STATES) expect(isActiveMove(s), s).to.equal((active as MoveState[]).includes(s));
    expect(ALL_MOVE_STATES.filter(acceptsProgress)).to.deep.equal(['precopy', 'releasing', 'final']);
    expect(ACTIVE_MOVE_STATES_SQL).to.equal("('precopy', 'releasing', 'final', 'switched')");
  });

  it("agrees with the schema's one-active-move index (a shipped migration, never edited)", function () {
    const db = openDb(':memory:');
    try {
      const row = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'moves_one_active'").get() as { sql: string };
      expect(row.sql).to.contain(`WHERE state IN ${ACTIVE_MOVE_STATES_SQL}`);
    } finally {
      db.close();
    }
  });

  it('every event is used by at least one transition', function () {
    for (const e of MOVE_EVENTS) expect(MOVE_TRANSITIONS.some((t) => t.event === (e as MoveEvent)), e).to.equal(true);
  });
});
