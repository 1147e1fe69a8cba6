import { Counter, type Registry } from 'prom-client';
import type { MoveRecord, NodeRecord, VolumeView } from '../wire/records';
import type { MetricsSource } from './metrics-router';
import { OneAtATime, gauge, newRegistry, setCounted, setSamples } from './gauges';
import { moveSamples, nodeSamples, replicationLagSamples, volumeSamples, type Sample } from './series';

/** What control already records, read at each scrape. */
export interface ControlFacts {
  volumes(): Promise<VolumeView[]>;
  nodes(): Promise<NodeRecord[]>;
  /** How many moves control records in each state (ended ones of removed volumes are forgotten). */
  movesByState(): { state: string; count: number }[];
  /** The moves under way. */
  activeMoves(): MoveRecord[];
  /** How many events of each kind control has recorded (the events table only grows). */
  eventsByKind(): { kind: string; count: number }[];
}

/**
 * The cluster-wide metrics of `ferry control` (and of `ferry serve`, which is control too), in a
 * registry of their own, all read from control's records at each scrape.
 */
export class ControlMetrics implements MetricsSource {
  readonly registry: Registry;
  private readonly refresh: () => Promise<void>;
  private readonly serial = new OneAtATime();

  constructor(facts: ControlFacts, opts: { processMetrics: boolean } = { processMetrics: true }, now: () => number = Date.now) {
    const r = (this.registry = newRegistry(opts));
    const byState = gauge(r, 'ferry_cluster_volumes', 'Volumes in the cluster, by state and backend.', ['state', 'backend']);
    const used = gauge(r, 'ferry_cluster_volume_used_bytes', 'Bytes used per volume (as its primary last measured), with its primary node.', ['volume', 'backend', 'node']);
    const size = gauge(r, 'ferry_cluster_volume_size_bytes', 'Size limit per volume (volumes with one), with its primary node.', ['volume', 'backend', 'node']);
    const mounts = gauge(r, 'ferry_cluster_volume_mounts', 'Active Docker mounts (leases) per volume, with its primary node.', ['volume', 'backend', 'node']);
    const up = gauge(r, 'ferry_cluster_node_up', '1 when a node is up (heartbeats arrive), 0 when control marked it down.', ['node']);
    const age = gauge(r, 'ferry_cluster_node_heartbeat_age_seconds', 'Seconds since each node\'s last heartbeat.', ['node']);
    const moves = gauge(r, 'ferry_cluster_moves', 'Moves control records, by state (done and failed ones of removed volumes are forgotten).', ['state']);
    const inFlight = gauge(r, 'ferry_cluster_moves_in_flight', 'Moves under way in the cluster.');
    const done = gauge(r, 'ferry_cluster_move_bytes_done', 'Bytes a move under way has transferred so far.', ['volume', 'source', 'target', 'state']);
    const expected = gauge(r, 'ferry_cluster_move_bytes_expected', 'Bytes a move under way expects to transfer (the volume\'s used bytes when it began).', ['volume', 'source', 'target', 'state']);
    // replicate
    const lag = gauge(r, 'ferry_replication_lag_seconds', 'Seconds since the newest replication snapshot each standby holds was taken (its lag), by volume and standby.', ['volume', 'standby']);
    const events = new Counter({ name: 'ferry_cluster_events_total', help: 'Events control has recorded, by kind (created, node-down, move-failed, ...).', labelNames: ['kind'], registers: [r] });
    this.refresh = async () => {
      const [views, nodes] = await Promise.all([facts.volumes(), facts.nodes()]);
      const v = volumeSamples(views);
      setSamples(byState, v.byState);
      setSamples(used, v.used);
      setSamples(size, v.size);
      setSamples(mounts, v.mounts);
      setSamples(lag, replicationLagSamples(views));
      const n = nodeSamples(nodes, now());
      setSamples(up, n.up);
      setSamples(age, n.heartbeatAge);
      const active = facts.activeMoves();
      const m = moveSamples(active);
      setSamples(moves, facts.movesByState().map((x): Sample => ({ labels: { state: x.state }, value: x.count })));
      inFlight.set(active.length);
      setSamples(done, m.done);
      setSamples(expected, m.expected);
      setCounted(events, facts.eventsByKind().map((x) => ({ labels: { kind: x.kind }, value: x.count })));
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  scrape(): Promise<string> {
    return this.serial.run(async () => {
      await this.refresh();
      return this.registry.metrics();
    });
  }
}
