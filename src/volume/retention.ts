import { FerryError } from '../errors';
import { parseSnapshotName } from './snapshot-names';

/**
 * Retention of a schedule's snapshots (pure): which to delete, and why each one kept is kept.
 *
 * A keep spec is a list of words: `<N>h`, `<N>d`, `<N>w`, `<N>m`, `<N>y` keep the newest snapshot of
 * each UTC calendar hour, day, ISO week (from Monday), month or year among the last N of them (the
 * current one included); a bare number `<N>` keeps the newest N. "48h 14d 8w 12m" is the classic
 * grandfather-father-son rotation; "10" keeps ten. A snapshot is kept when any word keeps it.
 *
 * Whatever the spec, these are never deleted: the newest snapshot the schedule owns; one in
 * `protected` (a base a standby or a backup still needs); one the schedule does not own (a user's,
 * a move's, another policy's: only the owner deletes its own); one whose time cannot be read or lies
 * after `now` (a clock stepped back).
 */

/** The calendar periods a keep word counts in. `m` is months here (minutes make no sense for retention). */
export const KEEP_UNITS = ['h', 'd', 'w', 'm', 'y'] as const;
export type KeepUnit = (typeof KEEP_UNITS)[number];

const UNIT_WORDS: Record<KeepUnit, string> = { h: 'hourly', d: 'daily', w: 'weekly', m: 'monthly', y: 'yearly' };

/** A parsed keep spec: how many of each period, and how many newest regardless of time. */
export interface KeepSpec {
  /** Keep the newest `latest` snapshots (a bare number); 0 when the spec has none. */
  latest: number;
  /** For each unit given, how many periods back (the current one counts). */
  periods: Partial<Record<KeepUnit, number>>;
}

const WORD = /^(\d+)([hdwmy]?)$/;
/** More periods than anyone means (100 years of hours) would only hide a typo. */
const MAX_COUNT = 876_000;

/**
 * Parses a keep spec ("48h 14d 8w 12m", "10", "24h 7d"): INVALID_OPTION saying which word is wrong
 * and what is valid. Each unit at most once, every count at least 1.
 */
export function parseKeepSpec(text: unknown): KeepSpec {
  const usage = 'use words like 48h 14d 8w 12m (the newest per hour, day, week, month, year: h d w m y) and/or a count such as 10';
  if (typeof text !== 'string' || text.trim() === '') throw new FerryError('INVALID_OPTION', `invalid keep ${JSON.stringify(text)}: ${usage}`);
  const spec: KeepSpec = { latest: 0, periods: {} };
  for (const word of text.trim().toLowerCase().split(/[\s,]+/)) {
    const m = WORD.exec(word);
    if (!m) throw new FerryError('INVALID_OPTION', `invalid keep ${JSON.stringify(text)}: ${JSON.stringify(word)} is not a count or a period; ${usage}`);
    const n = Number(m[1]);
    if (n < 1 || n > MAX_COUNT) throw new FerryError('INVALID_OPTION', `invalid keep ${JSON.stringify(text)}: ${JSON.stringify(word)} must count 1 to ${MAX_COUNT}`);
    const unit = m[2] as KeepUnit | '';
    if (unit === '') {
      if (spec.latest) throw new FerryError('INVALID_OPTION', `invalid keep ${JSON.stringify(text)}: give one count, not two`);
      spec.latest = n;
    } else {
      if (spec.periods[unit] !== undefined) throw new FerryError('INVALID_OPTION', `invalid keep ${JSON.stringify(text)}: ${unit} is given twice`);
      spec.periods[unit] = n;
    }
  }
  return spec;
}

/** Writes a keep spec back in its canonical order ("10 48h 14d 8w 12m"). */
export function formatKeepSpec(spec: KeepSpec): string {
  const words = spec.latest ? [String(spec.latest)] : [];
  for (const u of KEEP_UNITS) if (spec.periods[u] !== undefined) words.push(`${spec.periods[u]}${u}`);
  return words.join(' ');
}

/** A snapshot retention looks at: its stored name and when it was taken (RFC 3339). */
export interface RetainedSnapshot {
  name: string;
  createdAt: string;
}

/** What retention decided for one snapshot. */
export interface RetentionVerdict {
  name: string;
  /** Why it is kept (every reason that applies), or why it goes (one). */
  reasons: string[];
}

export interface RetentionPlan {
  /** Oldest first. */
  keep: RetentionVerdict[];
  /** Oldest first; only snapshots of the schedule of `policy`. */
  delete: RetentionVerdict[];
}

/** Whether stored snapshot `name` is one the schedule of `policy` took (`_schedule.<policy>.<time>`). */
export function ownedBySchedule(name: string, policy: string): boolean {
  const p = parseSnapshotName(name);
  return p?.owner === 'schedule' && p.key.startsWith(`${policy}.`) && p.key.indexOf('.', policy.length + 1) === -1;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The index of the UTC calendar period holding `ms` (consecutive periods have consecutive indexes). */
export function periodIndex(unit: KeepUnit, ms: number): number {
  switch (unit) {
    case 'h':
      return Math.floor(ms / HOUR);
    case 'd':
      return Math.floor(ms / DAY);
    case 'w':
      // 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday (ISO).
      return Math.floor((Math.floor(ms / DAY) + 3) / 7);
    case 'm': {
      const d = new Date(ms);
      return d.getUTCFullYear() * 12 + d.getUTCMonth();
    }
    case 'y':
      return new Date(ms).getUTCFullYear();
  }
}

/** The period's name for people: 2026-12-02T06h, 2026-12-02, week of 2026-11-30, 2026-12, 2026. */
function periodLabel(unit: KeepUnit, ms: number): string {
  const iso = new Date(ms).toISOString();
  switch (unit) {
    case 'h':
      return `${iso.slice(0, 13)}h`;
    case 'd':
      return iso.slice(0, 10);
    case 'w': {
      const monday = (periodIndex('w', ms) * 7 - 3) * DAY;
      return `week of ${new Date(monday).toISOString().slice(0, 10)}`;
    }
    case 'm':
      return iso.slice(0, 7);
    case 'y':
      return iso.slice(0, 4);
  }
}

/**
 * The keep spec's own verdicts (pure): calls `why(name, reason)` for each item `keep` keeps at `now`
 * (the newest `latest`, the newest of each period counted back). `newestFirst`: items retention may
 * delete, with readable times not after `now`, newest first. Shared by snapshots and bank checkpoints.
 */
export function keptBySpec(
  newestFirst: readonly { name: string; ms: number }[],
  keep: KeepSpec,
  now: Date,
  why: (name: string, reason: string) => void,
): void {
  newestFirst.slice(0, keep.latest).forEach((s, i) => why(s.name, `among the newest ${keep.latest} (#${i + 1})`));
  for (const unit of KEEP_UNITS) {
    const count = keep.periods[unit];
    if (count === undefined) continue;
    const current = periodIndex(unit, now.getTime());
    const seen = new Set<number>();
    for (const s of newestFirst) {
      const idx = periodIndex(unit, s.ms);
      if (current - idx >= count || seen.has(idx)) continue;
      seen.add(idx);
      why(s.name, `${UNIT_WORDS[unit]}: the newest of ${periodLabel(unit, s.ms)} (${count}${unit})`);
    }
  }
}

/**
 * Decides which of a volume's snapshots the schedule of `policy` deletes under `keep` at `now`
 * (pure; see the module comment for what is never deleted). `snapshots` in any order; `protectedNames`
 * maps a name to why it must stay (e.g. "base of standby h2").
 */
export function planRetention(input: {
  snapshots: readonly RetainedSnapshot[];
  policy: string;
  keep: KeepSpec;
  now: Date;
  protectedNames?: ReadonlyMap<string, string>;
}): RetentionPlan {
  const { keep, now } = input;
  const reasons = new Map<string, string[]>();
  const why = (name: string, reason: string): void => void (reasons.get(name) ?? reasons.set(name, []).get(name)!).push(reason);
  const timed = input.snapshots
    .map((s) => ({ ...s, ms: Date.parse(s.createdAt) }))
    // Unreadable times sort first (they are kept anyway); equal times by name, so the order is stable.
    .sort((a, b) => (Number.isNaN(a.ms) ? -Infinity : a.ms) - (Number.isNaN(b.ms) ? -Infinity : b.ms) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const owned: typeof timed = [];
  for (const s of timed) {
    if (!ownedBySchedule(s.name, input.policy)) why(s.name, `not the schedule's of policy ${input.policy}: only its owner deletes it`);
    else if (Number.isNaN(s.ms)) why(s.name, `its time ${JSON.stringify(s.createdAt)} cannot be read`);
    // A clock stepped back: what its periods are is unknown until then, so it stays and takes no slot.
    else if (s.ms > now.getTime()) why(s.name, `taken at ${s.createdAt}, after now: kept until then`);
    else owned.push(s);
  }
  for (const s of timed) {
    const p = input.protectedNames?.get(s.name);
    if (p !== undefined) why(s.name, `protected: ${p}`);
  }
  // Newest first from here: the first one met in a period is the newest of that period.
  const newestFirst = [...owned].reverse();
  if (newestFirst.length) why(newestFirst[0].name, 'the newest snapshot of the schedule');
  keptBySpec(newestFirst, keep, now, why);

  const plan: RetentionPlan = { keep: [], delete: [] };
  for (const s of timed) {
    const r = reasons.get(s.name);
    if (r) plan.keep.push({ name: s.name, reasons: r });
    else plan.delete.push({ name: s.name, reasons: [`kept by none of "${formatKeepSpec(keep)}"`] });
  }
  return plan;
}
