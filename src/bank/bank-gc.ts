/**
 * `bank gc`: under the exclusive gc lock, the chunks every manifest reaches (its tree chunks and the
 * chunks its tree's files name) are live; then per pack (from its index): every chunk dead → its
 * index is deleted, then the pack; a share of dead bytes of REPACK_SHARE or more → its live sealed
 * chunks are copied verbatim into new packs, their indexes written, then the old index deleted,
 * then the old pack; a pack without an index (a crashed backup's) is deleted. Backups cannot run
 * meanwhile (they wait for the gc lock). A crash between any two steps leaves every live chunk
 * indexed in a whole pack (at worst twice, which readers accept). A manifest or tree that cannot be
 * read stops gc before it deletes anything.
 */
import type { AcquireOptions, BankLocks, HeldLock, LockKind } from './bank-locks';
import { treeDataChunks, type Manifest } from './manifest';
import { mapLimit } from './map-limit';
import { indexKey, packIdOfKey, packKey, type BankIndex, type IndexEntry } from './pack-index';
import type { PackWriter } from './pack-writer';
import type { BankStore, ChunkStore, ProgressSink, TreeEntry } from './types';

/** A pack whose dead bytes are this share of it or more is repacked. */
export const REPACK_SHARE = 0.1;

export interface GcOptions {
  host: string;
  dryRun?: boolean;
  progress?: ProgressSink;
  /** How long to wait for running backups (default: the lock's). */
  waitMs?: number;
  onWait?: (msg: string) => void;
}

export interface GcResult {
  /** Chunks no checkpoint reaches that are gone from the bank now. */
  removed: number;
  /** Bytes freed: dead chunks of removed and repacked packs, and packs without an index. */
  removedBytes: number;
  /** Live chunks (each once). */
  kept: number;
  /** Chunks no checkpoint reaches left in packs under REPACK_SHARE dead (they go when more of the pack dies). */
  unusedKept: number;
  /** Packs deleted whole (every chunk dead, or no index) and packs rewritten without their dead chunks. */
  packsRemoved: number;
  packsRepacked: number;
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

/** What gc does to the packs (decided from the index, the listing of packs/ and the live ids). */
export interface GcPlan {
  /** Indexed packs whose every chunk is dead: delete the index, then the pack. */
  remove: string[];
  /** Packs to rewrite: their live chunks (the ones this pack holds for the bank) go to new packs. */
  repack: Array<{ pack: string; keep: IndexEntry[] }>;
  /** Packs without an index: deleted. */
  orphans: string[];
  removed: number;
  removedBytes: number;
  kept: number;
  unusedKept: number;
}

/**
 * Decides what gc does (pure). A chunk indexed in several packs (a crash mid-repack, or two packs
 * written by a crashed and a resumed backup) is live in one of them only: the pack with the largest
 * live share (then the smaller id), so the others' copies count dead.
 */
export function planGc(index: Pick<BankIndex, 'packs'>, packSizes: ReadonlyMap<string, number>, live: ReadonlySet<string>, repackShare = REPACK_SHARE): GcPlan {
  const share = (entries: readonly IndexEntry[]): number => {
    const total = entries.reduce((n, e) => n + e.length, 0);
    return total === 0 ? 0 : entries.reduce((n, e) => n + (live.has(e.id) ? e.length : 0), 0) / total;
  };
  const order = [...index.packs.entries()].map(([pack, entries]) => ({ pack, entries, share: share(entries) }));
  order.sort((a, b) => b.share - a.share || (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : 0));
  const owner = new Map<string, string>();
  for (const p of order) for (const e of p.entries) if (live.has(e.id) && !owner.has(e.id)) owner.set(e.id, p.pack);

  const plan: GcPlan = { remove: [], repack: [], orphans: [], removed: 0, removedBytes: 0, kept: owner.size, unusedKept: 0 };
  const remaining = new Set<string>(); // dead ids still in a kept pack
  const dropped = new Set<string>(); // dead ids in a removed or repacked pack
  for (const p of order) {
    const keep = p.entries.filter((e) => owner.get(e.id) === p.pack);
    const dead = p.entries.filter((e) => owner.get(e.id) !== p.pack);
    const total = p.entries.reduce((n, e) => n + e.length, 0);
    const deadBytes = dead.reduce((n, e) => n + e.length, 0);
    if (keep.length === 0) {
      plan.remove.push(p.pack);
    } else if (deadBytes > 0 && deadBytes >= total * repackShare) {
      plan.repack.push({ pack: p.pack, keep });
    } else {
      for (const e of dead) if (!live.has(e.id)) remaining.add(e.id);
      continue;
    }
    plan.removedBytes += deadBytes;
    for (const e of dead) if (!live.has(e.id)) dropped.add(e.id);
  }
  for (const id of dropped) if (!remaining.has(id)) plan.removed++;
  plan.unusedKept = remaining.size;
  for (const [pack, size] of packSizes) {
    if (!index.packs.has(pack)) {
      plan.orphans.push(pack);
      plan.removedBytes += size;
    }
  }
  plan.remove.sort();
  plan.repack.sort((a, b) => (a.pack < b.pack ? -1 : 1));
  plan.orphans.sort();
  return plan;
}

/** What gc reads and locks of a bank (the Bank class is one; gc does not import it, the Bank imports gc). */
export interface GcSubject {
  readonly store: BankStore;
  readonly locks: Pick<BankLocks, 'removeStale'>;
  lock(kind: LockKind, host: string, o?: AcquireOptions): Promise<HeldLock>;
  listManifests(): Promise<Manifest[]>;
  readTree(m: Manifest, chunks?: ChunkStore): Promise<TreeEntry[]>;
  chunks(o?: { index?: BankIndex; readAhead?: boolean }): ChunkStore;
  index(): Promise<BankIndex>;
  packWriter(): PackWriter;
}

/** The pack ids under packs/ and their sizes (one listing). */
export async function listPacks(store: BankStore): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const o of await store.list('packs/')) {
    const id = packIdOfKey(o.key);
    if (id !== null) sizes.set(id, o.size); // anything else (a store's temporary file) is not ours to judge
  }
  return sizes;
}

async function deleteAll(store: BankStore, keys: string[], progress: ((done: number) => void) | undefined): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    await store.delete(keys.slice(i, i + DELETE_BATCH));
    progress?.(Math.min(i + DELETE_BATCH, keys.length));
  }
}

export async function runGc(bank: GcSubject, o: GcOptions): Promise<GcResult> {
  const lock = await bank.lock('gc', o.host, { waitMs: o.waitMs, onWait: o.onWait });
  try {
    const manifests = await bank.listManifests();
    // One index for every tree read (a reader per tree would read the whole index again each time).
    const index = await bank.index();
    const reader = bank.chunks({ index });
    let read = 0;
    const trees = await mapLimit(manifests, 4, async (m) => {
      const entries = await bank.readTree(m, reader);
      o.progress?.({ phase: 'reading checkpoints', doneBytes: ++read, totalBytes: manifests.length });
      return { treeChunks: m.treeChunks, entries };
    });
    const used = reachableChunks(trees);
    // The index was read before the packs are listed: a pack listed is then never newer than the
    // index read (and no backup writes meanwhile: they wait for the gc lock).
    const sizes = await listPacks(bank.store);
    const plan = planGc(index, sizes, used);
    const result: GcResult = {
      removed: plan.removed,
      removedBytes: plan.removedBytes,
      kept: plan.kept,
      unusedKept: plan.unusedKept,
      packsRemoved: plan.remove.length + plan.orphans.length,
      packsRepacked: plan.repack.length,
    };
    if (o.dryRun) return result;

    // Repack: live sealed bytes into new packs (stored and indexed by flush), before the old go.
    if (plan.repack.length > 0) {
      const writer = bank.packWriter();
      try {
        let done = 0;
        for (const r of plan.repack) {
          const body = await bank.store.get(packKey(r.pack));
          // A pack gone since the listing has nothing left to move (check will name what it held).
          if (body) for (const e of r.keep) await writer.add(e.id, body.subarray(e.offset, e.offset + e.length));
          o.progress?.({ phase: 'repacking', doneBytes: ++done, totalBytes: plan.repack.length });
        }
        await writer.flush();
      } finally {
        await writer.discard();
      }
    }
    const gone = [...plan.remove, ...plan.repack.map((r) => r.pack)];
    const total = gone.length * 2 + plan.orphans.length;
    // Indexes first: a pack is never listed by an index once it may be gone.
    await deleteAll(bank.store, gone.map(indexKey), (n) => o.progress?.({ phase: 'removing packs', doneBytes: n, totalBytes: total }));
    await deleteAll(bank.store, [...gone, ...plan.orphans].map(packKey), (n) =>
      o.progress?.({ phase: 'removing packs', doneBytes: gone.length + n, totalBytes: total }),
    );
    await bank.locks.removeStale();
    return result;
  } finally {
    await lock.release();
  }
}
