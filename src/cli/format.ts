import type { AgentStatus, NodeRecord, VolumeView } from '../wire/records';
import { formatSize } from '../volume/size';

/** Left-aligned columns, two spaces apart (as docker's own tables). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function volumeTable(volumes: VolumeView[]): string {
  return table(
    ['NAME', 'BACKEND', 'SIZE', 'USED', 'PRIMARY', 'GEN', 'MOUNTS', 'STATE', 'REPLICAS', 'LAG'],
    volumes.map((v) => [
      v.name,
      v.backend + (v.fs ? `/${v.fs}` : ''),
      v.sizeBytes === null ? 'pool' : formatSize(v.sizeBytes),
      v.usedBytes === null ? '-' : formatSize(v.usedBytes),
      v.primaryNode,
      String(v.generation),
      String(v.mounts),
      v.state === 'deleting' ? `deleting (waiting for ${v.dropping.join(',')})` : v.state,
      v.replicas.join(',') || '-',
      lagText(v),
    ]),
  );
}

/** replicate: each standby's lag, `h2:3.2s` (`!` when past the RPO), or `-` without replication. */
export function lagText(v: VolumeView): string {
  if (!v.standbys?.length) return '-';
  return v.standbys.map((s) => `${s.node}:${s.snapshot === null ? 'syncing' : `${s.lagSeconds}s`}${s.late ? '!' : ''}`).join(',');
}

export function statusText(s: AgentStatus): string {
  const lines = [`node: ${s.node}`, `volumes: ${s.volumes} (${s.mounted.length} mounted here)`, 'backends:'];
  for (const b of s.backends) {
    lines.push(
      b.ok
        ? `  ${b.kind}: ok${b.health ? ` (pool ${b.health})` : ''}, ${formatSize(b.freeBytes ?? 0)} free of ${formatSize(b.totalBytes ?? 0)}${b.abilities ? `; ${b.abilities.join(', ') || 'no optional abilities'}` : ''}`
        : `  ${b.kind}: UNAVAILABLE: ${b.error}`,
    );
  }
  if (s.replicas.length) lines.push(`replicas kept here (read-only copies for moves back): ${s.replicas.join(', ')}`);
  if (s.removing.length) lines.push(`copies being destroyed here (removed, or replicas not kept): ${s.removing.join(', ')}`);
  if (s.missing.length) lines.push(`missing datasets (recorded, not on disk): ${s.missing.join(', ')}`);
  if (s.orphans.length) {
    lines.push('orphans (on disk or mounted, not recorded; left untouched):');
    for (const o of s.orphans) lines.push(`  ${o.backend ? `${o.backend}:` : ''}${o.name}: ${o.reason}`);
  }
  return lines.join('\n');
}

export function nodeTable(nodes: NodeRecord[]): string {
  return table(
    ['NAME', 'STATE', 'ADDRESS', 'LAST HEARTBEAT'],
    nodes.map((n) => [n.name, n.state, n.address ?? '-', n.lastHeartbeat ?? '-']),
  );
}
