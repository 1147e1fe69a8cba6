import { expect } from 'chai';
import { decideFailover, type FailoverDecision, type FailoverFacts } from '../../src/control/failover-decision';

/** The failover decision (pure), table by table: when control may promote, whom, and what is lost. */
describe('failover decision (pure)', function () {
  const T = Date.parse('2026-12-02T07:00:00Z');
  const base: FailoverFacts = {
    volume: { name: 'db', primaryNode: 'h1', generation: 3, state: 'ready', failover: 'auto' },
    primary: { up: false, lastHeartbeatMs: T },
    moving: false,
    standbys: [
      { node: 'h2', up: true },
      { node: 'h3', up: true },
    ],
    snapshots: [
      { name: '_replication.20261202T065940Z', createdAt: '2026-12-02T06:59:40Z', hosts: ['h1', 'h2', 'h3'] },
      { name: '_replication.20261202T065950Z', createdAt: '2026-12-02T06:59:50Z', hosts: ['h1', 'h3'] },
    ],
    nowMs: T + 60_000,
    leaseSeconds: 30,
    marginSeconds: 2,
  };
  const promoteH3: FailoverDecision = {
    act: 'promote', to: 'h3', snapshot: '_replication.20261202T065950Z', lostFrom: '2026-12-02T06:59:50Z', lostTo: '2026-12-02T07:00:00.000Z', fenced: false,
  };

  const auto: [string, Partial<FailoverFacts>, FailoverDecision['act'], Partial<FailoverDecision>?][] = [
    ['primary down, lease gone: the standby with the newest snapshot', {}, 'promote', promoteH3],
    ['primary up: nothing', { primary: { up: true, lastHeartbeatMs: T + 59_000 } }, 'none'],
    ['failover=manual: nothing by itself', { volume: { ...base.volume, failover: 'manual' } }, 'none'],
    ['lease may still hold: wait until last heartbeat + lease + margin', { nowMs: T + 31_000 }, 'wait', { untilMs: T + 32_000 }],
    ['a move under way: nothing', { moving: true }, 'none'],
    ['being removed: nothing', { volume: { ...base.volume, state: 'deleting' } }, 'none'],
    ['the newest standby is down: the next newest that is up', { standbys: [{ node: 'h2', up: true }, { node: 'h3', up: false }] }, 'promote', { to: 'h2', snapshot: '_replication.20261202T065940Z' }],
    ['no standby holds a snapshot: nothing (nothing to make live)', { snapshots: [{ name: 'x', createdAt: '2026-12-02T06:00:00Z', hosts: ['h1'] }] }, 'none'],
    ['no standby at all: nothing', { standbys: [] }, 'none'],
    ['the lost primary listed among copies is never chosen', { standbys: [{ node: 'h1', up: true }] }, 'none'],
    ['same snapshot time on two standbys: the first host by name', { snapshots: [{ name: 's', createdAt: '2026-12-02T06:59:00Z', hosts: ['h3', 'h2'] }] }, 'promote', { to: 'h2', snapshot: 's' }],
    ['a host that never heartbeated held no lease', { primary: { up: false, lastHeartbeatMs: null }, nowMs: T }, 'promote', { to: 'h3', lostTo: null }],
  ];
  for (const [why, facts, act, want] of auto) {
    it(`auto: ${why} -> ${act}`, function () {
      const d = decideFailover({ ...base, ...facts });
      expect(d.act, JSON.stringify(d)).to.equal(act);
      if (want) expect(d).to.deep.include(want);
    });
  }

  const byHand: [string, Partial<FailoverFacts>, { to: string; force: boolean }, FailoverDecision['act'], RegExp | Partial<FailoverDecision>][] = [
    ['to a standby, primary down and its lease gone', {}, { to: 'h2', force: false }, 'promote', { to: 'h2', snapshot: '_replication.20261202T065940Z', fenced: false }],
    ['failover=manual is what by hand is for', { volume: { ...base.volume, failover: 'manual' } }, { to: 'h3', force: false }, 'promote', { to: 'h3' }],
    ['primary up: refused, naming --force', { primary: { up: true, lastHeartbeatMs: T + 59_000 } }, { to: 'h2', force: false }, 'refuse', /primary h1 is up.*--force/],
    ['primary up with --force: promoted and fenced', { primary: { up: true, lastHeartbeatMs: T + 59_000 } }, { to: 'h2', force: true }, 'promote', { to: 'h2', fenced: true }],
    ['primary down but its lease may hold: refused, saying until when', { nowMs: T + 10_000 }, { to: 'h2', force: false }, 'refuse', /may still hold its lease until 2026-12-02T07:00:32.000Z/],
    ['not a standby: refused, naming the standbys', {}, { to: 'h9', force: false }, 'refuse', /h9 keeps no standby of db \(standbys: h2, h3\)/],
    ['to the primary itself: refused', {}, { to: 'h1', force: true }, 'refuse', /already lives on h1/],
    ['a standby that is down: refused', { standbys: [{ node: 'h2', up: false }] }, { to: 'h2', force: true }, 'refuse', /h2 is down/],
    ['a standby without a snapshot: refused', { snapshots: [] }, { to: 'h2', force: false }, 'refuse', /holds no snapshot of db yet/],
    ['while it moves: refused', { moving: true }, { to: 'h2', force: true }, 'refuse', /is moving/],
  ];
  for (const [why, facts, request, act, want] of byHand) {
    it(`by hand: ${why} -> ${act}`, function () {
      const d = decideFailover({ ...base, ...facts, request });
      expect(d.act, JSON.stringify(d)).to.equal(act);
      if (want instanceof RegExp) expect((d as { message: string }).message).to.match(want);
      else expect(d).to.deep.include(want);
    });
  }
});
