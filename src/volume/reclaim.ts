import { FerryError } from '../errors';

/**
 * Reclaim policy (Kubernetes' Retain/Delete for PVs): what a remove does with a volume's data, and
 * the decisions around retained data (pure; DESIGN: "Removing volumes safely").
 */

/** `-o reclaim=delete|retain`: delete (the default) destroys the data at remove; retain keeps it for a while. */
export const RECLAIM_POLICIES = ['delete', 'retain'] as const;
export type ReclaimPolicy = (typeof RECLAIM_POLICIES)[number];

/** What a remove does with a volume's data: retain it for `retainSeconds`, or delete it. */
export interface Reclaim {
  reclaim: ReclaimPolicy;
  retainSeconds: number;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const DURATION = /^([1-9][0-9]{0,8})(s|m|h|d|w)$/;

/** Seconds of a duration such as `30s`, `15m`, `12h`, `7d`, `2w`; INVALID_OPTION naming `what` otherwise. */
export function parseDuration(text: string, what: string): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw new FerryError('INVALID_OPTION', `invalid ${what} ${JSON.stringify(text)}: give a whole number and a unit s, m, h, d or w (for example 7d)`);
  return Number(m[1]) * UNITS[m[2]];
}

/**
 * The one place a volume's reclaim is decided (pure): its own Create options first (`reclaim`,
 * `retain-removed`), then its policy's, then the cluster's defaults (config `control.reclaim` and
 * `control.retainRemoved`). Options were checked at Create; a bad stored value falls back to the
 * default rather than lose data (retain wins when unsure).
 */
export function reclaimOf(
  options: Readonly<Record<string, string>>,
  policy: { reclaim: ReclaimPolicy; retainRemovedSeconds: number | null } | null,
  defaults: Reclaim,
): Reclaim {
  const given = options.reclaim;
  const reclaim: ReclaimPolicy =
    given === 'retain' || given === 'delete' ? given : given !== undefined ? 'retain' : (policy?.reclaim ?? defaults.reclaim);
  let retainSeconds = policy?.retainRemovedSeconds ?? defaults.retainSeconds;
  if (options['retain-removed'] !== undefined) {
    try {
      retainSeconds = parseDuration(options['retain-removed'], 'retain-removed');
    } catch {
      // Keep the default: the option was valid when the volume was created.
    }
  }
  return { reclaim, retainSeconds };
}

/** Checks the reclaim Create options (`reclaim`, `retain-removed`); INVALID_OPTION naming the valid values. */
export function checkReclaimOptions(options: Readonly<Record<string, string>>): void {
  const r = options.reclaim;
  if (r !== undefined && !(RECLAIM_POLICIES as readonly string[]).includes(r)) {
    throw new FerryError('INVALID_OPTION', `invalid reclaim ${JSON.stringify(r)}: valid values are ${RECLAIM_POLICIES.join(', ')}`);
  }
  if (options['retain-removed'] !== undefined) parseDuration(options['retain-removed'], 'retain-removed');
}

/**
 * A removed volume's retained data, as the reclaim decider sees it: `retaining` (the live dataset is
 * still there; its retained copy is being made), `retained` (kept until `expiresAt`), `dropping`
 * (expired or undeleted: its retained dataset is to be destroyed).
 */
export interface RetainedItem {
  id: number;
  node: string;
  state: 'retaining' | 'retained' | 'dropping';
  expiresAt: string;
}

export type ReclaimAction =
  | { kind: 'finish-retain'; id: number; reason: string }
  | { kind: 'expire'; id: number; reason: string }
  | { kind: 'destroy'; id: number; reason: string };

/**
 * What a host's upkeep does with the retained data control records (pure, table-tested): finishes a
 * retain a crash or another host's remove left to it, expires what is past its time, and destroys
 * what is expired or undeleted. Only this host's items; others are their hosts' business.
 */
export function planReclaim(items: readonly RetainedItem[], node: string, now: Date): ReclaimAction[] {
  const out: ReclaimAction[] = [];
  for (const r of items) {
    if (r.node !== node) continue;
    if (r.state === 'retaining') out.push({ kind: 'finish-retain', id: r.id, reason: 'the volume was removed; its retained copy is not made yet' });
    else if (r.state === 'dropping') out.push({ kind: 'destroy', id: r.id, reason: 'expired or undeleted; its retained dataset is still here' });
    else if (Date.parse(r.expiresAt) <= now.getTime()) out.push({ kind: 'expire', id: r.id, reason: `kept until ${r.expiresAt}` });
  }
  return out;
}

/** The cluster's defaults from config `control.reclaim` and `control.retainRemoved` (what ferry control and serve give LocalControl). */
export function reclaimDefaults(control: { reclaim: ReclaimPolicy; retainRemoved: string }): Reclaim {
  return { reclaim: control.reclaim, retainSeconds: parseDuration(control.retainRemoved, 'control.retainRemoved') };
}
