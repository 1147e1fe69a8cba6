import { randomBytes } from 'node:crypto';
import { isFerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { drillDue, drillVolumeName, drillWaitMs, outputTail, parseVerifyWith } from '../volume/restore-drill';
import type { ControlClient } from '../wire/control-client';
import type { BackupRunner } from './backup-runner';
import type { DockerHost } from './docker-host';
import type { ScheduleBook } from './schedule-book';
import type { VolumeService } from './volume-service';

/** A volume whose policy asks for a restore drill. */
export interface DrillJob {
  volume: string;
  policy: string;
  bank: string;
  everySeconds: number;
  /** "IMAGE COMMAND" */
  verifyWith: string;
}

/** What one drill found (the `restore-drill` event says the same). */
export interface DrillResult {
  volume: string;
  bank: string;
  checkpoint: string;
  scratch: string;
  passed: boolean;
  /** The command's exit code; null when it timed out or never ran. */
  exitCode: number | null;
  timedOut: boolean;
  /** The output's tail, or why the drill could not run the command. */
  output: string;
  durationMs: number;
}

/** The label on a drill's container: a crash's leftover container is found by it. */
export const DRILL_LABEL = 'ferry.restore-drill';
/** How long a drill's command may run before it is killed and the drill fails. */
export const DRILL_TIMEOUT_MS = 10 * 60_000;
/** How long a volume waits to be checked again when its bank held no checkpoint of it, at most. */
const NO_CHECKPOINT_RETRY_MS = 60_000;
/** The longest sleep between checks (a new policy is applied at once anyway). */
const MAX_SLEEP_MS = 10 * 60_000;

/**
 * bank-policy (issue 8 item 5): restore drills of this host's volumes (agent part, handed its jobs by
 * BackupSchedules). When a volume's drill is due (src/volume/restore-drill.ts: every `verify-every`,
 * one after downtime), the newest checkpoint of the volume in the policy's bank is restored into a
 * scratch volume `ferry-drill-<8 hex>` (Backups.restore: the real restore path), `sh -c COMMAND` runs
 * in IMAGE with it at /data (dockerd, `docker run --rm`), a `restore-drill` event records pass or
 * fail with the exit code and the output's tail, and the scratch volume is removed whatever happened.
 * Scratch names are in the ScheduleBook before the volume is made, so those a crash left are removed
 * at the next start (`cleanLeftovers`); the plugin's List leaves them out (docker volume ls).
 */
export class RestoreDrills {
  private jobs = new Map<string, DrillJob>();
  private readonly running = new Set<string>();
  /** Volumes whose bank held no checkpoint: not asked again before then (ms). */
  private readonly notBefore = new Map<string, number>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly node: string,
    private readonly control: Pick<ControlClient, 'recordEvent'>,
    private readonly backups: Pick<BackupRunner, 'list' | 'restore'>,
    private readonly docker: Pick<DockerHost, 'runOnce' | 'removeLabelled' | 'removeVolume'> | undefined,
    private readonly volumes: Pick<VolumeService, 'remove'>,
    private readonly book: ScheduleBook,
    /** The name dockerd knows this plugin by (the plugin socket's name). */
    private readonly driver: string,
    private readonly log: Logger,
    private readonly o: { timeoutMs?: number; now?: () => Date } = {},
  ) {}

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** The drills this host keeps. */
  scheduled(): DrillJob[] {
    return [...this.jobs.values()];
  }

  /** Replaces the jobs and checks at once which are due. */
  apply(jobs: readonly DrillJob[]): void {
    if (this.stopped) return;
    const before = this.jobs;
    this.jobs = new Map(jobs.map((j) => [j.volume, j]));
    for (const v of before.keys()) if (!this.jobs.has(v)) this.log.info({ volume: v, op: 'restore-drill' }, 'restore drill stopped');
    for (const j of jobs) if (!before.has(j.volume)) this.log.info({ volume: j.volume, policy: j.policy, every: j.everySeconds, op: 'restore-drill' }, 'restore drill started');
    this.wake(0);
  }

  private wake(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  /** Starts each due drill, then sleeps until the next one can be due. */
  private async tick(): Promise<void> {
    const now = this.now();
    let sleep = MAX_SLEEP_MS;
    for (const j of this.jobs.values()) {
      const wait = Math.max(drillWaitMs(this.book.lastDrill(j.volume, j.policy) ?? null, j.everySeconds, now), (this.notBefore.get(j.volume) ?? 0) - now.getTime());
      if (wait > 0 || this.running.has(j.volume)) {
        sleep = Math.min(sleep, Math.max(wait, 1000));
        continue;
      }
      sleep = Math.min(sleep, j.everySeconds * 1000);
      this.track(this.check(j.volume).catch((err: unknown) => this.log.error({ err, volume: j.volume, op: 'restore-drill' }, 'restore drill failed to run')));
    }
    this.wake(Math.max(sleep, 1000));
  }

  private track(p: Promise<unknown>): void {
    const t = p.finally(() => this.inFlight.delete(t));
    this.inFlight.add(t);
  }

  /** Decides whether `volume`'s drill is due now (listing its checkpoints) and runs it if so. */
  async check(volume: string): Promise<DrillResult | undefined> {
    const j = this.jobs.get(volume);
    if (!j || this.stopped || this.running.has(volume)) return undefined;
    const lastDrill = this.book.lastDrill(volume, j.policy) ?? null;
    if (drillWaitMs(lastDrill, j.everySeconds, this.now()) > 0) return undefined;
    // Held from the listing on: a second tick meanwhile must not start the same drill.
    this.running.add(volume);
    try {
      const checkpoints = await this.backups.list({ bank: j.bank, volume });
      const d = drillDue({ everySeconds: j.everySeconds, lastDrill, checkpoints, now: this.now() });
      if (!d.due) {
        this.log.debug({ volume, reason: d.reason, op: 'restore-drill' }, 'restore drill not due');
        this.notBefore.set(volume, this.now().getTime() + Math.min(NO_CHECKPOINT_RETRY_MS, j.everySeconds * 1000));
        return undefined;
      }
      this.notBefore.delete(volume);
      this.log.info({ volume, reason: d.reason, op: 'restore-drill' }, 'restore drill due');
      return await this.drillHeld(j, d.checkpoint!);
    } finally {
      this.running.delete(volume);
    }
  }

  /** One drill of `j.volume` on `checkpoint` now (see the class comment); undefined while one of the volume runs. */
  async drill(j: DrillJob, checkpoint: string): Promise<DrillResult | undefined> {
    if (this.running.has(j.volume)) return undefined;
    this.running.add(j.volume);
    try {
      return await this.drillHeld(j, checkpoint);
    } finally {
      this.running.delete(j.volume);
    }
  }

  private async drillHeld(j: DrillJob, checkpoint: string): Promise<DrillResult> {
    const started = this.now();
    const scratch = drillVolumeName(randomBytes(4));
    const result: DrillResult = { volume: j.volume, bank: j.bank, checkpoint, scratch, passed: false, exitCode: null, timedOut: false, output: '', durationMs: 0 };
    let made = false;
    try {
      // A failed drill counts as one: a broken bank or check must not be retried in a loop.
      this.book.drilled(j.volume, j.policy, started);
      const { image, command } = parseVerifyWith(j.verifyWith);
      if (!this.docker) throw new Error('this host has no dockerd socket to run the check in');
      this.book.addScratch(scratch);
      try {
        await this.backups.restore(j.bank, j.volume, checkpoint, { as: scratch });
        made = true;
      } catch (err) {
        // Taken by someone else (a name clash): never ours to remove.
        if (isFerryError(err, 'VOLUME_EXISTS')) this.book.dropScratch(scratch);
        else made = true; // a failed restore may have left part of it: the cleanup below looks.
        throw err;
      }
      const run = await this.docker.runOnce({
        image,
        cmd: ['sh', '-c', command],
        mounts: [{ volume: scratch, driver: this.driver, target: '/data' }],
        timeoutMs: this.o.timeoutMs ?? DRILL_TIMEOUT_MS,
        labels: { [DRILL_LABEL]: j.volume },
      });
      Object.assign(result, { exitCode: run.exitCode, timedOut: run.timedOut, output: outputTail(run.output), passed: run.exitCode === 0 && !run.timedOut });
    } catch (err) {
      result.output = `the drill could not run its check: ${toFerryError(err).message}`;
    } finally {
      if (made) await this.removeScratch(scratch);
      result.durationMs = this.now().getTime() - started.getTime();
    }
    await this.record(j, result);
    return result;
  }

  private async record(j: DrillJob, r: DrillResult): Promise<void> {
    const how = r.timedOut ? `timed out after ${Math.round((this.o.timeoutMs ?? DRILL_TIMEOUT_MS) / 1000)} s` : r.exitCode === null ? 'did not run' : `exited ${r.exitCode}`;
    const detail =
      `restore drill of ${r.volume} ${r.passed ? 'passed' : 'FAILED'}: checkpoint ${r.checkpoint} of bank ${r.bank} restored into ${r.scratch}, ` +
      `"${j.verifyWith}" ${how} (${Math.round(r.durationMs / 1000)} s in all); output: ${r.output.trim() || '(none)'}`;
    (r.passed ? this.log.info : this.log.error).call(this.log, { volume: r.volume, bank: r.bank, checkpoint: r.checkpoint, exitCode: r.exitCode, timedOut: r.timedOut, op: 'restore-drill' }, r.passed ? 'restore drill passed' : 'restore drill failed');
    try {
      await this.control.recordEvent({ volume: r.volume, node: this.node, kind: 'restore-drill', detail: detail.slice(0, 4000) });
    } catch (err) {
      this.log.warn({ err, volume: r.volume }, 'cannot record a restore drill event');
    }
  }

  /** Removes a scratch volume through dockerd (so it forgets it too), else through ferry alone; dropped from the book once gone. */
  private async removeScratch(name: string): Promise<void> {
    try {
      const viaDocker = (await this.docker?.removeVolume(name)) ?? false;
      if (!viaDocker) await this.volumes.remove(name);
      this.book.dropScratch(name);
    } catch (err) {
      if (isFerryError(err, 'VOLUME_NOT_FOUND')) {
        this.book.dropScratch(name);
        return;
      }
      this.log.warn({ err, volume: name, op: 'restore-drill' }, 'cannot remove a drill scratch volume yet; it is removed at the next start');
    }
  }

  /**
   * At start, before drills run: the containers and scratch volumes of drills a crash cut off. A
   * scratch volume is removed only when the book names it (ferry made it); one that cannot be yet stays named.
   */
  async cleanLeftovers(): Promise<number> {
    let n = 0;
    if (this.docker) n += await this.docker.removeLabelled(DRILL_LABEL).catch((err: unknown) => (this.log.warn({ err }, 'cannot list drill containers left by a crash'), 0));
    for (const name of [...this.book.scratchVolumes()]) {
      this.log.warn({ volume: name, op: 'restore-drill' }, 'removing the scratch volume of a drill a crash cut off');
      await this.removeScratch(name);
      if (!this.book.scratchVolumes().includes(name)) n++;
    }
    return n;
  }

  /** Stops checking; resolves once drills under way have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.all([...this.inFlight]);
  }
}
