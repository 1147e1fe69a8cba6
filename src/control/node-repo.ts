import type { HostReport, NodeRecord, NodeState } from '../wire/records';
import type { Db } from './db';
import { nowIso, stmt } from './db';


interface NodeRow {
  name: string;
  address: string | null;
  transfer_key: string | null;
  boot_id: string | null;
  last_heartbeat: string | null;
  state: NodeState;
  created_at: string;
}

const toNode = (r: NodeRow): NodeRecord => ({
  name: r.name,
  address: r.address,
  transferKey: r.transfer_key,
  bootId: r.boot_id,
  lastHeartbeat: r.last_heartbeat,
  state: r.state,
  createdAt: r.created_at,
});

/** Records a node (new or restarted agent) as up. */
export function upsertNode(db: Db, n: { name: string; address: string; transferKey: string; bootId: string }): void {
  const now = nowIso();
  stmt(
    db,
    `INSERT INTO nodes (name, address, transfer_key, boot_id, last_heartbeat, state, created_at) VALUES (?, ?, ?, ?, ?, 'up', ?)
     ON CONFLICT(name) DO UPDATE SET address = excluded.address, transfer_key = excluded.transfer_key,
       boot_id = excluded.boot_id, last_heartbeat = excluded.last_heartbeat, state = 'up'`,
  ).run(n.name, n.address, n.transferKey, n.bootId, now, now);
}

/** Records a heartbeat; false when the node is unknown or restarted under another boot id. */
export function heartbeat(db: Db, name: string, bootId: string): boolean {
  return stmt(db, `UPDATE nodes SET last_heartbeat = ?, state = 'up' WHERE name = ? AND boot_id = ?`).run(nowIso(), name, bootId).changes === 1;
}

export function getNode(db: Db, name: string): NodeRecord | undefined {
  const r = stmt(db, 'SELECT * FROM nodes WHERE name = ?').get(name) as NodeRow | undefined;
  return r ? toNode(r) : undefined;
}

export function listNodes(db: Db): NodeRecord[] {
  return (stmt(db, 'SELECT * FROM nodes ORDER BY name').all() as NodeRow[]).map(toNode);
}

/** Marks nodes whose last heartbeat is older than `before` as down; returns their names. */
export function markSilentNodesDown(db: Db, before: string): string[] {
  const rows = stmt(db, `SELECT name FROM nodes WHERE state = 'up' AND (last_heartbeat IS NULL OR last_heartbeat < ?)`).all(before) as { name: string }[];
  for (const r of rows) stmt(db, `UPDATE nodes SET state = 'down' WHERE name = ?`).run(r.name);
  return rows.map((r) => r.name);
}

/** Keeps `r` as its host's newest report. */
export function saveHostReport(db: Db, r: Omit<HostReport, 'at'>): void {
  const { node, ...rest } = r;
  stmt(db, 'INSERT INTO host_reports (node, report, at) VALUES (?, ?, ?) ON CONFLICT(node) DO UPDATE SET report = excluded.report, at = excluded.at').run(
    node,
    JSON.stringify(rest),
    nowIso(),
  );
}

export function listHostReports(db: Db): HostReport[] {
  const rows = stmt(db, 'SELECT * FROM host_reports ORDER BY node').all() as { node: string; report: string; at: string }[];
  return rows.map((r) => ({ node: r.node, at: r.at, ...(JSON.parse(r.report) as Omit<HostReport, 'node' | 'at'>) }));
}
