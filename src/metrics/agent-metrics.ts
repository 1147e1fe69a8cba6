import { Counter, Histogram, type Registry } from 'prom-client';
import type { VolumeView } from '../wire/records';
import { OneAtATime, gauge, newRegistry, setSamples } from './gauges';
import type { MetricsSource } from './metrics-router';
import { volumeSamples } from './series';
import type { ErrorSite, MetricsSink } from './sink';

/** A pool (backend) of this host as `ferry status` reports it. */
export interface PoolFacts {
  backend: string;
  ok: boolean;
  totalBytes?: number;
  freeBytes?: number;
}

/** What an agent already knows, read at each scrape (no second bookkeeping of volumes or pools). */
export interface AgentFacts {
  node: string;
  /** Control's view of the volumes (the agent shows those whose primary is this host). */
  volumes(): Promise<VolumeView[]>;
  /** The backends' pools, with their size and free space. */
  pools(): Promise<PoolFacts[]>;
  /** Moves whose target is this host, running now. */
  movesInFlight(): number;
}

/** Plugin requests: Get and List take about a millisecond, Create tens, a Mount that moves a volume up to 2 minutes. */
export const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** A whole move: seconds for a small volume, up to an hour for a large one on a slow link. */
export const MOVE_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** A move's downtime (release to live on the target): DESIGN aims at about a second, whatever the size. */
export const DOWNTIME_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];

/**
 * The metrics of one agent (`ferry agent`, or the agent half of `ferry serve`), in a registry of its
 * own. Counters and histograms are fed through its `MetricsSink` side as work happens; gauges are
 * read from `AgentFacts` at each scrape.
 */
export class AgentMetrics implements MetricsSink, MetricsSource {
  readonly registry: Registry;
  private readonly requests: Counter;
  private readonly requestSeconds: Histogram;
  private readonly errors: Counter;
  private readonly sent: Counter;
  private readonly received: Counter;
  private readonly moves: Counter;
  private readonly moveSeconds: Histogram;
  private readonly downtime: Histogram;
  private readonly moveBytes: Counter;
  private readonly refresh: () => Promise<void>;
  private readonly serial = new OneAtATime();

  constructor(facts: AgentFacts, opts: { processMetrics: boolean } = { processMetrics: true }) {
    const r = (this.registry = newRegistry(opts));
    const counter = (name: string, help: string, labelNames: string[] = []): Counter => new Counter({ name, help, labelNames, registers: [r] });
    this.requests = counter('ferry_plugin_requests_total', 'Docker plugin requests answered, by op and outcome (ok, error).', ['op', 'outcome']);
    this.requestSeconds = new Histogram({ name: 'ferry_plugin_request_seconds', help: 'Time to answer a Docker plugin request, by op.', labelNames: ['op'], buckets: REQUEST_BUCKETS, registers: [r] });
    this.errors = counter('ferry_errors_total', 'Errors that ended an operation, by FerryError code and where (plugin, transfer, move).', ['code', 'where']);
    this.sent = counter('ferry_transfer_sent_bytes_total', 'Bytes the transfer service sent to peers (source side of moves).');
    this.received = counter('ferry_transfer_received_bytes_total', 'Bytes received from peers\' transfer services (target side of moves).');
    this.moves = counter('ferry_moves_total', 'Moves to this host that ended, by outcome.', ['outcome']);
    this.moveSeconds = new Histogram({ name: 'ferry_move_duration_seconds', help: 'Duration of moves to this host that succeeded.', buckets: MOVE_BUCKETS, registers: [r] });
    this.downtime = new Histogram({ name: 'ferry_move_downtime_seconds', help: 'Downtime of moves to this host: from the source\'s release to the volume live here.', buckets: DOWNTIME_BUCKETS, registers: [r] });
    this.moveBytes = counter('ferry_move_bytes_total', 'Bytes received by moves to this host that ended.');

    const inFlight = gauge(r, 'ferry_moves_in_flight', 'Moves to this host running now.');
    const byState = gauge(r, 'ferry_volumes', 'Volumes whose primary is this host, by state and backend.', ['state', 'backend']);
    const used = gauge(r, 'ferry_volume_used_bytes', 'Bytes used per volume whose primary is this host (as of the last usage pass).', ['volume', 'backend']);
    const size = gauge(r, 'ferry_volume_size_bytes', 'Size limit per volume whose primary is this host (volumes with one).', ['volume', 'backend']);
    const mounts = gauge(r, 'ferry_volume_mounts', 'Active Docker mounts (leases) per volume whose primary is this host.', ['volume', 'backend']);
    const poolSize = gauge(r, 'ferry_pool_size_bytes', 'Size of each backend\'s pool on this host.', ['backend']);
    const poolFree = gauge(r, 'ferry_pool_free_bytes', 'Free space in each backend\'s pool on this host.', ['backend']);
    const backendUp = gauge(r, 'ferry_backend_up', '1 when a backend is usable on this host, 0 when it failed to start or answer.', ['backend']);
    this.refresh = async () => {
      // A fact that cannot be read (control unreachable from an agent) leaves its gauges empty rather
      // than failing the scrape: the counters, and knowing that this host is up, matter most then.
      const [views, pools] = await Promise.all([facts.volumes().catch(() => []), facts.pools().catch(() => [])]);
      const v = volumeSamples(views, facts.node);
      setSamples(byState, v.byState);
      setSamples(used, v.used);
      setSamples(size, v.size);
      setSamples(mounts, v.mounts);
      inFlight.set(facts.movesInFlight());
      setSamples(backendUp, pools.map((p) => ({ labels: { backend: p.backend }, value: p.ok ? 1 : 0 })));
      setSamples(poolSize, pools.filter((p) => p.totalBytes !== undefined).map((p) => ({ labels: { backend: p.backend }, value: p.totalBytes! })));
      setSamples(poolFree, pools.filter((p) => p.freeBytes !== undefined).map((p) => ({ labels: { backend: p.backend }, value: p.freeBytes! })));
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Reads the facts into the gauges, then renders every series. */
  scrape(): Promise<string> {
    return this.serial.run(async () => {
      await this.refresh();
      return this.registry.metrics();
    });
  }

  pluginRequest(op: string, outcome: 'ok' | 'error', seconds: number, code?: string): void {
    this.requests.inc({ op, outcome });
    this.requestSeconds.observe({ op }, seconds);
    if (code) this.errors.inc({ code, where: 'plugin' });
  }

  transferSent(bytes: number): void {
    this.sent.inc(bytes);
  }

  transferReceived(bytes: number): void {
    this.received.inc(bytes);
  }

  moveEnded(m: { outcome: 'ok' | 'error'; seconds: number; downtimeSeconds?: number; bytes: number }): void {
    this.moves.inc({ outcome: m.outcome });
    this.moveBytes.inc(m.bytes);
    if (m.outcome !== 'ok') return;
    this.moveSeconds.observe(m.seconds);
    if (m.downtimeSeconds !== undefined) this.downtime.observe(m.downtimeSeconds);
  }

  error(code: string, where: ErrorSite): void {
    this.errors.inc({ code, where });
  }
}
