/** A standby as the lag check sees it. */
export interface LagInput {
  volume: string;
  node: string;
  /** When its newest snapshot was taken (ms since the epoch); null before its first round. */
  snapshotAt: number | null;
  /** When control chose it (a standby without a snapshot is as late as it is old). */
  chosenAt: number;
  rpoSeconds: number;
  /** Whether control last recorded it late. */
  late: boolean;
}

/** A change of a standby's lateness, and the event control records for it. */
export interface LagTransition {
  volume: string;
  node: string;
  late: boolean;
  kind: 'replication-late' | 'replication-caught-up';
  detail: string;
}

/** A standby's lag in seconds at `now` (pure). */
export function lagSeconds(s: Pick<LagInput, 'snapshotAt' | 'chosenAt'>, now: number): number {
  return Math.max(0, (now - (s.snapshotAt ?? s.chosenAt)) / 1000);
}

/**
 * Which standbys became late or caught up at `now` (pure): late when the lag passes the RPO, caught
 * up when it is back within it. Only changes: a standby late for an hour is one event, not 3,600.
 */
export function lagTransitions(standbys: readonly LagInput[], now: number): LagTransition[] {
  const out: LagTransition[] = [];
  for (const s of standbys) {
    const lag = lagSeconds(s, now);
    const late = lag > s.rpoSeconds;
    if (late === s.late) continue;
    const since = s.snapshotAt === null ? 'it has no snapshot yet' : `its newest snapshot is ${Math.round(lag)} s old`;
    out.push({
      volume: s.volume,
      node: s.node,
      late,
      kind: late ? 'replication-late' : 'replication-caught-up',
      detail: late
        ? `standby ${s.node} is ${Math.round(lag)} s behind, past the RPO of ${s.rpoSeconds} s (${since})`
        : `standby ${s.node} is within the RPO of ${s.rpoSeconds} s again (${Math.round(lag)} s behind)`,
    });
  }
  return out;
}
