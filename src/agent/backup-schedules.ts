import type { ScheduledTask } from 'node-cron';
import type { Logger } from '../log';
import { planBackupRetention } from '../volume/backup-retention';
import { parseKeepSpec } from '../volume/retention';
import { catchUp, type CronFields } from '../volume/schedule';
import type { ControlClient } from '../wire/control-client';
import type { PolicyRecord } from '../wire/records';
import type { BackupRunner } from './backup-runner';
import { startCronTask } from './cron-task';
import type { RestoreDrills } from './restore-drills';
import type { ScheduleBook, ScheduledVolume } from './schedule-book';

/** One volume's backup schedule: its policy's bank, cron and keep, and node-cron's task. */
interface BackupJob {
  volume: string;
  policy: string;
  bank: string;
  schedule: string;
  keep: string | null;
  fields: CronFields;
  task: ScheduledTask;
}

/** What one scheduled backup did (for logs and tests). */
export interface BackupRunResult {
  volume: string;
  bank: string;
  checkpoint: string;
  /** Checkpoints retention removed, by id. */
  pruned: string[];
  /** Why retention did not run or stopped, if it did not finish. */
  pruneSkipped?: string;
}

/**
 * bank-policy (issue 8 item 4): scheduled backups of this host's volumes (agent part, driven by the
 * Scheduler: the same control refresh, the same ScheduleBook on local disk, the same catch-up rule:
 * a host down at scheduled times takes ONE backup when it is back, not a burst). For every volume
 * primary here whose policy has `backupTo` and `backupSchedule`, a node-cron job (UTC) runs
 * `Backups.create(volume, {bank, origin: 'schedule'})`, then prunes the volume's checkpoints in that
 * bank by `backupKeep` (src/volume/backup-retention.ts: never the newest, a manual or drill one).
 * The restore drills of the same volumes are handed on to RestoreDrills.
 */
export class BackupSchedules {
  private readonly jobs = new Map<string, BackupJob>();
  private readonly running = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(
    private readonly node: string,
    private readonly control: Pick<ControlClient, 'recordEvent'>,
    private readonly backups: BackupRunner,
    private readonly book: ScheduleBook,
    private readonly log: Logger,
    private readonly drills?: RestoreDrills,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The volumes with a running backup schedule here. */
  scheduled(): { volume: string; policy: string; bank: string; schedule: string }[] {
    return [...this.jobs.values()].map((j) => ({ volume: j.volume, policy: j.policy, bank: j.bank, schedule: j.schedule }));
  }

  /** Brings the backup jobs (and drills) in line with `volumes` and their policies: starts, restarts, stops. */
  apply(volumes: readonly ScheduledVolume[], policyOf: (name: string) => PolicyRecord | undefined): void {
    if (this.stopped) return;
    const wanted = new Map<string, { v: ScheduledVolume; p: PolicyRecord }>();
    for (const v of volumes) {
      const p = policyOf(v.policy);
      if (p?.backupTo && p.backupSchedule) wanted.set(v.volume, { v, p });
    }
    for (const [volume, job] of this.jobs) {
      const w = wanted.get(volume);
      if (!w || w.v.policy !== job.policy || w.p.backupTo !== job.bank || w.p.backupSchedule !== job.schedule) {
        void job.task.destroy();
        this.jobs.delete(volume);
        this.log.info({ volume, policy: job.policy, op: 'backup-schedule' }, 'backup schedule stopped');
      } else {
        job.keep = w.p.backupKeep;
      }
    }
    for (const [volume, { v, p }] of wanted) if (!this.jobs.has(volume)) this.startJob(v, p);
    this.drills?.apply(
      [...wanted.values()]
        .filter(({ p }) => p.verifyEverySeconds && p.verifyWith)
        .map(({ v, p }) => ({ volume: v.volume, policy: v.policy, bank: p.backupTo!, everySeconds: p.verifyEverySeconds!, verifyWith: p.verifyWith! })),
    );
  }

  private startJob(v: ScheduledVolume, p: PolicyRecord): void {
    const schedule = p.backupSchedule!;
    const cron = startCronTask({ schedule, name: `ferry-backup:${v.volume}`, volume: v.volume, policy: v.policy, what: 'backup schedule', log: this.log, onTick: () => void this.runLogged(v.volume, 'scheduled') });
    if (!cron) return;
    const { fields, task } = cron;
    this.jobs.set(v.volume, { volume: v.volume, policy: v.policy, bank: p.backupTo!, schedule, keep: p.backupKeep, fields, task });
    this.log.info({ volume: v.volume, policy: v.policy, bank: p.backupTo, schedule, op: 'backup-schedule' }, 'backup schedule started');
    // The snapshots' rule: a host that missed scheduled times owes one backup, not a burst.
    const last = this.book.lastBackup(v.volume, v.policy) ?? null;
    const c = catchUp(fields, last, this.now());
    if (last === null) this.book.backedUp(v.volume, v.policy, this.now());
    if (c.run) {
      this.log.info({ volume: v.volume, policy: v.policy, missed: c.missed, since: c.missedSince?.toISOString() }, 'catch-up backup');
      void this.runLogged(v.volume, 'catch-up');
    }
  }

  private runLogged(volume: string, why: 'scheduled' | 'catch-up'): Promise<void> {
    const p = this.run(volume)
      .then((r) => {
        if (r) this.log.info({ op: 'scheduled-backup', why, ...r }, 'scheduled backup taken');
      })
      .catch((err: unknown) => this.log.error({ err, volume, op: 'scheduled-backup', why }, 'scheduled backup failed'))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  /**
   * One run of `volume`'s backup schedule now: the backup, then retention. Undefined when no job
   * runs for it or its previous run still goes on. A failed backup throws (Backups recorded why).
   */
  async run(volume: string): Promise<BackupRunResult | undefined> {
    const job = this.jobs.get(volume);
    if (!job || this.running.has(volume) || this.stopped) return undefined;
    this.running.add(volume);
    const at = this.now();
    this.log.info({ volume, bank: job.bank, op: 'scheduled-backup' }, 'scheduled backup started');
    try {
      // The run counts even when it fails: a bank that is down must not bring a burst when it is back.
      this.book.backedUp(volume, job.policy, at);
      const cp = await this.backups.create(volume, { bank: job.bank, origin: 'schedule' });
      const result: BackupRunResult = { volume, bank: job.bank, checkpoint: cp.id, pruned: [] };
      if (job.keep !== null) await this.prune(job, result);
      return result;
    } finally {
      this.running.delete(volume);
    }
  }

  /** Removes the checkpoints `job.keep` no longer keeps (each through Backups.remove, which records it). */
  private async prune(job: BackupJob, result: BackupRunResult): Promise<void> {
    try {
      const checkpoints = await this.backups.list({ bank: job.bank, volume: job.volume });
      const plan = planBackupRetention({ checkpoints, volume: job.volume, keep: parseKeepSpec(job.keep), now: this.now() });
      for (const d of plan.delete) {
        await this.backups.remove(job.bank, job.volume, d.name);
        result.pruned.push(d.name);
        this.log.info({ volume: job.volume, bank: job.bank, checkpoint: d.name, why: d.reasons[0], op: 'backup-prune' }, 'scheduled checkpoint removed');
      }
    } catch (err) {
      // The backup itself is done; what is left goes at the next run.
      result.pruneSkipped = (err as Error).message;
      this.log.warn({ err, volume: job.volume, bank: job.bank, op: 'backup-prune' }, 'backup retention stopped; the next run goes on');
      await this.control
        .recordEvent({ volume: job.volume, node: this.node, kind: 'backup-retention-failed', detail: `retention of ${job.volume}'s checkpoints in bank ${job.bank} stopped: ${(err as Error).message}`.slice(0, 4000) })
        .catch(() => undefined);
    }
  }

  /** Stops every job and drill; resolves once the runs under way have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const j of this.jobs.values()) void j.task.destroy();
    this.jobs.clear();
    await Promise.all([...this.inFlight, this.drills?.stop()]);
  }
}
