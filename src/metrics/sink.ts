/**
 * What the parts that do the work tell the metrics (plugin requests, transfers, moves, errors). A
 * plain interface with no package behind it: the plugin server, the transfer server and the mover
 * take one, and `NO_METRICS` when nobody scrapes (web.listen off), so they never load prom-client.
 */
export interface MetricsSink {
  /** One plugin request: its op ("VolumeDriver.Get", or "unknown"), outcome, time, and error code. */
  pluginRequest(op: string, outcome: 'ok' | 'error', seconds: number, code?: string): void;
  /** Bytes this host's transfer service sent to a peer (the source side of a move). */
  transferSent(bytes: number): void;
  /** Bytes this host received from a peer's transfer service (the target side of a move). */
  transferReceived(bytes: number): void;
  /** A move this host drove as its target has ended; downtime only when this run saw the release. */
  moveEnded(m: { outcome: 'ok' | 'error'; seconds: number; downtimeSeconds?: number; bytes: number }): void;
  /** An error that ended an operation, by FerryError code and where it happened. */
  error(code: string, where: ErrorSite): void;
}

/** Where an error counted by `ferry_errors_total` happened. */
export type ErrorSite = 'plugin' | 'transfer' | 'move';

/** The sink that counts nothing. */
export const NO_METRICS: MetricsSink = {
  pluginRequest: () => undefined,
  transferSent: () => undefined,
  transferReceived: () => undefined,
  moveEnded: () => undefined,
  error: () => undefined,
};
