import { parse as parseCron, schedule as cronSchedule, type ScheduledTask } from 'node-cron';
import type { Logger } from '../log';
import type { CronFields } from '../volume/schedule';

/** A volume's running cron job: its parsed fields (for the catch-up rule) and node-cron's task. */
export interface CronTask {
  fields: CronFields;
  task: ScheduledTask;
}

/**
 * Starts a UTC node-cron task for one volume's schedule (snapshots, backups): no overlapping runs,
 * never holding the process open, node-cron's own messages (a missed tick under load, an overlap
 * refused) in ferry's log rather than on the console. Control checks every schedule; one this
 * node-cron refuses anyway is logged as `cannot run a <what>` and undefined is returned.
 */
export function startCronTask(o: {
  schedule: string;
  name: string;
  volume: string;
  policy: string;
  what: string;
  log: Logger;
  onTick: (at: Date | undefined) => void;
}): CronTask | undefined {
  let fields: CronFields;
  try {
    fields = parseCron(o.schedule);
  } catch (err) {
    o.log.error({ err, volume: o.volume, policy: o.policy, schedule: o.schedule }, `cannot run a ${o.what}`);
    return undefined;
  }
  const { volume, log } = o;
  const task = cronSchedule(o.schedule, (ctx) => o.onTick(ctx?.date), {
    timezone: 'UTC',
    name: o.name,
    noOverlap: true,
    unref: true,
    logger: {
      info: (msg) => log.debug({ volume, cron: msg }, 'node-cron'),
      debug: (msg) => log.debug({ volume, cron: String(msg) }, 'node-cron'),
      warn: (msg) => log.warn({ volume, cron: msg }, 'node-cron'),
      error: (msg, err) => log.error({ volume, err: err ?? msg }, 'node-cron'),
    },
  });
  return { fields, task };
}
