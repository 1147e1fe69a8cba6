/**
 * What the lvm backend reads from lvm2's JSON reports, and how ferry's names map onto LV names
 * and tags. Pure: tested against reports captured from the real tools (test/fixtures/lvm/).
 *
 * A volume is the thin LV `fv_<name>`, a snapshot `fs_<name>+<snap>` (`+` is in no ferry name, so
 * the pair is unambiguous); names too long for device-mapper or holding a suffix LVM reserves get
 * a hash instead (`fvh_`, `fsh_`). The LV name is only an address: who an LV belongs to is in its
 * tags (`ferry`, `ferry.v=<volume>`, `ferry.s=<snapshot>`, `ferry.t=<ms>` to order snapshots,
 * `ferry.fs=<fs>`), and an LV tagged for ferry whose name is not the one its tags call for is a
 * temp LV of an interrupted operation (`ft_...`).
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../../../errors';
import type { LvmFilesystem } from './descriptor';

export const TAG = 'ferry';
const VOLUME_TAG = 'ferry.v=';
const SNAPSHOT_TAG = 'ferry.s=';
const TIME_TAG = 'ferry.t=';
const FS_TAG = 'ferry.fs=';
/** Prefix of temp LVs (receives, rollbacks in progress). */
export const TEMP_PREFIX = 'ft_';
/**
 * Prefix of a volume a rollback has set aside (renamed away) until the snapshot's copy is in its
 * place: if the rollback stops there, it is put back (see recoverTemps).
 */
export const SET_ASIDE_PREFIX = 'fo_';

/** device-mapper names hold 127 bytes ("VG-LV", each `-` doubled); LVM reserves a little more. */
const MAX_DM_NAME = 120;
/** Substrings LVM keeps for its own internal LVs (lvcreate refuses them in a name). */
const RESERVED = /_(cdata|cmeta|corig|cpool|cvol|imeta|iorig|mimage|mlog|pmspare|rimage|rmeta|tdata|tmeta|vdata|vorigin|wcorig)|^snapshot|^pvmove/;

function dmLength(s: string): number {
  return s.length + (s.match(/-/g)?.length ?? 0);
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

function fits(vg: string, lv: string): boolean {
  return dmLength(vg) + 1 + dmLength(lv) <= MAX_DM_NAME && !RESERVED.test(lv);
}

/** The LV name of volume `name` in volume group `vg`. */
export function volumeLv(vg: string, name: string): string {
  const plain = `fv_${name}`;
  return fits(vg, plain) ? plain : `fvh_${hash(name)}`;
}

/** The LV name of snapshot `snap` of volume `name`. */
export function snapshotLv(vg: string, name: string, snap: string): string {
  const plain = `fs_${name}+${snap}`;
  return fits(vg, plain) ? plain : `fsh_${hash(`${name}/${snap}`)}`;
}

/** The tags of volume `name`. */
export function volumeTags(name: string, fs: LvmFilesystem): string[] {
  return [TAG, `${VOLUME_TAG}${name}`, `${FS_TAG}${fs}`];
}

/** The tags of snapshot `snap` of `name`, taken at `atMs`. */
export function snapshotTags(name: string, snap: string, fs: LvmFilesystem, atMs: number): string[] {
  return [TAG, `${VOLUME_TAG}${name}`, `${SNAPSHOT_TAG}${snap}`, `${FS_TAG}${fs}`, `${TIME_TAG}${atMs}`];
}

/** One row of `lvs` (commands.LV_COLUMNS). Sizes in bytes. */
export interface LvRow {
  lvName: string;
  attr: string;
  sizeBytes: number;
  tags: string[];
  /** Share of the LV's size that is mapped in the pool (thin LVs, pools), 0-100; absent when inactive. */
  dataPercent?: number;
  metadataPercent?: number;
  /** "error" or "queue" for a thin pool, "" otherwise. */
  whenFull: string;
}

/** The volume group's figures, in bytes. */
export interface VgInfo {
  sizeBytes: number;
  freeBytes: number;
  extentBytes: number;
}

/** An LV tagged for ferry whose name is not the one its tags call for: left by an interrupted operation. */
export interface TempLv {
  lv: string;
  /** The volume its tags name, if any. */
  volume?: string;
}

/** What ferry finds in the VG: its volumes and snapshots, temp leftovers, and the pool. */
export interface LvmState {
  volumes: Map<string, { lv: string; fs: LvmFilesystem; sizeBytes: number; active: boolean; usedBytes?: number }>;
  /** By volume name: its snapshots, oldest first. */
  snapshots: Map<string, { snap: string; lv: string; fs: LvmFilesystem; sizeBytes: number; active: boolean; atMs: number }[]>;
  temps: TempLv[];
  pool?: LvRow;
}

function badReport(what: string, why: string): FerryError {
  return new FerryError('INTERNAL', `cannot read the output of ${what}: ${why}`);
}

function reportRows(text: string, key: 'lv' | 'vg', what: string): Record<string, string>[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw badReport(what, 'not JSON');
  }
  const report = (doc as { report?: Record<string, unknown>[] }).report;
  if (!Array.isArray(report)) throw badReport(what, 'no "report" array');
  const rows: Record<string, string>[] = [];
  for (const r of report) {
    const part = r[key];
    if (!Array.isArray(part)) throw badReport(what, `no "${key}" list`);
    rows.push(...(part as Record<string, string>[]));
  }
  return rows;
}

function bytes(v: string | undefined, what: string): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isSafeInteger(n) || n < 0) throw badReport(what, `size "${String(v)}" is not a byte count`);
  return n;
}

function percent(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses `lvs --reportformat json --units b --nosuffix -o LV_COLUMNS`. */
export function parseLvReport(text: string): LvRow[] {
  return reportRows(text, 'lv', 'lvs').map((r) => ({
    lvName: r.lv_name ?? '',
    attr: r.lv_attr ?? '',
    sizeBytes: bytes(r.lv_size, 'lvs'),
    tags: (r.lv_tags ?? '').split(',').filter((t) => t !== ''),
    dataPercent: percent(r.data_percent),
    metadataPercent: percent(r.metadata_percent),
    whenFull: r.lv_when_full ?? '',
  }));
}

/** Parses `vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size VG`; undefined when the VG is not in it. */
export function parseVgReport(text: string, vg: string): VgInfo | undefined {
  const row = reportRows(text, 'vg', 'vgs').find((r) => r.vg_name === vg);
  if (!row) return undefined;
  return { sizeBytes: bytes(row.vg_size, 'vgs'), freeBytes: bytes(row.vg_free, 'vgs'), extentBytes: bytes(row.vg_extent_size, 'vgs') };
}

function tagValue(tags: readonly string[], prefix: string): string | undefined {
  return tags.find((t) => t.startsWith(prefix))?.slice(prefix.length);
}

/** True when the LV is active (the fifth lv_attr character). */
export function isActive(attr: string): boolean {
  return attr[4] === 'a';
}

/** Sorts the rows of a VG into ferry's volumes, snapshots (oldest first), temp LVs and the pool. Pure. */
export function classify(vg: string, pool: string, rows: readonly LvRow[]): LvmState {
  const state: LvmState = { volumes: new Map(), snapshots: new Map(), temps: [] };
  for (const r of rows) {
    if (r.lvName === pool) {
      state.pool = r;
      continue;
    }
    if (!r.tags.includes(TAG)) continue;
    const name = tagValue(r.tags, VOLUME_TAG);
    const snap = tagValue(r.tags, SNAPSHOT_TAG);
    const fs = (tagValue(r.tags, FS_TAG) ?? 'ext4') as LvmFilesystem;
    const active = isActive(r.attr);
    if (name !== undefined && snap === undefined && r.lvName === volumeLv(vg, name)) {
      const usedBytes = r.dataPercent === undefined ? undefined : Math.round((r.sizeBytes * r.dataPercent) / 100);
      state.volumes.set(name, { lv: r.lvName, fs, sizeBytes: r.sizeBytes, active, ...(usedBytes !== undefined ? { usedBytes } : {}) });
    } else if (name !== undefined && snap !== undefined && r.lvName === snapshotLv(vg, name, snap)) {
      const list = state.snapshots.get(name) ?? [];
      list.push({ snap, lv: r.lvName, fs, sizeBytes: r.sizeBytes, active, atMs: Number(tagValue(r.tags, TIME_TAG) ?? 0) });
      state.snapshots.set(name, list);
    } else {
      state.temps.push({ lv: r.lvName, ...(name !== undefined ? { volume: name } : {}) });
    }
  }
  for (const list of state.snapshots.values()) list.sort((a, b) => a.atMs - b.atMs || (a.snap < b.snap ? -1 : 1));
  return state;
}

/** A thin pool's free data space, in bytes (its size less the mapped share). */
export function poolFreeBytes(pool: LvRow): number {
  return Math.max(0, Math.floor((pool.sizeBytes * (100 - (pool.dataPercent ?? 0))) / 100));
}

/** True when lvm2's or the kernel's words say the thin pool had no room. */
export function saysPoolFull(stderr: string): boolean {
  return /out of data space|reached threshold|insufficient free space|no space left/i.test(stderr);
}

/** The size lvcreate gets for a request of `bytes`: rounded down to whole extents (never above the limit asked for), at least one. */
export function lvBytes(bytes: number, extentBytes: number): number {
  return Math.max(extentBytes, Math.floor(bytes / extentBytes) * extentBytes);
}

/**
 * What to do at start with the temp LVs an interrupted operation left (pure). A volume that a
 * rollback set aside goes back in place when the volume is missing (the rollback stopped between
 * setting it aside and putting the snapshot's copy there: it is undone, no data is lost); every
 * other temp LV is removed (a receive's partial copy, a rollback's unused copy, a set-aside volume
 * whose rollback finished).
 */
export function recoverTemps(state: LvmState, vg: string): { restore: { from: string; to: string }[]; remove: string[] } {
  const restore: { from: string; to: string }[] = [];
  const remove: string[] = [];
  const restored = new Set<string>();
  for (const t of state.temps) {
    if (t.lv.startsWith(SET_ASIDE_PREFIX) && t.volume !== undefined && !state.volumes.has(t.volume) && !restored.has(t.volume)) {
      restored.add(t.volume);
      restore.push({ from: t.lv, to: volumeLv(vg, t.volume) });
    } else {
      remove.push(t.lv);
    }
  }
  return { restore, remove };
}
