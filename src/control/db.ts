import Database, { type Statement } from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Never edit a
 * migration that has shipped: add a new one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE nodes (
    name            TEXT PRIMARY KEY,
    address         TEXT,
    transfer_key    TEXT,
    boot_id         TEXT,
    last_heartbeat  TEXT,
    state           TEXT NOT NULL DEFAULT 'up',   -- up | down
    created_at      TEXT NOT NULL
  );
  CREATE TABLE volumes (
    name          TEXT PRIMARY KEY,               -- unique in the cluster
    backend       TEXT NOT NULL,
    size_bytes    INTEGER,
    fs            TEXT,
    options       TEXT NOT NULL,                  -- Create options as given (JSON)
    primary_node  TEXT NOT NULL,
    generation    INTEGER NOT NULL DEFAULT 1,     -- +1 every time the primary changes
    state         TEXT NOT NULL,                  -- creating | ready | deleting
    created_at    TEXT NOT NULL,
    used_bytes    INTEGER,
    used_at       TEXT
  );
  -- Mount leases: active Docker Mount IDs, counted per ID.
  CREATE TABLE mounts (
    volume      TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    mount_id    TEXT NOT NULL,
    node        TEXT NOT NULL,
    count       INTEGER NOT NULL CHECK (count > 0),
    mountpoint  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (volume, mount_id)
  );
  CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    volume  TEXT,
    node    TEXT,
    kind    TEXT NOT NULL,
    detail  TEXT
  );
  CREATE INDEX events_volume ON events(volume, id);
  `,
  `
  -- Moves of a volume's primary from one host to another (DESIGN: "A move, step by step").
  CREATE TABLE moves (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    volume           TEXT NOT NULL,
    source           TEXT NOT NULL,
    target           TEXT NOT NULL,
    state            TEXT NOT NULL,   -- precopy | releasing | final | switched | done | failed
    from_generation  INTEGER NOT NULL,
    bytes_done       INTEGER NOT NULL DEFAULT 0,
    bytes_total      INTEGER,
    error            TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
  );
  -- One move per volume at a time.
  CREATE UNIQUE INDEX moves_one_active ON moves(volume) WHERE state IN ('precopy', 'releasing', 'final', 'switched');
  `,
  `
  -- Names of the containers behind a host's leases (found after Mount, never during it).
  ALTER TABLE mounts ADD COLUMN containers TEXT;
  -- Plain Docker moves: stop the containers on the source and start them again on the target.
  ALTER TABLE moves ADD COLUMN restart_containers INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE moves ADD COLUMN containers TEXT;
  `,
  `
  -- Copies of a volume on hosts other than its primary: replicas kept after a move (state 'replica'),
  -- and copies that their host must destroy (state 'dropping': a replica that policy does not keep,
  -- or any copy of a volume being removed, the primary's included). A volume in state 'deleting'
  -- goes once it has no row left here.
  CREATE TABLE copies (
    volume      TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    node        TEXT NOT NULL,
    state       TEXT NOT NULL,   -- replica | dropping
    created_at  TEXT NOT NULL,
    PRIMARY KEY (volume, node)
  );
  CREATE INDEX copies_node ON copies(node, state);
  -- Before this table, the sources of finished moves kept their copy unless their target's config said
  -- otherwise: record them as replicas. One that was removed meanwhile is forgotten when its agent
  -- starts and finds no dataset (reconciliation).
  INSERT OR IGNORE INTO copies (volume, node, state, created_at)
    SELECT m.volume, m.source, 'replica', MAX(m.updated_at) FROM moves m JOIN volumes v ON v.name = m.volume
    WHERE m.state = 'done' AND m.source <> v.primary_node GROUP BY m.volume, m.source;
  -- A remove cut off before this table: its primary still has to destroy its copy.
  INSERT OR IGNORE INTO copies (volume, node, state, created_at)
    SELECT name, primary_node, 'dropping', created_at FROM volumes WHERE state = 'deleting';
  `,
  `
  -- Each host's newest report of its pools and of what reconciliation found (orphans, missing
  -- datasets), sent by its agent every usage interval: what the dashboard of ferry control shows.
  CREATE TABLE host_reports (
    node    TEXT PRIMARY KEY,
    report  TEXT NOT NULL,   -- JSON: {backends, orphans, missing}
    at      TEXT NOT NULL
  );
  `,
  `
  -- snap (issue 7 item 1): control's snapshot registry, one row per snapshot per host holding it.
  -- A snapshot's rows go with its volume's record. IF NOT EXISTS: a test rewinds user_version over later tables.
  CREATE TABLE IF NOT EXISTS snapshots (
    volume      TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    name        TEXT NOT NULL,                -- the stored name (src/volume/snapshot-names.ts)
    node        TEXT NOT NULL,                -- a host holding it
    origin      TEXT NOT NULL,                -- manual | schedule | replication | fenced | removed
    created_at  TEXT NOT NULL,                -- when it was taken, at its first host
    size_bytes  INTEGER,
    grp         TEXT,
    policy      TEXT,
    PRIMARY KEY (volume, name, node)
  );
  CREATE INDEX IF NOT EXISTS snapshots_node ON snapshots(node);
  `,
  `
  -- policy (issue 7 item 3): named protection policies; a volume has one when options.policy names it.
  CREATE TABLE IF NOT EXISTS policies (
    name                    TEXT PRIMARY KEY,   -- [a-z0-9][a-z0-9_-]*: it appears in snapshot names
    schedule                TEXT,               -- cron (UTC), null: no scheduled snapshots
    keep                    TEXT,               -- "48h 14d 8w 12m" or a count, null: keep all
    replicate_to            TEXT NOT NULL,      -- JSON array of host names
    replicas                INTEGER,
    rpo_seconds             INTEGER,
    bandwidth_bytes         INTEGER,            -- per second
    failover                TEXT NOT NULL,      -- auto | manual
    reclaim                 TEXT NOT NULL,      -- delete | retain
    retain_removed_seconds  INTEGER,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
  );
  `,
  `
  -- replicate: the standbys replication keeps of a volume, one row per host, with its newest
  -- replication snapshot (the next round's base) and whether control last recorded it late.
  CREATE TABLE IF NOT EXISTS standbys (
    volume       TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    node         TEXT NOT NULL,
    snapshot     TEXT,
    snapshot_at  TEXT,
    chosen_at    TEXT NOT NULL,
    synced_at    TEXT,
    bytes        INTEGER,
    late         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (volume, node)
  );
  `,
  `
  -- fence (issue 7 item 5): one row per failover. The new primary makes the snapshot live (promoted);
  -- the lost host, once back, keeps its late writes as a snapshot and becomes a standby (fenced).
  CREATE TABLE IF NOT EXISTS failovers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    volume      TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    from_node   TEXT NOT NULL,
    to_node     TEXT NOT NULL,
    generation  INTEGER NOT NULL,      -- the volume's generation from this failover on
    snapshot    TEXT NOT NULL,         -- made live on to_node
    lost_from   TEXT NOT NULL,         -- the window lost: the snapshot's time ...
    lost_to     TEXT,                  -- ... to from_node's last heartbeat
    forced      INTEGER NOT NULL,
    promoted    INTEGER NOT NULL DEFAULT 0,
    fenced      INTEGER NOT NULL DEFAULT 0,
    kept_as     TEXT,                  -- the snapshot holding from_node's late writes
    created_at  TEXT NOT NULL
  );
  `,
  `
  -- reclaim: volumes removed with reclaim=retain, their data kept on one host as an internal dataset
  -- (_removed.<id>) until it expires or is undeleted. Not tied to volumes: the volume's record goes at
  -- remove as always (a new volume of the same name may be created meanwhile). While a row is
  -- 'retaining', the volume's primary copy is in copies with state 'retaining' (kept, not dropped).
  CREATE TABLE IF NOT EXISTS removed_volumes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    node        TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    backend     TEXT NOT NULL,
    size_bytes  INTEGER,
    fs          TEXT,
    options     TEXT NOT NULL,
    used_bytes  INTEGER,
    created_at  TEXT NOT NULL,
    removed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    state       TEXT NOT NULL   -- retaining | retained | dropping
  );
  CREATE INDEX IF NOT EXISTS removed_volumes_name ON removed_volumes(name, id);
  `,
  `
  -- bank-ops (issue 8): banks that backups go to. secrets: JSON of the key file's bytes (base64) and the
  -- S3 credentials' file contents; never logged, never answered but to agents (bankSecrets).
  CREATE TABLE IF NOT EXISTS banks (
    name        TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    endpoint    TEXT,
    region      TEXT,
    read_only   INTEGER NOT NULL,
    bank_id     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    secrets     TEXT NOT NULL
  );
  `,
  `
  -- bank-policy (issue 8 items 4, 5): a policy's scheduled backups to a bank, their retention, the restore drill.
  ALTER TABLE policies ADD COLUMN backup_to TEXT;                -- a bank's name, null: no scheduled backups
  ALTER TABLE policies ADD COLUMN backup_schedule TEXT;          -- cron (UTC)
  ALTER TABLE policies ADD COLUMN backup_keep TEXT;              -- "7d 4w 12m" or a count, null: keep all
  ALTER TABLE policies ADD COLUMN verify_every_seconds INTEGER;  -- restore drill interval, null: none
  ALTER TABLE policies ADD COLUMN verify_with TEXT;              -- "IMAGE COMMAND"
  `,
];

/** Opens (creating if needed) the state database in WAL mode and brings its schema up to date. */
export function openDb(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // bank-ops: the database holds banks' keys and credentials: readable by its owner only.
  if (path !== ':memory:') for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a process crash; only an OS crash can lose the newest commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let i = version; i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[i]);
      db.pragma(`user_version = ${i + 1}`);
    })();
  }
  return db;
}

export function nowIso(): string {
  return new Date().toISOString();
}

// Prepared statements are cached per db handle: Get, List and leases are hot paths.
const cache = new WeakMap<Db, Map<string, Statement<unknown[]>>>();

/** The prepared statement for `sql` on `db`, made once. */
export function stmt(db: Db, sql: string): Statement<unknown[]> {
  let m = cache.get(db);
  if (!m) cache.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.prepare<unknown[]>(sql)));
  return s;
}

/** Like stmt, but its rows come as arrays of the selected columns, in order (no object per row). */
export function rawStmt(db: Db, sql: string): Statement<unknown[]> {
  let m = cache.get(db);
  if (!m) cache.set(db, (m = new Map()));
  // Its own cache key: raw mode belongs to the statement, and stmt() callers expect objects.
  const key = `raw:${sql}`;
  let s = m.get(key);
  if (!s) m.set(key, (s = db.prepare<unknown[]>(sql).raw(true)));
  return s;
}
