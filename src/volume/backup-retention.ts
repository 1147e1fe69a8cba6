import { formatKeepSpec, keptBySpec, type KeepSpec, type RetentionPlan } from './retention';

/**
 * Retention of a volume's checkpoints in a bank (issue 8 item 4), pure: which of them a policy's
 * `--backup-keep` removes after a scheduled backup. The keep spec is the snapshots' own (retention.ts:
 * "7d 4w 12m" keeps the newest per day, week, month; "10" the newest ten), over the checkpoints the
 * schedule took.
 *
 * Never removed, whatever the spec: the volume's newest checkpoint (the next backup's parent) and the
 * newest scheduled one; one not taken by the schedule (`manual`, `drill`: only its owner removes it);
 * another volume's; one whose time cannot be read or lies after `now` (a clock stepped back).
 */

/** A checkpoint as retention sees it (CheckpointSummary's fields it reads). */
export interface RetainedCheckpoint {
  id: string;
  volume: string;
  /** ISO-8601 UTC */
  time: string;
  /** manual | schedule | drill */
  origin: string;
}

/** Decides which checkpoints of `volume` go under `keep` at `now` (verdicts by checkpoint id, oldest first). */
export function planBackupRetention(input: { checkpoints: readonly RetainedCheckpoint[]; volume: string; keep: KeepSpec; now: Date }): RetentionPlan {
  const { keep, now, volume } = input;
  const reasons = new Map<string, string[]>();
  const why = (id: string, reason: string): void => void (reasons.get(id) ?? reasons.set(id, []).get(id)!).push(reason);
  const timed = input.checkpoints
    .map((c) => ({ ...c, ms: Date.parse(c.time) }))
    // Unreadable times first (kept anyway); equal times by id, which sorts by time too: a stable order.
    .sort((a, b) => (Number.isNaN(a.ms) ? -Infinity : a.ms) - (Number.isNaN(b.ms) ? -Infinity : b.ms) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  const mine = timed.filter((c) => c.volume === volume);
  const readable = mine.filter((c) => !Number.isNaN(c.ms) && c.ms <= now.getTime());
  const owned: typeof timed = [];
  for (const c of timed) {
    if (c.volume !== volume) why(c.id, `a checkpoint of volume ${c.volume}, not of ${volume}`);
    else if (c.origin !== 'schedule') why(c.id, `taken by ${c.origin === 'manual' ? 'hand' : `a ${c.origin}`}: only scheduled checkpoints are pruned`);
    else if (Number.isNaN(c.ms)) why(c.id, `its time ${JSON.stringify(c.time)} cannot be read`);
    else if (c.ms > now.getTime()) why(c.id, `taken at ${c.time}, after now: kept until then`);
    else owned.push(c);
  }
  if (readable.length) why(readable[readable.length - 1].id, "the volume's newest checkpoint (the next backup's parent)");
  // Newest first from here: the first one met in a period is the newest of that period.
  const newestFirst = [...owned].reverse();
  if (newestFirst.length) why(newestFirst[0].id, 'the newest scheduled checkpoint');
  keptBySpec(
    newestFirst.map((c) => ({ name: c.id, ms: c.ms })),
    keep,
    now,
    why,
  );

  const plan: RetentionPlan = { keep: [], delete: [] };
  for (const c of timed) {
    const r = reasons.get(c.id);
    if (r) plan.keep.push({ name: c.id, reasons: r });
    else plan.delete.push({ name: c.id, reasons: [`kept by none of the backup keep "${formatKeepSpec(keep)}"`] });
  }
  return plan;
}
