import type { ScheduledTask } from 'node-cron';
import { isFerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { parseKeepSpec, planRetention, type RetainedSnapshot } from '../volume/retention';
import { catchUp, scheduleSnapshotName, scheduleTimeOf, type CronFields } from '../volume/schedule';
import type { ControlClient, SnapshotReport } from '../wire/control-client';
import type { SnapshotRecord } from '../wire/records';
import { scheduleGroups, type TickContainer } from '../volume/schedule-groups';
import type { BackendSlots } from './backend-slots';
import type { BackupSchedules } from './backup-schedules';
import { startCronTask } from './cron-task';
import { requireSnapshots } from './backends/backend';
import type { KeyedLock } from './keyed-lock';
import type { ScheduleBook, ScheduledVolume } from './schedule-book';
import type { Snapshots } from './snapshots';

/** One running schedule: a volume, its policy's cron and keep, and node-cron's task. */
interface Job {
  volume: string;
  backend: string;
  policy: string;
  schedule: string;
  keep: string | null;
  fields: CronFields;
  task: ScheduledTask;
}

/** What a run of a schedule did (for logs and tests). */
export interface RunResult {
  volume: string;
  snapshot: string;
  /** Taken while control was unreachable: recorded with control later. */
  offline: boolean;
  /** Snapshots retention deleted. */
  pruned: string[];
  /** Why pruning did not happen, if it did not. */
  pruneSkipped?: string;
}

/**
 * Scheduled snapshots of this host's volumes (agent part `scheduler`): for every volume whose primary
 * is this host and whose policy has a schedule, a node-cron job (UTC) that takes a snapshot
 * (`_schedule.<policy>.<time>`, origin `schedule`) and then prunes the schedule's snapshots with the
 * policy's keep spec (src/volume/retention.ts: never the newest, a user's, or a standby's base).
 *
 * What to run comes from control, refreshed every `refreshMs`, and is kept in the ScheduleBook on
 * local disk: while control is unreachable the jobs go on from the last policies it gave (snapshots
 * taken then are recorded once it answers; pruning waits for it, since only control knows which
 * bases standbys need). At start, and for a job that starts, a host that missed scheduled times takes
 * one catch-up snapshot, not a burst (src/volume/schedule.ts).
 */
export class Scheduler {
  private readonly jobs = new Map<string, Job>();
  private readonly running = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private refreshing?: Promise<void>;
  /** Whether control has answered since this scheduler started. */
  private heard = false;

  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly snapshots: Pick<Snapshots, 'take' | 'remove' | 'takeGroup'>,
    private readonly backends: BackendSlots,
    private readonly lock: KeyedLock,
    private readonly book: ScheduleBook,
    private readonly refreshMs: number,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
    /** group: the containers on this host using any of the volumes (dockerd); none: every volume alone. */
    private readonly containers?: (volumes: readonly string[]) => Promise<TickContainer[]>,
    /** bank-policy (issue 8): the policies' scheduled backups and restore drills, fed from the same refresh and book. */
    private readonly backups?: BackupSchedules,
  ) {}

  /** group: the scheduled second each policy's last tick handled, by `policy\nschedule`. */
  private readonly ticks = new Map<string, number>();

  /**
   * Asks control for the schedules of this host and starts them; when control does not answer, starts
   * those the book holds (the last policies heard). Then keeps asking.
   */
  async start(): Promise<void> {
    if (this.stopped) return;
    // Control first: a volume that moved away meanwhile must not get a catch-up run here.
    await this.refresh();
    if (!this.heard && !this.stopped) this.apply(this.book.volumes());
    const tick = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.refresh().finally(tick), this.refreshMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stops every job; resolves once the runs under way have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const j of this.jobs.values()) void j.task.destroy();
    this.jobs.clear();
    await Promise.all([...this.inFlight, this.backups?.stop()]);
  }

  /** The volumes with a running schedule here, and their policy. */
  scheduled(): { volume: string; policy: string; schedule: string }[] {
    return [...this.jobs.values()].map((j) => ({ volume: j.volume, policy: j.policy, schedule: j.schedule }));
  }

  /**
   * Asks control for policies and this host's volumes; on an answer, records any snapshots taken
   * while it was away, keeps what it said in the book, and brings the jobs in line. Unreachable:
   * the jobs go on as they are. One refresh at a time.
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    try {
      const [policies, volumes] = await Promise.all([this.control.listPolicies(), this.control.listVolumes()]);
      await this.flushPending();
      const mine: ScheduledVolume[] = volumes
        .filter((v) => v.primaryNode === this.node && v.state === 'ready' && v.options.policy !== undefined)
        .map((v) => ({ volume: v.name, backend: v.backend, policy: v.options.policy }));
      this.book.heard(policies, mine, this.now());
      this.heard = true;
      if (!this.stopped) this.apply(mine);
    } catch (err) {
      const e = toFerryError(err);
      if (!isFerryError(e, 'NODE_UNREACHABLE')) this.log.warn({ err: e }, 'cannot refresh schedules');
      else this.log.debug({ err: e.message, heardAt: this.book.heardAt }, 'control unreachable: schedules go on from the last policies heard');
    }
  }

  /** Brings the running jobs in line with `volumes` and the book's policies: starts, restarts, stops. */
  private apply(volumes: readonly ScheduledVolume[]): void {
    this.backups?.apply(volumes, (name) => this.book.policy(name));
    const wanted = new Map<string, ScheduledVolume>();
    for (const v of volumes) {
      const p = this.book.policy(v.policy);
      if (p?.schedule) wanted.set(v.volume, v);
    }
    for (const [volume, job] of this.jobs) {
      const w = wanted.get(volume);
      const p = w && this.book.policy(w.policy);
      if (!w || !p || w.policy !== job.policy || w.backend !== job.backend || p.schedule !== job.schedule) {
        void job.task.destroy();
        this.jobs.delete(volume);
        this.log.info({ volume, policy: job.policy, op: 'schedule' }, 'schedule stopped');
      } else {
        job.keep = p.keep;
      }
    }
    for (const [volume, v] of wanted) {
      if (this.jobs.has(volume)) continue;
      const p = this.book.policy(v.policy)!;
      this.startJob(v, p.schedule!, p.keep);
    }
  }

  private startJob(v: ScheduledVolume, schedule: string, keep: string | null): void {
    const cron = startCronTask({ schedule, name: `ferry:${v.volume}`, volume: v.volume, policy: v.policy, what: 'schedule', log: this.log, onTick: (at) => void this.tick(v.volume, at ?? this.now()) });
    if (!cron) return;
    const { fields, task } = cron;
    this.jobs.set(v.volume, { volume: v.volume, backend: v.backend, policy: v.policy, schedule, keep, fields, task });
    this.log.info({ volume: v.volume, policy: v.policy, schedule, op: 'schedule' }, 'schedule started');
    // A host down (or ferry stopped) at scheduled times owes one snapshot, not a burst.
    const last = this.book.lastRun(v.volume, v.policy) ?? null;
    const c = catchUp(fields, last, this.now());
    if (last === null) this.book.ran(v.volume, v.policy, this.now()); // counts missed runs from now on
    if (c.run) {
      this.log.info({ volume: v.volume, policy: v.policy, missed: c.missed, since: c.missedSince?.toISOString() }, 'catch-up snapshot');
      void this.runLogged(v.volume, 'catch-up');
    }
  }

  private runLogged(volume: string, why: 'scheduled' | 'catch-up'): Promise<void> {
    return this.track(this.runAndLog(volume, why));
  }

  private track(work: Promise<void>): Promise<void> {
    const p = work.finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  /**
   * group (issue 7 item 2): one cron tick of `volume`'s job. Every job of the same policy and schedule
   * fires at the same scheduled second; the first of them handles them all: the volumes whose
   * containers share a Compose project are taken together (takeGroup, group = the project), the
   * others alone. The rest of that second's ticks find it done.
   */
  private tick(volume: string, scheduled: Date): Promise<void> {
    const job = this.jobs.get(volume);
    if (!job) return Promise.resolve();
    const key = `${job.policy}\n${job.schedule}`;
    const second = Math.floor(scheduled.getTime() / 1000);
    if (this.ticks.get(key) === second) return Promise.resolve();
    this.ticks.set(key, second);
    const fellows = [...this.jobs.values()].filter((j) => j.policy === job.policy && j.schedule === job.schedule && !this.running.has(j.volume)).map((j) => j.volume);
    if (fellows.length < 2 || !this.containers) return this.runLogged(volume, 'scheduled');
    return this.track(this.tickTogether(fellows));
  }

  private async tickTogether(volumes: string[]): Promise<void> {
    let containers: TickContainer[];
    try {
      containers = await this.containers!(volumes);
    } catch (err) {
      // No dockerd answer: no groups to know of; the schedule still runs, each volume alone.
      this.log.warn({ err, volumes }, 'cannot list the containers of scheduled volumes: each is snapshotted alone');
      containers = [];
    }
    const plan = scheduleGroups(volumes, containers);
    for (const a of plan.ambiguous) this.log.warn({ volume: a.volume, projects: a.projects }, 'containers of several Compose projects use a volume: it is snapshotted alone');
    await Promise.all([
      ...plan.singles.map((v) => this.runAndLog(v, 'scheduled')),
      ...plan.groups.map(async (g) => {
        try {
          const rs = await this.runGroup(g.project, g.volumes);
          for (const r of rs) this.log.info({ op: 'scheduled-snapshot', why: 'scheduled', group: g.project, ...r }, 'scheduled snapshot taken');
        } catch (err) {
          this.log.error({ err, group: g.project, volumes: g.volumes, op: 'scheduled-snapshot' }, 'scheduled group snapshot failed: none of its volumes was snapshotted');
        }
      }),
    ]);
  }

  /**
   * group: one run of the schedule of `volumes` (same policy) as group `project`: one snapshot name,
   * one instant, all or none (Snapshots.takeGroup), then each volume's retention. With control
   * unreachable, each volume alone as `run` does offline. Volumes whose previous run still goes on
   * are left to their next tick.
   */
  async runGroup(project: string, volumes: readonly string[]): Promise<RunResult[]> {
    const jobs = volumes.map((v) => this.jobs.get(v)).filter((j): j is Job => !!j && !this.running.has(j.volume));
    if (jobs.length === 0) return [];
    const at = this.now();
    for (const j of jobs) this.running.add(j.volume);
    try {
      const name = scheduleSnapshotName(jobs[0].policy, at);
      let offline = false;
      try {
        await this.snapshots.takeGroup(project, jobs.map((j) => j.volume), { name, origin: 'schedule', policy: jobs[0].policy });
      } catch (err) {
        if (!isFerryError(err, 'NODE_UNREACHABLE')) throw err;
        offline = true;
      }
      const results: RunResult[] = [];
      for (const j of jobs) {
        // Offline: the group cannot be recorded; each volume is snapshotted on its backend, recorded later.
        const taken = offline ? await this.take(j, at) : { name, offline: false };
        this.book.ran(j.volume, j.policy, at);
        results.push(await this.retain(j, taken.name, taken.offline));
      }
      return results;
    } finally {
      for (const j of jobs) this.running.delete(j.volume);
    }
  }

  private async runAndLog(volume: string, why: 'scheduled' | 'catch-up'): Promise<void> {
    try {
      const r = await this.run(volume);
      if (r) this.log.info({ op: 'scheduled-snapshot', why, ...r }, 'scheduled snapshot taken');
    } catch (err) {
      this.log.error({ err, volume, op: 'scheduled-snapshot', why }, 'scheduled snapshot failed');
    }
  }

  /**
   * One run of `volume`'s schedule now: a snapshot, then retention. Skipped (undefined) while the
   * previous run of the volume is still going, or when no job runs for it.
   */
  async run(volume: string): Promise<RunResult | undefined> {
    const job = this.jobs.get(volume);
    if (!job || this.running.has(volume)) return undefined;
    const at = this.now();
    // A catch-up and a cron tick in the same second would want the same name: one snapshot is enough.
    const last = this.book.lastRun(volume, job.policy);
    if (last && Math.floor(last.getTime() / 1000) === Math.floor(at.getTime() / 1000)) return undefined;
    this.running.add(volume);
    try {
      const { name, offline } = await this.take(job, at);
      this.book.ran(volume, job.policy, at);
      return await this.retain(job, name, offline);
    } finally {
      this.running.delete(volume);
    }
  }

  /** After a run's snapshot `name`: retention, unless control is away or the policy keeps everything. */
  private async retain(job: Job, name: string, offline: boolean): Promise<RunResult> {
    const result: RunResult = { volume: job.volume, snapshot: name, offline, pruned: [] };
    if (job.keep === null) return result;
    if (offline) return { ...result, pruneSkipped: 'control is unreachable: which bases standbys need is not known' };
    try {
      result.pruned = await this.prune(job);
    } catch (err) {
      const e = toFerryError(err);
      if (!isFerryError(e, 'NODE_UNREACHABLE')) throw e;
      result.pruneSkipped = 'control became unreachable';
    }
    return result;
  }

  /** Takes the snapshot through Snapshots; with control unreachable, on the backend directly, recorded later. */
  private async take(job: Job, at: Date): Promise<{ name: string; offline: boolean }> {
    const name = scheduleSnapshotName(job.policy, at);
    try {
      const s = await this.snapshots.take(job.volume, { name, origin: 'schedule', policy: job.policy });
      return { name: s.name, offline: false };
    } catch (err) {
      if (!isFerryError(err, 'NODE_UNREACHABLE')) throw err;
    }
    // The last policy heard says this host is the primary: snapshots go on; control hears of them later.
    await this.lock.run(job.volume, async () => {
      const backend = requireSnapshots(this.backends.backendFor(job.backend), job.volume, 'snapshot');
      if (!(await backend.listSnapshots(job.volume)).includes(name)) await backend.snapshot(job.volume, name);
    });
    this.book.addPending({ volume: job.volume, name, node: this.node, origin: 'schedule', createdAt: at.toISOString(), policy: job.policy });
    return { name, offline: true };
  }

  /** Records with control the snapshots taken while it was away (a volume gone meanwhile: dropped). */
  private async flushPending(): Promise<void> {
    const done: SnapshotReport[] = [];
    for (const r of this.book.pending()) {
      try {
        await this.control.recordSnapshot(r);
        done.push(r);
      } catch (err) {
        if (isFerryError(err, 'NODE_UNREACHABLE')) break;
        this.log.warn({ err, volume: r.volume, snapshot: r.name }, 'cannot record a snapshot taken while control was away; dropping the record');
        done.push(r);
      }
    }
    if (done.length) this.book.dropPending(done);
  }

  /**
   * Deletes the schedule's snapshots of `job.volume` that its keep spec no longer keeps: those this
   * host holds (its backend's list and control's registry), protecting the newest snapshot each other
   * host holds (a standby's base for its next increment).
   */
  private async prune(job: Job): Promise<string[]> {
    const keep = parseKeepSpec(job.keep);
    // What was taken while control was away is recorded first: a pruned one must not be recorded after.
    await this.flushPending();
    const registry = await this.control.snapshotsOf(job.volume);
    const onDisk = await this.lock.run(job.volume, async () =>
      requireSnapshots(this.backends.backendFor(job.backend), job.volume, 'list the snapshots of').listSnapshots(job.volume),
    );
    const plan = planRetention({
      snapshots: snapshotsHere(onDisk, registry, job.policy),
      policy: job.policy,
      keep,
      now: this.now(),
      protectedNames: standbyBases(registry, this.node),
    });
    const pruned: string[] = [];
    for (const d of plan.delete) {
      await this.snapshots.remove(job.volume, d.name);
      pruned.push(d.name);
      this.log.info({ volume: job.volume, op: 'prune', snapshot: d.name, why: d.reasons[0] }, 'scheduled snapshot deleted');
    }
    return pruned;
  }
}

/**
 * The snapshots of a volume on this host as retention sees them (pure): every name on disk, with the
 * registry's time where it has one, else the time in a scheduled name; a name without either has an
 * unreadable time (retention keeps it).
 */
export function snapshotsHere(onDisk: readonly string[], registry: readonly SnapshotRecord[], policy: string): RetainedSnapshot[] {
  const times = new Map(registry.map((s) => [s.name, s.createdAt]));
  return onDisk.map((name) => ({ name, createdAt: times.get(name) ?? scheduleTimeOf(name, policy)?.toISOString() ?? '' }));
}

/** The newest snapshot each host but `node` holds, by name, with why it is protected (pure). */
export function standbyBases(registry: readonly SnapshotRecord[], node: string): Map<string, string> {
  const newest = new Map<string, SnapshotRecord>();
  for (const s of registry) {
    for (const h of s.hosts) {
      if (h === node) continue;
      const cur = newest.get(h);
      if (!cur || Date.parse(s.createdAt) >= Date.parse(cur.createdAt)) newest.set(h, s);
    }
  }
  const hostsOf = new Map<string, string[]>();
  for (const [h, s] of newest) hostsOf.set(s.name, [...(hostsOf.get(s.name) ?? []), h]);
  return new Map([...hostsOf].map(([name, hosts]) => [name, `the newest snapshot on ${hosts.sort().join(', ')} (a standby's base)`]));
}
