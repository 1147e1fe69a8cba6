import { FerryError } from '../errors';

/**
 * The restore drill of a policy (issue 8 item 5), its pure half: what `--verify-with` means, when a
 * volume's drill is due, and the scratch volume's name. The agent's RestoreDrills acts on these.
 */

/** What `--verify-with "IMAGE COMMAND"` asks: run `sh -c COMMAND` in IMAGE with the restored data at /data. */
export interface VerifyWith {
  image: string;
  command: string;
}

/** A Docker image reference as `docker run` takes it (name, optional registry/port, tag, digest). */
const IMAGE = /^([a-zA-Z0-9][a-zA-Z0-9.-]*(:\d+)?\/)?[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

/** Reads `--verify-with`: the image is the first word, the command the rest; INVALID_OPTION otherwise. */
export function parseVerifyWith(text: unknown): VerifyWith {
  const usage = 'give "IMAGE COMMAND", e.g. "postgres:16 pg_verifybackup /data" or "busybox test -s /data/db.sqlite"';
  if (typeof text !== 'string') throw new FerryError('INVALID_OPTION', `invalid verify-with ${JSON.stringify(text)}: ${usage}`);
  const m = /^\s*(\S+)\s+(\S[\s\S]*?)\s*$/.exec(text);
  if (!m) throw new FerryError('INVALID_OPTION', `invalid verify-with ${JSON.stringify(text)}: it needs an image and a command; ${usage}`);
  if (!IMAGE.test(m[1])) throw new FerryError('INVALID_OPTION', `invalid verify-with ${JSON.stringify(text)}: ${JSON.stringify(m[1])} is not an image reference; ${usage}`);
  return { image: m[1], command: m[2] };
}

/** A checkpoint a drill may restore. */
export interface DrillCheckpoint {
  id: string;
  /** ISO-8601 UTC */
  time: string;
}

/** How long until a volume's drill is due by time alone (pure): 0 when due now. */
export function drillWaitMs(lastDrill: Date | null, everySeconds: number, now: Date): number {
  if (lastDrill === null) return 0;
  const since = now.getTime() - lastDrill.getTime();
  // A drill recorded after now: the clock was stepped back; waiting for it could take a year.
  if (since < 0) return 0;
  return Math.max(0, everySeconds * 1000 - since);
}

/** What a drill check decided for one volume. */
export interface DrillDecision {
  due: boolean;
  /** The checkpoint to restore, when due. */
  checkpoint?: string;
  reason: string;
}

/**
 * Whether volume's restore drill runs now (pure): when `everySeconds` passed since the last drill (or
 * there was none, or it is dated after now), on the newest of `checkpoints` (the volume's, in the
 * policy's bank, any origin). Never without a checkpoint; never while one of the volume's drills runs.
 * After downtime this is one drill, not one per missed interval.
 */
export function drillDue(input: {
  everySeconds: number | null;
  lastDrill: Date | null;
  checkpoints: readonly DrillCheckpoint[];
  now: Date;
  running?: boolean;
}): DrillDecision {
  const { everySeconds, lastDrill, now } = input;
  if (everySeconds === null) return { due: false, reason: 'the policy asks for no drill' };
  if (input.running) return { due: false, reason: 'a drill of the volume is under way' };
  const wait = drillWaitMs(lastDrill, everySeconds, now);
  if (wait > 0) return { due: false, reason: `the last drill was at ${lastDrill!.toISOString()}: the next is due in ${Math.ceil(wait / 1000)} s` };
  let newest: DrillCheckpoint | undefined;
  let newestMs = -Infinity;
  for (const c of input.checkpoints) {
    const ms = Date.parse(c.time);
    // Ids sort by time too (yyyymmddThhmmssZ-<hex>): they break ties, so the choice is stable.
    if (!Number.isNaN(ms) && (ms > newestMs || (ms === newestMs && newest !== undefined && c.id > newest.id))) {
      newest = c;
      newestMs = ms;
    }
  }
  if (!newest) return { due: false, reason: 'the bank holds no checkpoint of the volume yet: nothing to restore' };
  const why =
    lastDrill === null
      ? 'no drill yet'
      : lastDrill.getTime() > now.getTime()
        ? `the last drill is dated ${lastDrill.toISOString()}, after now (the clock was stepped back)`
        : `${everySeconds} s passed since the last drill at ${lastDrill.toISOString()}`;
  return { due: true, checkpoint: newest.id, reason: `${why}: restore ${newest.id}` };
}

/** Scratch volumes of drills: `ferry-drill-<8 hex>`; the hex is random, and the name is checked free first. */
export const DRILL_VOLUME_PREFIX = 'ferry-drill-';
const DRILL_VOLUME = /^ferry-drill-[0-9a-f]{8}$/;

/** The scratch volume name for random bytes `rand` (pure; 4 bytes). */
export function drillVolumeName(rand: Buffer): string {
  if (rand.length < 4) throw new FerryError('INTERNAL', 'a drill volume name needs 4 random bytes');
  return `${DRILL_VOLUME_PREFIX}${rand.subarray(0, 4).toString('hex')}`;
}

/** Whether `name` is a drill's scratch volume name (the plugin's List leaves these out). */
export function isDrillVolumeName(name: string): boolean {
  return DRILL_VOLUME.test(name);
}

/** The last `chars` characters of a drill's output, for its event (a chatty check must not fill the log). */
export function outputTail(output: string, chars = 1000): string {
  return output.length <= chars ? output : `…${output.slice(-chars)}`;
}
