import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which version of the dataset-stream envelope (src/agent/backends/stream-envelope.ts) a stream is
 * written in. A host reads every version it knows and writes the newest its reader reads, so hosts of
 * different ferry versions keep moving volumes between them during an upgrade.
 *
 * The receiver of a transfer names the versions it reads in an ssh `env` request sent with its exec
 * request; a receiver from before versions were named sends none and reads version 1 only. The
 * transfer server runs the request's handler inside `envelopeScope`, where wrapStream finds the
 * version to write: the backends' send() keeps its signature.
 */

/** Versions this build reads, oldest first; it writes the last one unless its reader reads less. */
export const ENVELOPE_VERSIONS: readonly number[] = [1, 2];

/** The newest version: what a stream made outside any transfer (pool to pool, a spool file) is written in. */
export const CURRENT_ENVELOPE = ENVELOPE_VERSIONS[ENVELOPE_VERSIONS.length - 1];

/** The ssh env variable by which a receiver names the versions it reads, as "1,2". */
export const ENVELOPE_ENV = 'FERRY_ENVELOPE';

/**
 * The version to write for a receiver that announced `announced` (pure): the newest one both sides
 * know; 1 when it announced nothing (a ferry from before versions were named); undefined when they
 * have none in common.
 */
export function envelopeFor(announced: string | undefined): number | undefined {
  if (announced === undefined) return 1;
  const theirs = new Set(announced.split(',').map((w) => Number(w.trim())));
  return [...ENVELOPE_VERSIONS].reverse().find((v) => theirs.has(v));
}

/** The version to write for the transfer under way; none outside a transfer. */
export const envelopeScope = new AsyncLocalStorage<number>();
