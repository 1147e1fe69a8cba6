import { expect } from 'chai';
import { leaseState, PrimaryLease, type LeaseClock, type LeaseFacts, type LeaseState } from '../../src/agent/primary-lease';

describe('primary lease (agent side, pure)', function () {
  const L = 30_000;
  const table: [string, LeaseFacts, LeaseState][] = [
    ['never renewed: no lease', { renewedAtMs: null, leaseMs: L, nowMs: 5 }, { valid: false, expiresAtMs: null, reason: 'never-renewed' }],
    ['just renewed', { renewedAtMs: 1000, leaseMs: L, nowMs: 1000 }, { valid: true, expiresAtMs: 31_000, leftMs: 30_000 }],
    ['one ms before the end', { renewedAtMs: 1000, leaseMs: L, nowMs: 30_999 }, { valid: true, expiresAtMs: 31_000, leftMs: 1 }],
    ['at the end: expired (the end is not included)', { renewedAtMs: 1000, leaseMs: L, nowMs: 31_000 }, { valid: false, expiresAtMs: 31_000, reason: 'expired' }],
    ['long after', { renewedAtMs: 1000, leaseMs: L, nowMs: 500_000 }, { valid: false, expiresAtMs: 31_000, reason: 'expired' }],
    ['a clock before the renewal never extends it', { renewedAtMs: 1000, leaseMs: L, nowMs: 999 }, { valid: false, expiresAtMs: 31_000, reason: 'expired' }],
  ];
  for (const [why, facts, want] of table) {
    it(why, function () {
      expect(leaseState(facts)).to.deep.equal(want);
    });
  }
});

describe('PrimaryLease (under a fake clock)', function () {
  function fakeClock(): LeaseClock & { advance(ms: number): void } {
    let mono = 100;
    let wall = Date.parse('2026-12-02T07:00:00Z');
    return {
      monotonicMs: () => mono,
      wallMs: () => wall,
      advance(ms) {
        mono += ms;
        wall += ms;
      },
    };
  }

  it('counts from the SEND of the answered heartbeat, not from its answer', function () {
    const clock = fakeClock();
    const lease = new PrimaryLease(10_000, clock);
    const sent = lease.mark();
    clock.advance(4000); // control took 4 s to answer
    lease.renew(sent, [{ volume: 'db', generation: 3 }]);
    clock.advance(5999);
    expect(lease.state().valid).to.equal(true);
    clock.advance(1);
    expect(lease.state()).to.include({ valid: false, reason: 'expired' });
    expect(lease.refusal()).to.deep.equal({ lastHeardAt: '2026-12-02T07:00:00.000Z', expiredAt: '2026-12-02T07:00:10.000Z' });
  });

  it('covers exactly the volumes of the last answer, at their generation', function () {
    const clock = fakeClock();
    const lease = new PrimaryLease(10_000, clock);
    lease.renew(lease.mark(), [{ volume: 'db', generation: 3 }, { volume: 'web', generation: 1 }]);
    expect(lease.generationOf('db')).to.equal(3);
    lease.renew(lease.mark(), [{ volume: 'web', generation: 1 }]);
    expect(lease.generationOf('db')).to.equal(undefined);
    expect(lease.generationOf('web')).to.equal(1);
  });

  it('a late answer to an older heartbeat never shortens the lease; a miss records since when', function () {
    const clock = fakeClock();
    const lease = new PrimaryLease(10_000, clock);
    const old = lease.mark();
    clock.advance(1000);
    lease.renew(lease.mark(), []);
    lease.renew(old, []);
    clock.advance(9500);
    expect(lease.state().valid).to.equal(true);
    lease.missed();
    const since = lease.silentSince;
    clock.advance(100);
    lease.missed();
    expect(lease.silentSince).to.equal(since);
    lease.renew(lease.mark(), []);
    expect(lease.silentSince).to.equal(null);
  });
});
