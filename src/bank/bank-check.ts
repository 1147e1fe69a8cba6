/**
 * `bank check`: every manifest opens, every chunk it reaches is in the index and its pack exists (one
 * listing of packs/), and (with readDataPercent) a random share of those chunks is read from its
 * pack (a ranged read), opened and hashed again. Each problem names the chunk (or object) and the
 * checkpoints it breaks. Reads only: takes no lock, works on a read-only bank.
 */
import { isFerryError } from '../errors';
import { checkpointKey, isCheckpointId } from './checkpoint-id';
import { treeDataChunks, type Manifest } from './manifest';
import { mapLimit } from './map-limit';
import { indexOf, packIdOfKey, type BankIndex } from './pack-index';
import type { BankStore, ChunkStore, ProgressSink, TreeEntry } from './types';

export interface CheckOptions {
  /** 0..100: the share of referenced chunks to read back. */
  readDataPercent?: number;
  progress?: ProgressSink;
}

export interface CheckProblem {
  /** The chunk id, or for a manifest that does not open, its object key (checkpoints/<id>). */
  chunk: string;
  problem: 'missing' | 'corrupt';
  checkpoints: string[];
}

export interface CheckResult {
  checkpoints: number;
  /** Chunks referenced (tree and data), each once. */
  chunks: number;
  /** Chunks read back for --read-data. */
  read: number;
  problems: CheckProblem[];
}

/** How many of `n` chunks a `percent` read covers: at least one when any is asked for (pure). */
export function sampleSize(n: number, percent: number): number {
  if (!(percent > 0) || n === 0) return 0;
  return Math.min(n, Math.ceil((n * Math.min(percent, 100)) / 100));
}

/** `k` distinct items of `items`, uniformly (partial Fisher-Yates). */
function sample<T>(items: T[], k: number): T[] {
  const a = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(Math.random() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

/** What check reads of a bank (the Bank class is one; check does not import it, the Bank imports check). */
export interface CheckSubject {
  readonly store: BankStore;
  readManifest(id: string): Promise<Manifest>;
  index(): Promise<BankIndex>;
  chunks(o?: { index?: BankIndex; readAhead?: boolean }): ChunkStore;
  readTree(m: Manifest, chunks?: ChunkStore): Promise<TreeEntry[]>;
}

export async function runCheck(bank: CheckSubject, o: CheckOptions = {}): Promise<CheckResult> {
  const problems: CheckProblem[] = [];
  const corrupt = new Set<string>();
  const ids = (await bank.store.list('checkpoints/')).map((x) => x.key.slice('checkpoints/'.length)).filter(isCheckpointId).sort();
  const manifests: Manifest[] = [];
  await mapLimit(ids, 8, async (id) => {
    try {
      manifests.push(await bank.readManifest(id));
    } catch (err) {
      if (isFerryError(err, 'CHECKPOINT_NOT_FOUND')) return;
      if (!isFerryError(err, 'BANK_CORRUPT')) throw err;
      problems.push({ chunk: checkpointKey(id), problem: 'corrupt', checkpoints: [id] });
    }
  });
  // The index as far as its packs exist: a chunk whose every pack is gone is missing.
  const full = await bank.index();
  const packs = new Set((await bank.store.list('packs/')).map((x) => packIdOfKey(x.key)).filter((id): id is string => id !== null));
  const index = indexOf(new Map([...full.packs].filter(([pack]) => packs.has(pack))));
  const existing = index.chunks;
  // Which checkpoints reach each chunk.
  const refs = new Map<string, Set<string>>();
  const ref = (chunk: string, cp: string): void => {
    let s = refs.get(chunk);
    if (!s) refs.set(chunk, (s = new Set()));
    s.add(cp);
  };
  const chunks = bank.chunks({ index, readAhead: false });
  let done = 0;
  await mapLimit(manifests, 4, async (m) => {
    const cp = m.summary.id;
    for (const c of m.treeChunks) ref(c, cp);
    // A tree with a missing chunk cannot be read: that chunk is reported missing below.
    if (m.treeChunks.every((c) => existing.has(c))) {
      try {
        for (const c of treeDataChunks(await bank.readTree(m, chunks))) ref(c, cp);
      } catch (err) {
        if (!isFerryError(err, 'BANK_CORRUPT')) throw err;
        const bad = typeof err.details?.chunk === 'string' ? err.details.chunk : checkpointKey(cp);
        corrupt.add(bad);
      }
    }
    o.progress?.({ phase: 'reading checkpoints', doneBytes: ++done, totalBytes: manifests.length });
  });
  const present: string[] = [];
  for (const [chunk, cps] of refs) {
    if (!existing.has(chunk)) problems.push({ chunk, problem: 'missing', checkpoints: [...cps].sort() });
    else present.push(chunk);
  }
  const toRead = sample(present, sampleSize(present.length, o.readDataPercent ?? 0));
  let read = 0;
  await mapLimit(toRead, 4, async (chunk) => {
    try {
      chunks.release(await chunks.get(chunk));
    } catch (err) {
      if (!isFerryError(err, 'BANK_CORRUPT')) throw err;
      corrupt.add(chunk);
    }
    read++;
    o.progress?.({ phase: 'reading data', doneBytes: read, totalBytes: toRead.length });
  });
  for (const chunk of corrupt) {
    problems.push({ chunk, problem: 'corrupt', checkpoints: [...(refs.get(chunk) ?? [])].sort() });
  }
  return { checkpoints: manifests.length, chunks: refs.size, read, problems };
}
