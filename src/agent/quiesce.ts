import { FerryError } from '../errors';
import type { Logger } from '../log';
import type { ControlClient } from '../wire/control-client';
import type { CgroupFreezer, FreezerDir } from './cgroup-freezer';
import type { ExecResult } from './docker-host';
import type { Quiescer } from './snapshots';
import {
  DEFAULT_HOOK_TIMEOUT_MS,
  postHookTargets,
  planQuiesce,
  quiesceOutcome,
  type HostContainer,
  type QuiesceMode,
  type QuiesceReport,
  type QuiesceTarget,
  type StepFailure,
} from './quiesce-plan';

/** What quiescing needs of dockerd (DockerHost has it). */
export interface QuiesceDocker {
  containersWithVolumes(volumes: readonly string[]): Promise<HostContainer[]>;
  projectContainers(project: string): Promise<HostContainer[]>;
  exec(id: string, argv: readonly string[], timeoutMs: number): Promise<ExecResult>;
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  /** group: the container's main process id on this host (0 when not running), to find its cgroup. */
  pidOf?(id: string): Promise<number>;
}

/** Tries an unpause this many times: a container left frozen is the one thing quiescing must not do. */
const UNPAUSE_ATTEMPTS = 3;

/**
 * Consistent snapshots (issue 7 item 2): runs an action (taking snapshots) with the containers that
 * use its volumes on this host hooked (`ferry.pre-snapshot` / `ferry.post-snapshot` labels, run with
 * `docker exec`) and, in mode `pause`, frozen: by writing the container's cgroup freezer directly
 * where this process can reach it (CgroupFreezer, crash-safe), else by dockerd's pause. Every container
 * paused is unpaused and every pre hook that ran gets its post hook, whatever fails on the way.
 */
export class ContainerQuiescer implements Quiescer {
  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly docker: QuiesceDocker | undefined,
    private readonly log: Logger,
    private readonly hookTimeoutMs = DEFAULT_HOOK_TIMEOUT_MS,
    /** group: pauses by the cgroup freezer directly where this process can reach it; else dockerd's pause. */
    private readonly freezer?: CgroupFreezer,
  ) {}

  /** Snapshots' hook: `work` with the containers using `volume` quiesced. */
  async around<T>(volume: string, mode: QuiesceMode, work: () => Promise<T>): Promise<T> {
    return (await this.aroundAll([volume], mode, work)).value;
  }

  /**
   * Runs `action` with the containers using `volumes` quiesced; answers its value and what happened.
   * QUIESCE_FAILED when a pre hook or a pause fails (the action never ran) or a container could not
   * be unpaused; the action's own error otherwise. Without a dockerd, mode `none` just runs the action
   * (no labels to read) and mode `pause` is refused.
   */
  async aroundAll<T>(volumes: readonly string[], mode: QuiesceMode, action: () => Promise<T>): Promise<{ value: T; report: QuiesceReport }> {
    const report: QuiesceReport = { mode, containers: [], paused: [], pausedMs: null, hooks: [], warnings: [] };
    if (!this.docker) {
      if (mode === 'pause') {
        throw new FerryError('BACKEND_UNAVAILABLE', `host ${this.node} has no dockerd to pause containers with: snapshot with --quiesce none`);
      }
      return { value: await action(), report };
    }
    const docker = this.docker;
    const targets = planQuiesce(await docker.containersWithVolumes(volumes), volumes, mode, this.hookTimeoutMs);
    report.containers = targets.map((t) => t.name);
    const failures: StepFailure[] = [];
    const paused: QuiesceTarget[] = [];
    /** group: the paused containers frozen through their cgroup (the others through dockerd). */
    const frozen = new Map<string, FreezerDir>();
    let reached = 0;
    let pausedAt = 0;
    let ran = false;
    let value: T | undefined;
    let actionError: unknown;
    try {
      for (const t of targets) {
        reached++;
        if (!t.pre) continue;
        const failure = await this.hook(t, 'pre', report);
        if (failure) {
          failures.push(failure);
          break;
        }
      }
      if (failures.length === 0) {
        const toPause = targets.filter((t) => t.pause);
        // Found before the instant: the containers stay paused only for the freeze, the action and the thaw.
        const dirs = await this.freezersOf(toPause);
        pausedAt = performance.now();
        // All at once: a group's containers stop as close to the same instant as dockerd allows.
        const results = await Promise.allSettled(
          toPause.map(async (t) => {
            const d = dirs.get(t.id);
            if (d) {
              await this.freezer!.freeze(t.name, d);
              frozen.set(t.id, d);
            } else await docker.pause(t.id);
          }),
        );
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') paused.push(toPause[i]);
          else failures.push({ container: toPause[i].name, step: 'pause', message: (r.reason as Error).message });
        });
        if (failures.length === 0) {
          try {
            value = await action();
            ran = true;
          } catch (err) {
            actionError = err;
          }
        }
      }
    } catch (err) {
      // Unexpected (dockerd gone mid-way): still release below, then fail as a pre step would.
      failures.push({ container: targets[Math.max(0, reached - 1)]?.name ?? '?', step: 'pre', message: (err as Error).message });
    } finally {
      await Promise.all(paused.map((t) => this.unpause(t, failures, frozen.get(t.id))));
      if (paused.length > 0) report.pausedMs = Math.round(performance.now() - pausedAt);
      report.paused = paused.map((t) => t.name);
      for (const t of postHookTargets(targets, reached)) {
        const failure = await this.hook(t, 'post', report);
        if (failure) failures.push(failure);
      }
    }
    const outcome = quiesceOutcome({ volumes, failures, actionError: ran ? undefined : actionError });
    report.warnings = outcome.warnings;
    for (const w of outcome.warnings) this.log.warn({ volumes, warning: w }, 'snapshot taken, a post-snapshot hook failed');
    if (report.paused.length > 0) {
      this.log.info({ volumes, containers: report.paused, pausedMs: report.pausedMs }, 'containers paused for a snapshot');
      await this.event(volumes, 'snapshot-paused', `paused ${report.paused.join(', ')} for ${report.pausedMs} ms`);
    }
    if (outcome.error) throw outcome.error;
    return { value: value as T, report };
  }

  /**
   * The named volumes the running containers of Compose project `project` use on this host, sorted;
   * VOLUME_NOT_FOUND when it has none here.
   */
  async projectVolumes(project: string): Promise<string[]> {
    if (!this.docker) throw new FerryError('BACKEND_UNAVAILABLE', `host ${this.node} has no dockerd to find Compose project ${project} with`);
    const volumes = [...new Set((await this.docker.projectContainers(project)).flatMap((c) => c.volumes))].sort();
    if (volumes.length === 0) {
      throw new FerryError('VOLUME_NOT_FOUND', `no running container of Compose project ${project} uses a named volume on host ${this.node}: name the volumes, or start the project here`);
    }
    return volumes;
  }

  /** Runs one hook, records it (log, event log); answers its failure, if any. */
  private async hook(t: QuiesceTarget, step: 'pre' | 'post', report: QuiesceReport): Promise<StepFailure | undefined> {
    const argv = (step === 'pre' ? t.pre : t.post)!;
    let r: ExecResult;
    try {
      r = await this.docker!.exec(t.id, argv, t.timeoutMs);
    } catch (err) {
      r = { exitCode: null, timedOut: false, output: (err as Error).message, durationMs: 0 };
    }
    report.hooks.push({ container: t.name, step, ...r });
    const ok = r.exitCode === 0;
    const how = r.timedOut ? `timed out after ${t.timeoutMs} ms` : r.exitCode === null ? 'could not run' : `exited ${r.exitCode} after ${r.durationMs} ms`;
    const output = r.output.trim();
    const detail = `${step}-snapshot hook in container ${t.name} ${how}${output ? `: ${output}` : ''}`;
    this.log[ok ? 'info' : 'warn']({ container: t.name, step, exitCode: r.exitCode, timedOut: r.timedOut, durationMs: r.durationMs }, 'ran a snapshot hook');
    await this.event(t.volumes, ok ? 'snapshot-hook' : 'snapshot-hook-failed', detail);
    if (ok) return undefined;
    return { container: t.name, step, message: `${how}${output ? ` (${output.split('\n').slice(-3).join(' | ').slice(-300)})` : ''}` };
  }

  /** group: each target's cgroup freezer, where this process can reach it (none: dockerd pauses it). */
  private async freezersOf(targets: readonly QuiesceTarget[]): Promise<Map<string, FreezerDir>> {
    const out = new Map<string, FreezerDir>();
    const docker = this.docker;
    if (!this.freezer || !docker?.pidOf || targets.length === 0) return out;
    await Promise.all(
      targets.map(async (t) => {
        const d = await this.freezer!.resolve(await docker.pidOf!(t.id).catch(() => 0));
        // A pid read in another pid namespace could be another process: only the container's own cgroup (named by its id).
        if (d && d.dir.includes(t.id)) out.set(t.id, d);
      }),
    );
    return out;
  }

  private async unpause(t: QuiesceTarget, failures: StepFailure[], frozen?: FreezerDir): Promise<void> {
    let last: unknown;
    for (let attempt = 1; attempt <= UNPAUSE_ATTEMPTS; attempt++) {
      try {
        if (frozen) await this.freezer!.thaw(t.name, frozen);
        else await this.docker!.unpause(t.id);
        return;
      } catch (err) {
        last = err;
        this.log.warn({ err, container: t.name, attempt }, 'cannot unpause a container after a snapshot');
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
    failures.push({ container: t.name, step: 'unpause', message: (last as Error).message });
  }

  /** Events are for people: one that cannot be recorded is logged, never fails the snapshot. */
  private async event(volumes: readonly string[], kind: string, detail: string): Promise<void> {
    for (const volume of volumes) {
      try {
        await this.control.recordEvent({ volume, node: this.node, kind, detail: detail.slice(0, 4000) });
      } catch (err) {
        this.log.warn({ err, volume, kind }, 'cannot record an event');
      }
    }
  }
}
