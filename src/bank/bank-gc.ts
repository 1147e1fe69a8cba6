/**
 * `bank gc`: under the exclusive gc lock, the chunks every manifest reaches (its tree chunks and the
 * chunks its tree's files name) are kept and every other object of `chunks/` is deleted. Backups
 * cannot run meanwhile (they wait for the gc lock), so no chunk a backup relies on is taken from it.
 * A manifest or tree that cannot be read stops gc before it deletes anything.
 */
import type { AcquireOptions, BankLocks, HeldLock, LockKind } from './bank-locks';
import { chunkIdOfKey } from './bank-chunks';
import { treeDataChunks, type Manifest } from './manifest';
import { mapLimit } from './map-limit';
import type { BankStore, ProgressSink, TreeEntry } from './types';

export interface GcOptions {
  host: string;
  dryRun?: boolean;
  progress?: ProgressSink;
  /** How long to wait for running backups (default: the lock's). */
  waitMs?: number;
  onWait?: (msg: string) => void;
}

export interface GcResult {
  removed: number;
  removedBytes: number;
  kept: number;
}

/** Deletes in batches this large (S3's DeleteObjects takes up to 1000). */
const DELETE_BATCH = 1000;

/** The chunk ids the manifests reach (pure over what was read). */
export function reachableChunks(trees: Array<{ treeChunks: readonly string[]; entries: Parameters<typeof treeDataChunks>[0] }>): Set<string> {
  const used = new Set<string>();
  for (const t of trees) {
    for (const id of t.treeChunks) used.add(id);
    for (const id of treeDataChunks(t.entries)) used.add(id);
  }
  return used;
}

/** What gc reads and locks of a bank (the Bank class is one; gc does not import it, the Bank imports gc). */
export interface GcSubject {
  readonly store: BankStore;
  readonly locks: Pick<BankLocks, 'removeStale'>;
  lock(kind: LockKind, host: string, o?: AcquireOptions): Promise<HeldLock>;
  listManifests(): Promise<Manifest[]>;
  readTree(m: Manifest): Promise<TreeEntry[]>;
}

export async function runGc(bank: GcSubject, o: GcOptions): Promise<GcResult> {
  const lock = await bank.lock('gc', o.host, { waitMs: o.waitMs, onWait: o.onWait });
  try {
    const manifests = await bank.listManifests();
    let read = 0;
    const trees = await mapLimit(manifests, 4, async (m) => {
      const entries = await bank.readTree(m);
      o.progress?.({ phase: 'reading checkpoints', doneBytes: ++read, totalBytes: manifests.length });
      return { treeChunks: m.treeChunks, entries };
    });
    const used = reachableChunks(trees);
    const garbage: Array<{ key: string; size: number }> = [];
    let kept = 0;
    for (const obj of await bank.store.list('chunks/')) {
      const id = chunkIdOfKey(obj.key);
      if (id === null) continue; // not a chunk (a store's temporary file): not ours to judge
      if (used.has(id)) kept++;
      else garbage.push(obj);
    }
    const removedBytes = garbage.reduce((n, g) => n + g.size, 0);
    if (!o.dryRun) {
      for (let i = 0; i < garbage.length; i += DELETE_BATCH) {
        await bank.store.delete(garbage.slice(i, i + DELETE_BATCH).map((g) => g.key));
        o.progress?.({ phase: 'removing chunks', doneBytes: Math.min(i + DELETE_BATCH, garbage.length), totalBytes: garbage.length });
      }
      await bank.locks.removeStale();
    }
    return { removed: garbage.length, removedBytes, kept };
  } finally {
    await lock.release();
  }
}
