import { FerryError } from '../errors';
import { validatePolicyName } from './policy-name';
import { scheduleSnapshot } from './snapshot-names';

/**
 * Schedules in time (pure, UTC, no DST): when a cron schedule runs next, whether a host that was down
 * (or stopped) at a scheduled time owes one catch-up run, and the names scheduled snapshots get.
 *
 * The fields come from node-cron's own parser (`parse(expr)` in node-cron 4, which the agent calls):
 * every value spelled out, seconds first (0 for 5-field expressions), `L` for the month's last day.
 * Matching follows node-cron: a time matches when every field does, day of month AND day of week.
 */

/** A cron expression's fields, each as the list of values it matches (node-cron's ParsedFields). */
export interface CronFields {
  second: readonly number[];
  minute: readonly number[];
  hour: readonly number[];
  /** 1-31, or 'L': the last day of the month. */
  dayOfMonth: readonly (number | string)[];
  /** 1-12. */
  month: readonly number[];
  /** 0-6, Sunday 0. */
  dayOfWeek: readonly (number | string)[];
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** How far ahead a next run is looked for: past it, the schedule never runs (node-cron refuses 31 Feb already). */
const HORIZON_MS = 8 * 366 * DAY;

function lastDayOfMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

function dayMatches(f: CronFields, d: Date): boolean {
  const dom = d.getUTCDate();
  const last = lastDayOfMonth(d.getUTCFullYear(), d.getUTCMonth());
  const domOk = f.dayOfMonth.some((v) => v === dom || (v === 'L' && dom === last));
  return domOk && f.dayOfWeek.some((v) => v === d.getUTCDay() || (v === 7 && d.getUTCDay() === 0));
}

/** The first value in `values` at or after `from`, else undefined. */
function firstFrom(values: readonly number[], from: number): number | undefined {
  let best: number | undefined;
  for (const v of values) if (v >= from && (best === undefined || v < best)) best = v;
  return best;
}

/**
 * The first time strictly after `after` (whole seconds, UTC) at which the schedule runs; null when it
 * never does within the next eight years. Skips whole months, days, hours and minutes that cannot match.
 */
export function nextRunAfter(f: CronFields, after: Date): Date | null {
  let t = Math.floor(after.getTime() / SECOND) * SECOND + SECOND;
  const limit = after.getTime() + HORIZON_MS;
  while (t <= limit) {
    const d = new Date(t);
    if (!f.month.includes(d.getUTCMonth() + 1)) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      continue;
    }
    if (!dayMatches(f, d)) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
      continue;
    }
    const hour = firstFrom(f.hour, d.getUTCHours());
    if (hour === undefined) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
      continue;
    }
    if (hour !== d.getUTCHours()) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hour);
      continue;
    }
    const minute = firstFrom(f.minute, d.getUTCMinutes());
    if (minute === undefined) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hour + 1);
      continue;
    }
    if (minute !== d.getUTCMinutes()) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hour, minute);
      continue;
    }
    const second = firstFrom(f.second, d.getUTCSeconds());
    if (second === undefined) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hour, minute + 1);
      continue;
    }
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hour, minute, second));
  }
  return null;
}

/** What a host owes a schedule when it starts (or hears of the schedule): at most one catch-up run. */
export interface CatchUp {
  run: boolean;
  /** The earliest scheduled time that passed without a run, if any. */
  missedSince: Date | null;
  /** How many scheduled times passed without a run (counted up to MAX_COUNTED, then "at least"). */
  missed: number;
  reason: string;
}

/** Missed runs are counted for the log up to this many; a catch-up is one run however many were missed. */
export const MAX_COUNTED = 1000;

/**
 * Whether a schedule owes a catch-up run at `now`, given `lastRun`, the time of its last run (or when
 * the host began to keep the schedule): one run when any scheduled time passed in (lastRun, now],
 * however many (a host down for a week takes ONE snapshot when it is back, not a burst); none when
 * nothing was missed or there is no last run to count from (a new schedule waits for its first time).
 */
export function catchUp(f: CronFields, lastRun: Date | null, now: Date): CatchUp {
  if (!lastRun) return { run: false, missedSince: null, missed: 0, reason: 'no earlier run to count from: waits for the first scheduled time' };
  const first = nextRunAfter(f, lastRun);
  if (!first || first.getTime() > now.getTime()) return { run: false, missedSince: null, missed: 0, reason: 'no scheduled time passed since the last run' };
  let missed = 1;
  for (let t = nextRunAfter(f, first); t && t.getTime() <= now.getTime() && missed < MAX_COUNTED; t = nextRunAfter(f, t)) missed++;
  const count = missed >= MAX_COUNTED ? `at least ${MAX_COUNTED}` : String(missed);
  return {
    run: true,
    missedSince: first,
    missed,
    reason: `${count} scheduled run${missed === 1 ? '' : 's'} missed since ${first.toISOString()}: one catch-up run now`,
  };
}

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/**
 * The stored name of the snapshot policy `policy`'s schedule takes at `at` (`_schedule.<policy>.<stamp>`,
 * snapshot-names.ts's scheduleSnapshot), the policy name checked first.
 */
export function scheduleSnapshotName(policy: string, at: Date): string {
  return scheduleSnapshot(validatePolicyName(policy), at);
}

/** The time in a scheduled snapshot's name of policy `policy`, else undefined (another owner's, or another policy's). */
export function scheduleTimeOf(name: string, policy: string): Date | undefined {
  const prefix = `_schedule.${policy}.`;
  if (!name.startsWith(prefix)) return undefined;
  const m = STAMP.exec(name.slice(prefix.length));
  if (!m) return undefined;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** Throws INVALID_OPTION unless `fields` hold only what nextRunAfter understands (node-cron's parse output). */
export function checkCronFields(fields: CronFields, expr: string): CronFields {
  const odd = [...fields.dayOfMonth.filter((v) => v !== 'L'), ...fields.dayOfWeek].find((v) => typeof v !== 'number');
  if (odd !== undefined) throw new FerryError('INVALID_OPTION', `schedule ${JSON.stringify(expr)}: ${JSON.stringify(odd)} is not supported by ferry's schedules`);
  return fields;
}
