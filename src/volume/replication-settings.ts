import { FerryError } from '../errors';
import { parseSize } from './size';

/**
 * What a volume's replication asks for (issue 7 item 4): which hosts keep standbys, how stale a
 * standby may be, and how fast a round may read the network. Until policies exist it comes from the
 * volume's Create options (`-o replicate-to=h2,h3`, `-o replicas=1`, `-o rpo=30s`,
 * `-o bandwidth=50M`); `replicationOf` is the one place that reads them, so that switching to a
 * policy record is one line there.
 */
export interface ReplicationSettings {
  /** Hosts named by hand; empty when control chooses (`replicas`). */
  replicateTo: string[];
  /** How many standbys control chooses when no hosts are named; null with `replicateTo`. */
  replicas: number | null;
  /** The recovery point objective: a standby older than this is late (an event). */
  rpoSeconds: number;
  /** Bytes per second a standby reads at most during a round; null: no limit. */
  bandwidthBytes: number | null;
}

/** The Create options replication reads. */
export const REPLICATION_OPTIONS = ['replicate-to', 'replicas', 'rpo', 'bandwidth'] as const;

/** The RPO when replication is asked for without one. */
export const DEFAULT_RPO_SECONDS = 60;
/** Below this a round (snapshot, handshake, send) cannot keep up: refused. */
export const MIN_RPO_SECONDS = 2;
const MAX_REPLICAS = 16;
const HOST = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i;
const SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `30s`, `5m`, `1h`, `90` (seconds) into seconds; INVALID_OPTION otherwise. */
export function parseDuration(value: string, what: string): number {
  const m = DURATION.exec(value);
  const seconds = m ? Number(m[1]) * SECONDS[(m[2] ?? 's').toLowerCase()] : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new FerryError('INVALID_OPTION', `invalid ${what} ${JSON.stringify(value)}: give a duration such as 30s, 5m or 1h`);
  }
  return seconds;
}

/**
 * The replication a volume's options ask for (pure), or undefined when they ask for none. Throws
 * INVALID_OPTION naming the option and what it takes; Create calls it to refuse bad values early.
 */
export function replicationOf(options: Readonly<Record<string, string>>): ReplicationSettings | undefined {
  const to = options['replicate-to'];
  const n = options.replicas;
  if (to === undefined && n === undefined) {
    for (const k of ['rpo', 'bandwidth'] as const) {
      if (options[k] !== undefined) throw new FerryError('INVALID_OPTION', `option ${k} needs replication: add -o replicate-to=HOST[,HOST] or -o replicas=N`);
    }
    return undefined;
  }
  if (to !== undefined && n !== undefined) {
    throw new FerryError('INVALID_OPTION', 'options replicate-to and replicas exclude each other: name the hosts, or let control choose N of them');
  }
  const replicateTo = to === undefined ? [] : [...new Set(to.split(',').map((h) => h.trim()).filter((h) => h.length > 0))];
  if (to !== undefined) {
    if (replicateTo.length === 0) throw new FerryError('INVALID_OPTION', 'option replicate-to names no host: give HOST[,HOST]');
    const bad = replicateTo.find((h) => !HOST.test(h));
    if (bad !== undefined) throw new FerryError('INVALID_OPTION', `invalid host ${JSON.stringify(bad)} in replicate-to: host names are [A-Za-z0-9][A-Za-z0-9_.-]*`);
  }
  let replicas: number | null = null;
  if (n !== undefined) {
    replicas = Number(n);
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
      throw new FerryError('INVALID_OPTION', `invalid replicas ${JSON.stringify(n)}: give a whole number from 1 to ${MAX_REPLICAS}`);
    }
  }
  const rpoSeconds = options.rpo === undefined ? DEFAULT_RPO_SECONDS : parseDuration(options.rpo, 'rpo');
  if (rpoSeconds < MIN_RPO_SECONDS) throw new FerryError('INVALID_OPTION', `rpo ${options.rpo} is too short: the shortest is ${MIN_RPO_SECONDS}s`);
  const bandwidthBytes = options.bandwidth === undefined ? null : parseSize(options.bandwidth, 'bandwidth');
  return { replicateTo, replicas, rpoSeconds, bandwidthBytes };
}
