/**
 * Packs and their indexes (bank format version 2). A pack `packs/<pp>/<packId>` is sealed chunks back
 * to back, each sealed exactly as it would be alone (AD = its chunk key), so gc can move sealed bytes
 * between packs verbatim. Its index `index/<packId>`, written after the pack, is sealed (AD = its own
 * key) and lists where each chunk lies. A pack without an index is an orphan (a backup that crashed):
 * readers never see it, gc deletes it.
 *
 * Index plaintext (binary, big-endian): 'FPI1', u32 count, then per chunk: 32 bytes id, u64 offset,
 * u32 length (44 bytes a chunk).
 */
import { randomBytes } from 'node:crypto';
import { FerryError } from '../errors';
import { mapLimit } from './map-limit';
import type { Sealer } from './sealer';
import type { BankStore } from './types';

const PACK_ID = /^[0-9a-f]{64}$/;
const MAGIC = Buffer.from('FPI1', 'ascii');
const ENTRY_BYTES = 32 + 8 + 4;

/** Where a chunk's sealed bytes lie. */
export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
}

/** One chunk of a pack's index. */
export interface IndexEntry {
  id: string;
  offset: number;
  length: number;
}

/** The bank's index: every indexed pack's entries, and one location per chunk id. */
export interface BankIndex {
  packs: Map<string, IndexEntry[]>;
  chunks: Map<string, ChunkLocation>;
}

export function newPackId(): string {
  return randomBytes(32).toString('hex');
}

export function packKey(packId: string): string {
  return `packs/${packId.slice(0, 2)}/${packId}`;
}

export function indexKey(packId: string): string {
  return `index/${packId}`;
}

/** The pack id of a key under packs/, or null (a store's stray object). */
export function packIdOfKey(key: string): string | null {
  const m = /^packs\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  return m && m[2].startsWith(m[1]) ? m[2] : null;
}

/** The pack id of a key under index/, or null. */
export function packIdOfIndexKey(key: string): string | null {
  const m = /^index\/([0-9a-f]{64})$/.exec(key);
  return m ? m[1] : null;
}

export function encodeIndex(entries: readonly IndexEntry[]): Buffer {
  const out = Buffer.alloc(8 + entries.length * ENTRY_BYTES);
  MAGIC.copy(out, 0);
  out.writeUInt32BE(entries.length, 4);
  let at = 8;
  for (const e of entries) {
    if (!/^[0-9a-f]{64}$/.test(e.id)) throw new Error(`not a chunk id: ${e.id}`);
    out.write(e.id, at, 'hex');
    out.writeBigUInt64BE(BigInt(e.offset), at + 32);
    out.writeUInt32BE(e.length, at + 40);
    at += ENTRY_BYTES;
  }
  return out;
}

/** BANK_CORRUPT when `body` is not an index (the sealing already proved it is the bank's). */
export function decodeIndex(body: Buffer, key: string, url: string): IndexEntry[] {
  const bad = (why: string): FerryError => new FerryError('BANK_CORRUPT', `index ${key} of bank ${url} is damaged (${why}); run ferry bank check`, { details: { key } });
  if (body.length < 8 || !body.subarray(0, 4).equals(MAGIC)) throw bad('no FPI1 header');
  const count = body.readUInt32BE(4);
  if (body.length !== 8 + count * ENTRY_BYTES) throw bad(`${body.length} bytes for ${count} entries`);
  const out: IndexEntry[] = [];
  for (let i = 0, at = 8; i < count; i++, at += ENTRY_BYTES) {
    out.push({ id: body.toString('hex', at, at + 32), offset: Number(body.readBigUInt64BE(at + 32)), length: body.readUInt32BE(at + 40) });
  }
  return out;
}

/** Builds the chunk map of a set of pack indexes: a chunk in several packs keeps the first pack's place (pure). */
export function indexOf(packs: Map<string, IndexEntry[]>): BankIndex {
  const chunks = new Map<string, ChunkLocation>();
  for (const [pack, entries] of packs) {
    for (const e of entries) if (!chunks.has(e.id)) chunks.set(e.id, { pack, offset: e.offset, length: e.length });
  }
  return { packs, chunks };
}

/** Reads every index of the bank (one listing of index/, 8 GETs at a time). */
export async function loadIndex(store: BankStore, sealer: Sealer): Promise<BankIndex> {
  const ids = (await store.list('index/')).map((o) => packIdOfIndexKey(o.key)).filter((id): id is string => id !== null && PACK_ID.test(id));
  const packs = new Map<string, IndexEntry[]>();
  await mapLimit(ids, 8, async (packId) => {
    const key = indexKey(packId);
    const sealed = await store.get(key);
    if (!sealed) return; // removed by a gc between the listing and the read
    let plain: Buffer;
    try {
      plain = await sealer.open(sealed, key);
    } catch (err) {
      throw new FerryError('BANK_CORRUPT', `index ${key} of bank ${store.url} does not open (damaged, or not sealed with this bank's key); run ferry bank check`, { cause: err, details: { key } });
    }
    packs.set(packId, decodeIndex(plain, key, store.url));
  });
  // Listing order, whatever order the reads finished in: the first location of a duplicate is stable.
  const ordered = new Map<string, IndexEntry[]>();
  for (const id of ids) {
    const e = packs.get(id);
    if (e) ordered.set(id, e);
  }
  return indexOf(ordered);
}
