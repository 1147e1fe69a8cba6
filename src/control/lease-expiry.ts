/**
 * fence: may control act as if a host's time-bound lease is gone (fail its volumes over)? The agent's
 * lease runs `leaseSeconds` from the moment it SENT its last answered heartbeat, on its own monotonic
 * clock; control records the heartbeat when it RECEIVED it, which is later. So in real time the
 * agent's lease ends before `lastHeartbeat + leaseSeconds` on control's clock, unless the two clocks
 * run at different rates or control's wall clock jumps: `marginSeconds` covers that.
 */
export interface LeaseExpiryFacts {
  /** Control's wall time of the host's last heartbeat (ms), null when it never sent one. */
  lastHeartbeatMs: number | null;
  nowMs: number;
  leaseSeconds: number;
  marginSeconds: number;
}

/** When control may take the host's lease as expired (ms): last heartbeat + lease + margin. */
export function leaseGoneAtMs(f: Pick<LeaseExpiryFacts, 'lastHeartbeatMs' | 'leaseSeconds' | 'marginSeconds'>): number {
  // A host that never heartbeated never held a lease.
  if (f.lastHeartbeatMs === null) return Number.NEGATIVE_INFINITY;
  return f.lastHeartbeatMs + (f.leaseSeconds + f.marginSeconds) * 1000;
}

/** True once the host's lease must have expired, whatever it does meanwhile. */
export function hostLeaseGone(f: LeaseExpiryFacts): boolean {
  return f.nowMs >= leaseGoneAtMs(f);
}
