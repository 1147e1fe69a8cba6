import { FerryError, toFerryError } from '../errors';
import type { QuiesceMode } from '../volume/options';

export type { QuiesceMode } from '../volume/options';

/**
 * The pure half of consistent snapshots (DESIGN: decide, then act): which containers to quiesce, the
 * hooks their labels ask for, which post hooks run after a failure, and what the caller is told.
 * `quiesce.ts` acts on these decisions with dockerd.
 */

/** Container labels ferry reads. */
export const HOOK_LABELS = {
  pre: 'ferry.pre-snapshot',
  post: 'ferry.post-snapshot',
  /** How long each hook of that container may run: "30s", "2m", "500ms" or plain seconds. */
  timeout: 'ferry.hook-timeout',
} as const;

/** The label Docker Compose puts on a project's containers. */
export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';

/** A hook's default time limit; a container's `ferry.hook-timeout` label overrides it. */
export const DEFAULT_HOOK_TIMEOUT_MS = 30_000;
/** The longest a hook may be given: dockerd allows a plugin's request 1-2 minutes, a CLI user waits. */
export const MAX_HOOK_TIMEOUT_MS = 10 * 60_000;

/** A container on this host as dockerd lists it, reduced to what quiescing needs. */
export interface HostContainer {
  id: string;
  name: string;
  /** dockerd's state: running, paused, restarting, exited, created, ... */
  state: string;
  labels: Readonly<Record<string, string>>;
  /** Names of the named volumes it mounts. */
  volumes: string[];
}

/** One container to quiesce and what to do with it. */
export interface QuiesceTarget {
  id: string;
  name: string;
  /** Which of the snapshotted volumes it uses (for the event log). */
  volumes: string[];
  pre: string[] | null;
  post: string[] | null;
  timeoutMs: number;
  /** Pause it (mode pause). */
  pause: boolean;
}

/**
 * A hook label as an argv (pure). `["pg_ctl", "..."]` (a JSON array, Docker's exec form) runs as
 * given; any other text runs as `sh -c TEXT` inside the container (Docker's shell form). Absent or
 * blank: no hook. Throws INVALID_OPTION naming the container and label for a malformed array.
 */
export function parseHook(text: string | undefined, container: string, label: string): string[] | null {
  if (text === undefined || text.trim() === '') return null;
  const t = text.trim();
  if (!t.startsWith('[')) return ['sh', '-c', t];
  let parsed: unknown;
  try {
    parsed = JSON.parse(t);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((a) => typeof a === 'string') || parsed[0] === '') {
    throw new FerryError(
      'INVALID_OPTION',
      `container ${container}: label ${label} is not a JSON array of strings: write it as ["cmd", "arg"] or as a shell command line`,
    );
  }
  return parsed as string[];
}

/** A duration such as "30s", "2m", "500ms" or "45" (seconds) in ms (pure); null when malformed. */
export function parseDurationMs(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  return Math.round(ms);
}

/** A container's hook timeout (pure): its label, else the default; INVALID_OPTION when out of range. */
export function hookTimeoutMs(labels: Readonly<Record<string, string>>, container: string, defaultMs: number): number {
  const text = labels[HOOK_LABELS.timeout];
  if (text === undefined) return defaultMs;
  const ms = parseDurationMs(text);
  if (ms === null || ms < 1 || ms > MAX_HOOK_TIMEOUT_MS) {
    throw new FerryError(
      'INVALID_OPTION',
      `container ${container}: label ${HOOK_LABELS.timeout}=${JSON.stringify(text)} is not a duration between 1ms and ${MAX_HOOK_TIMEOUT_MS / 60_000}m (for example 30s)`,
    );
  }
  return ms;
}

/**
 * The containers to quiesce around a snapshot of `volumes` (pure), in name order (the order pre
 * hooks run; post hooks run in reverse). Only running containers count: a stopped one writes nothing,
 * and one paused by someone else is frozen already (dockerd refuses `exec` there, and ferry must not
 * undo a pause it did not make). In mode `none` only containers with a hook are kept.
 */
export function planQuiesce(containers: readonly HostContainer[], volumes: readonly string[], mode: QuiesceMode, defaultTimeoutMs: number): QuiesceTarget[] {
  const wanted = new Set(volumes);
  const targets: QuiesceTarget[] = [];
  for (const c of containers) {
    if (c.state !== 'running') continue;
    const used = [...new Set(c.volumes.filter((v) => wanted.has(v)))].sort();
    if (used.length === 0) continue;
    const pre = parseHook(c.labels[HOOK_LABELS.pre], c.name, HOOK_LABELS.pre);
    const post = parseHook(c.labels[HOOK_LABELS.post], c.name, HOOK_LABELS.post);
    const target: QuiesceTarget = {
      id: c.id,
      name: c.name,
      volumes: used,
      pre,
      post,
      timeoutMs: hookTimeoutMs(c.labels, c.name, defaultTimeoutMs),
      pause: mode === 'pause',
    };
    if (target.pause || pre || post) targets.push(target);
  }
  return targets.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The post hooks to run (pure), in the order to run them: those of the containers reached before
 * (and including) the first failed pre hook, newest first, so a hook that may have half-locked its
 * application (a timed-out `FLUSH TABLES WITH READ LOCK`) is undone too. `reached`: how many targets'
 * pre steps ran, counting the one that failed; all of them when every pre hook passed.
 */
export function postHookTargets(targets: readonly QuiesceTarget[], reached: number): QuiesceTarget[] {
  return targets
    .slice(0, Math.max(0, Math.min(reached, targets.length)))
    .filter((t) => t.post !== null)
    .reverse();
}

/** How one step that touched a container went. */
export interface StepFailure {
  container: string;
  step: 'pre' | 'pause' | 'unpause' | 'post';
  message: string;
}

/** What a quiesced action ends with (pure): the error to throw, if any, and what to warn about. */
export interface QuiesceOutcome {
  error: FerryError | null;
  warnings: string[];
}

/**
 * What the caller is told once every container is released (pure). A failed pre hook or pause fails
 * the snapshot (it never ran); the action's own error stands; a container ferry could not unpause
 * fails it too, naming what to run, since a frozen container is worse than a missing snapshot; a
 * failed post hook is a warning (the snapshot is good; the hook's output is in the event log).
 */
export function quiesceOutcome(o: { volumes: readonly string[]; failures: readonly StepFailure[]; actionError?: unknown }): QuiesceOutcome {
  const what = `volume${o.volumes.length === 1 ? '' : 's'} ${o.volumes.join(', ')}`;
  const first = (step: StepFailure['step']): StepFailure | undefined => o.failures.find((f) => f.step === step);
  const warnings = o.failures.filter((f) => f.step === 'post').map((f) => `post-snapshot hook of container ${f.container} failed: ${f.message}`);
  const stuck = o.failures.filter((f) => f.step === 'unpause');
  const pre = first('pre');
  const pause = first('pause');
  let error: FerryError | null = null;
  if (pre) {
    error = new FerryError(
      'QUIESCE_FAILED',
      `snapshot of ${what} not taken: the pre-snapshot hook of container ${pre.container} failed: ${pre.message}; fix the hook (label ${HOOK_LABELS.pre}) or snapshot with --quiesce none`,
      { details: { container: pre.container, step: 'pre' } },
    );
  } else if (pause) {
    error = new FerryError('QUIESCE_FAILED', `snapshot of ${what} not taken: cannot pause container ${pause.container}: ${pause.message}`, {
      details: { container: pause.container, step: 'pause' },
    });
  } else if (o.actionError !== undefined) {
    error = toFerryError(o.actionError);
  }
  if (stuck.length > 0) {
    const names = stuck.map((f) => f.container);
    const msg = `containers ${names.join(', ')} are still paused after the snapshot of ${what} (${stuck[0].message}): run docker unpause ${names.join(' ')}`;
    // The earlier error says why the snapshot failed; the stuck containers matter more to the user.
    error = new FerryError('QUIESCE_FAILED', error ? `${error.message}; and ${msg}` : msg, { cause: error ?? undefined, details: { stuck: names } });
  }
  return { error, warnings };
}

/** One hook as it ran. */
export interface HookRun {
  container: string;
  step: 'pre' | 'post';
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  output: string;
}

/** What happened to the containers around one quiesced action. */
export interface QuiesceReport {
  mode: QuiesceMode;
  /** The containers quiesced (hooked or paused), in the order their pre hooks ran. */
  containers: string[];
  /** The containers ferry paused. */
  paused: string[];
  /** From the first pause asked to the last unpause answered, in ms; null when nothing was paused. */
  pausedMs: number | null;
  hooks: HookRun[];
  /** Post hooks that failed (the snapshot stands); also in the log and the event log. */
  warnings: string[];
}
