import { expect } from 'chai';
import { hostLeaseGone, leaseGoneAtMs, type LeaseExpiryFacts } from '../../src/control/lease-expiry';

describe('lease expiry (control side, pure): may control act as if a host lease is gone', function () {
  const T = Date.parse('2026-12-02T07:00:00Z');
  const base = { lastHeartbeatMs: T, leaseSeconds: 30, marginSeconds: 2 };
  const table: [string, LeaseExpiryFacts, boolean][] = [
    ['right after the heartbeat', { ...base, nowMs: T + 1000 }, false],
    ['at lease end on control clock: the agent may still hold it (clock rates)', { ...base, nowMs: T + 30_000 }, false],
    ['inside the margin', { ...base, nowMs: T + 31_999 }, false],
    ['lease plus margin: gone', { ...base, nowMs: T + 32_000 }, true],
    ['long silent', { ...base, nowMs: T + 3_600_000 }, true],
    ['no margin: at the lease end', { ...base, marginSeconds: 0, nowMs: T + 30_000 }, true],
    ['never heartbeated: it never held a lease', { ...base, lastHeartbeatMs: null, nowMs: T }, true],
    ['control clock behind the heartbeat (a jump back): not gone', { ...base, nowMs: T - 60_000 }, false],
  ];
  for (const [why, facts, gone] of table) {
    it(`${why} -> ${gone ? 'gone' : 'may still hold'}`, function () {
      expect(hostLeaseGone(facts)).to.equal(gone);
    });
  }
  it('names the instant', function () {
    expect(new Date(leaseGoneAtMs(base)).toISOString()).to.equal('2026-12-02T07:00:32.000Z');
  });
});
