import { describeProgress } from '../wire/move-progress';
import type { ClusterEvent, HostReport, Lease, MoveRecord, NodeRecord, VolumeView } from '../wire/records';
import { formatSize } from '../volume/size';

/** What the dashboard is built from: control's records, plus what agents report about their hosts. */
export interface DashboardInput {
  nodes: NodeRecord[];
  volumes: VolumeView[];
  leases: Lease[];
  /** Moves under way and the newest ended ones, newest first. */
  moves: MoveRecord[];
  /** Recent events of the cluster, oldest first. */
  events: ClusterEvent[];
  /** Hosts' reports of their pools and findings: the serving host's own, fresh; others' as they sent them to control. */
  hosts: HostReport[];
}

/** A host: up or down, and its pools where its agent reports them. */
export interface HostItem {
  name: string;
  state: 'up' | 'down';
  lastHeartbeat: string | null;
  /** One per backend; null when no report came from that host. */
  pools: { kind: string; ok: boolean; error?: string; free?: string; total?: string; freePercent?: number }[] | null;
  /** When the pools were reported. */
  reportedAt: string | null;
  /** Volumes whose primary it is. */
  primaries: number;
}

/** A volume, with where it lives and who mounts it. */
export interface VolumeItem {
  name: string;
  backend: string;
  state: string;
  primary: string;
  generation: number;
  replicas: string[];
  dropping: string[];
  size: string;
  used: string;
  mounts: { node: string; count: number; containers: string[] }[];
  /** The id of its move under way, if any. */
  moving: number | null;
}

/** A move, with its progress as people read it. */
export interface MoveItem {
  id: number;
  volume: string;
  source: string;
  target: string;
  state: string;
  active: boolean;
  /** 0-100, null while the total is not known. */
  percent: number | null;
  progress: string;
  error: string | null;
  updatedAt: string;
}

export interface EventItem {
  id: number;
  at: string;
  volume: string | null;
  node: string | null;
  kind: string;
  detail: string | null;
}

/** Something a person should look at, and what to do. */
export interface AttentionItem {
  severity: 'error' | 'warn';
  what: string;
  fix: string;
}

/** The dashboard: each section a map by key, so that a change travels as the items that changed. */
export interface DashboardView {
  hosts: Record<string, HostItem>;
  volumes: Record<string, VolumeItem>;
  moves: Record<string, MoveItem>;
  events: Record<string, EventItem>;
  attention: Record<string, AttentionItem>;
}

export const SECTIONS = ['hosts', 'volumes', 'moves', 'events', 'attention'] as const;
export type Section = (typeof SECTIONS)[number];

/** What changed between two views: items to set (new or changed) and keys to delete, per section. */
export interface DashboardPatch {
  set: Partial<Record<Section, Record<string, unknown>>>;
  del: Partial<Record<Section, string[]>>;
}

/** A pool with less free space than this share is worth a look. */
export const POOL_LOW_PERCENT = 10;

const ACTIVE_MOVE = new Set(['precopy', 'releasing', 'final', 'switched']);

function moveItem(m: MoveRecord): MoveItem {
  const active = ACTIVE_MOVE.has(m.state);
  const percent = m.state === 'done' ? 100 : m.bytesTotal ? Math.min(99, Math.floor((100 * m.bytesDone) / m.bytesTotal)) : null;
  return {
    id: m.id,
    volume: m.volume,
    source: m.source,
    target: m.target,
    state: m.state,
    active,
    percent,
    progress: m.state === 'done' ? `done, ${formatSize(m.bytesDone)} sent` : describeProgress(m),
    error: m.error,
    updatedAt: m.updatedAt,
  };
}

/** Builds the view from the records (pure: the same input gives the same view). */
export function buildDashboard(input: DashboardInput): DashboardView {
  const view: DashboardView = { hosts: {}, volumes: {}, moves: {}, events: {}, attention: {} };
  const reports = new Map(input.hosts.map((h) => [h.node, h]));
  const primaries = new Map<string, number>();
  for (const v of input.volumes) if (v.state !== 'deleting') primaries.set(v.primaryNode, (primaries.get(v.primaryNode) ?? 0) + 1);

  // Hosts: control's nodes (a cluster), and hosts that report without being a node (ferry serve).
  const names = [...new Set([...input.nodes.map((n) => n.name), ...reports.keys()])].sort();
  for (const name of names) {
    const node = input.nodes.find((n) => n.name === name);
    const report = reports.get(name);
    const pools: HostItem['pools'] = report
      ? report.backends.map((b) => {
          if (!b.ok || b.totalBytes === undefined || b.freeBytes === undefined) return { kind: b.kind, ok: b.ok, ...(b.error ? { error: b.error } : {}) };
          const freePercent = b.totalBytes > 0 ? Math.floor((100 * b.freeBytes) / b.totalBytes) : 0;
          return { kind: b.kind, ok: true, free: formatSize(b.freeBytes), total: formatSize(b.totalBytes), freePercent };
        })
      : null;
    view.hosts[name] = {
      name,
      state: node?.state ?? 'up',
      lastHeartbeat: node?.lastHeartbeat ?? null,
      pools,
      reportedAt: report?.at ?? null,
      primaries: primaries.get(name) ?? 0,
    };
    if (node?.state === 'down') {
      view.attention[`host-down:${name}`] = {
        severity: 'error',
        what: `host ${name} is down: no heartbeat since ${node.lastHeartbeat ?? 'it registered'}`,
        fix: `check ferry agent on ${name} (systemctl status ferry) and its network to control; its volumes cannot move or be removed until it is back`,
      };
    }
    // An unavailable backend matters where volumes use it (as `ferry doctor` judges): a host need
    // not have every backend (no zfs, no volume group for lvm); the hosts table still shows it.
    const usedHere = new Set(input.volumes.filter((v) => v.primaryNode === name || v.replicas.includes(name)).map((v) => v.backend));
    for (const p of pools ?? []) {
      if (!p.ok && !usedHere.has(p.kind)) continue;
      if (!p.ok) {
        view.attention[`backend:${name}:${p.kind}`] = {
          severity: 'error',
          what: `backend ${p.kind} on ${name} is unavailable: ${p.error ?? 'no capacity reported'}`,
          fix: `run ferry status on ${name}; fix what it names and restart ferry`,
        };
      } else if (p.freePercent !== undefined && p.freePercent < POOL_LOW_PERCENT) {
        view.attention[`pool-low:${name}:${p.kind}`] = {
          severity: 'warn',
          what: `the ${p.kind} pool on ${name} is nearly full: ${p.free} free of ${p.total}`,
          fix: `free space (remove volumes or snapshots) or grow the pool on ${name}`,
        };
      }
    }
    for (const o of report?.orphans ?? []) {
      view.attention[`orphan:${name}:${o.backend ?? ''}:${o.name}`] = {
        severity: 'warn',
        what: `${o.backend ? `${o.backend} dataset` : 'dataset'} ${o.name} on ${name} belongs to no volume (${o.reason})`,
        fix: 'ferry never deletes it: look at it, keep what you need, then delete it by hand',
      };
    }
    for (const m of report?.missing ?? []) {
      view.attention[`missing:${name}:${m}`] = {
        severity: 'error',
        what: `volume ${m} is recorded on ${name} but its dataset is not there`,
        fix: `restore the dataset on ${name}, or remove the volume (ferry volume rm ${m})`,
      };
    }
  }

  const mounts = new Map<string, VolumeItem['mounts']>();
  for (const l of input.leases) {
    const list = mounts.get(l.volume) ?? [];
    const same = list.find((x) => x.node === l.node);
    if (same) {
      same.count += l.count;
      for (const c of l.containers ?? []) if (!same.containers.includes(c)) same.containers.push(c);
    } else list.push({ node: l.node, count: l.count, containers: [...(l.containers ?? [])] });
    mounts.set(l.volume, list);
  }

  const moving = new Map<string, number>();
  const newestOf = new Set<number>();
  const seen = new Set<string>();
  for (const m of input.moves) {
    view.moves[String(m.id)] = moveItem(m);
    if (ACTIVE_MOVE.has(m.state)) moving.set(m.volume, m.id);
    // Moves come newest first: the first of each volume is its newest.
    if (!seen.has(m.volume)) newestOf.add(m.id);
    seen.add(m.volume);
  }
  for (const m of input.moves) {
    // A failed move matters until the volume has moved (or tried) again.
    if (m.state === 'failed' && newestOf.has(m.id)) {
      view.attention[`move-failed:${m.id}`] = {
        severity: 'error',
        what: `move ${m.id} of ${m.volume} from ${m.source} to ${m.target} failed: ${m.error ?? 'no reason recorded'}`,
        fix: `${m.volume} stays on ${m.source}; fix the cause, then move it again (ferry volume move ${m.volume} --to ${m.target})`,
      };
    }
  }

  for (const v of input.volumes) {
    view.volumes[v.name] = {
      name: v.name,
      backend: v.backend,
      state: v.state,
      primary: v.primaryNode,
      generation: v.generation,
      replicas: v.replicas,
      dropping: v.dropping,
      size: v.sizeBytes === null ? 'unlimited' : formatSize(v.sizeBytes),
      used: v.usedBytes === null ? 'unknown' : formatSize(v.usedBytes),
      mounts: mounts.get(v.name) ?? [],
      moving: moving.get(v.name) ?? null,
    };
  }
  for (const e of input.events) view.events[String(e.id)] = { id: e.id, at: e.at, volume: e.volume, node: e.node, kind: e.kind, detail: e.detail };
  return view;
}

/** The patch that turns `prev` into `next`; null when nothing changed. Items compare by their JSON. */
export function diffDashboard(prev: DashboardView | undefined, next: DashboardView): DashboardPatch | null {
  const patch: DashboardPatch = { set: {}, del: {} };
  let changed = false;
  for (const s of SECTIONS) {
    const before = (prev?.[s] ?? {}) as Record<string, unknown>;
    const after = next[s] as Record<string, unknown>;
    for (const [k, item] of Object.entries(after)) {
      if (k in before && JSON.stringify(before[k]) === JSON.stringify(item)) continue;
      (patch.set[s] ??= {})[k] = item;
      changed = true;
    }
    for (const k of Object.keys(before)) {
      if (k in after) continue;
      (patch.del[s] ??= []).push(k);
      changed = true;
    }
  }
  return changed ? patch : null;
}
