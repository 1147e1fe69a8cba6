/**
 * A checkpoint's manifest, `checkpoints/<id>`: sealed JSON `{version: 1, summary, treeChunks}`, the
 * tree itself (TreeEntry NDJSON) in chunks like any data so unchanged trees dedup. Pure.
 */
import { FerryError } from '../errors';
import type { CheckpointSummary, TreeEntry } from './types';

export interface Manifest {
  version: 1;
  summary: CheckpointSummary;
  /** Ids of the chunks whose concatenation is the tree's NDJSON, in order. */
  treeChunks: string[];
}

const CHUNK_ID = /^[0-9a-f]{64}$/;

export function encodeManifest(m: Manifest): Buffer {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

/** Parses an opened manifest; BANK_CORRUPT naming the checkpoint when its shape is wrong. */
export function decodeManifest(body: Buffer, checkpoint: string, url: string): Manifest {
  const bad = (why: string, cause?: unknown): FerryError =>
    new FerryError('BANK_CORRUPT', `the manifest of checkpoint ${checkpoint} in bank ${url} ${why}`, { cause, details: { checkpoint } });
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw bad('is not JSON', err);
  }
  const m = raw as Partial<Manifest> | null;
  if (!m || typeof m !== 'object') throw bad('is not an object');
  if (m.version !== 1) throw bad(`has version ${String(m.version)}; this ferry reads version 1 (upgrade ferry)`);
  const s = m.summary;
  if (!s || typeof s !== 'object' || s.id !== checkpoint || typeof s.volume !== 'string' || typeof s.time !== 'string') {
    throw bad('has no summary of this checkpoint');
  }
  if (!Array.isArray(m.treeChunks) || !m.treeChunks.every((id) => typeof id === 'string' && CHUNK_ID.test(id))) {
    throw bad('has no list of tree chunks');
  }
  return m as Manifest;
}

/** The tree as NDJSON (one entry a line), the bytes the chunker cuts. */
export function encodeTree(entries: readonly TreeEntry[]): Buffer {
  return Buffer.concat([...treeBlocks(entries)]);
}

/**
 * The same bytes as encodeTree, in blocks of about `blockBytes` (whole lines), for a writer that
 * cuts them as they come: a 20,000-file tree is ~10 MB of NDJSON, held whole (with its lines and
 * their join) only by encodeTree.
 */
export function* treeBlocks(entries: readonly TreeEntry[], blockBytes = 1024 * 1024): Generator<Buffer> {
  let lines: string[] = [];
  let length = 0;
  for (const e of entries) {
    const line = `${JSON.stringify(e)}\n`;
    lines.push(line);
    length += line.length;
    if (length >= blockBytes) {
      yield Buffer.from(lines.join(''), 'utf8');
      lines = [];
      length = 0;
    }
  }
  if (lines.length > 0) yield Buffer.from(lines.join(''), 'utf8');
}

export function decodeTree(ndjson: Buffer, checkpoint: string, url: string): TreeEntry[] {
  const text = ndjson.toString('utf8');
  const out: TreeEntry[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as TreeEntry);
    } catch (err) {
      throw new FerryError('BANK_CORRUPT', `the tree of checkpoint ${checkpoint} in bank ${url} has a line that is not JSON`, { cause: err, details: { checkpoint } });
    }
  }
  return out;
}

/** Every chunk id a tree's files refer to (each once). */
export function treeDataChunks(entries: readonly TreeEntry[]): Set<string> {
  const ids = new Set<string>();
  for (const e of entries) for (const x of e.extents ?? []) ids.add(x.id);
  return ids;
}
