import type { BankLocation, BankStore, ChunkCutter, ChunkStore, CheckpointSummary, ProgressSink, TreeEntry } from '../bank/types';

/**
 * bank-ops (issue 8): what the agent uses of src/bank/ (the format, the stores, the tree archive), as
 * one small interface: `Banks` and `Backups` are built over it, serve hands them the real one
 * (`loadBankKit`). The shapes are those of common.md's Bank API.
 */

/** An opened bank (src/bank/bank.ts's `Bank`, as the agent uses it). */
export interface OpenBank {
  readonly id: string;
  readonly store: BankStore;
  cutter(): ChunkCutter;
  chunks(o?: { trusted?: Set<string>; onUpload?: (bytes: number) => void }): ChunkStore;
  knownChunks(): Promise<Set<string>>;
  writeCheckpoint(summary: Omit<CheckpointSummary, 'id' | 'addedBytes'> & { id?: string }, entries: TreeEntry[], chunks: ChunkStore): Promise<CheckpointSummary>;
  readCheckpoint(id: string): Promise<{ summary: CheckpointSummary; entries: TreeEntry[] }>;
  /** Oldest first. */
  listCheckpoints(volume?: string): Promise<CheckpointSummary[]>;
  removeCheckpoint(id: string): Promise<void>;
  lock(kind: 'backup' | 'gc', host: string, o?: { waitMs?: number; onWait?: (msg: string) => void }): Promise<{ release(): Promise<void> }>;
  gc(o: { host: string; dryRun?: boolean; progress?: ProgressSink }): Promise<GcResult>;
  check(o: { readDataPercent?: number; progress?: ProgressSink }): Promise<CheckResult>;
}

/** What `ferry bank gc` answers. */
export interface GcResult {
  removed: number;
  removedBytes: number;
  kept: number;
}

/** What `ferry bank check` answers: problems name the chunk and the checkpoints it breaks. */
export interface CheckResult {
  checkpoints: number;
  chunks: number;
  read: number;
  problems: Array<{ chunk: string; problem: 'missing' | 'corrupt'; checkpoints: string[] }>;
}

/** The tree archive (src/bank/tree-archive.ts). */
export interface TreeArchive {
  backupTree(
    root: string,
    o: { cutter: ChunkCutter; chunks: ChunkStore; parent?: TreeEntry[]; stableInodes: boolean; progress?: ProgressSink },
  ): Promise<{ entries: TreeEntry[]; dataBytes: number; files: number }>;
  restoreTree(entries: TreeEntry[], into: string, o: { chunks: ChunkStore; path?: string; progress?: ProgressSink }): Promise<{ files: number; bytes: number }>;
}

/** Everything of the bank the agent needs. */
export interface BankKit extends TreeArchive {
  /** file:// or s3:// (src/bank/open-store.ts). */
  openStore(loc: BankLocation): BankStore;
  /** Writes the bank's config if the store has none, else opens it (BANK_KEY_WRONG). */
  createBank(store: BankStore, key: Buffer): Promise<OpenBank>;
  /** BANK_NOT_FOUND (no config), BANK_KEY_WRONG. */
  openBank(store: BankStore, key: Buffer): Promise<OpenBank>;
}

/** The modules of src/bank/ the kit is made of. */
interface BankModules {
  bank: { Bank: { create(store: BankStore, key: Buffer): Promise<OpenBank>; open(store: BankStore, key: Buffer): Promise<OpenBank> } };
  stores: { openStore(loc: BankLocation): BankStore };
  tree: TreeArchive;
}

/**
 * The real kit, loaded on first use (an agent that never backs up does not load the AWS SDK).
 * The paths are held in a table rather than written into `import()`: src/bank/bank.ts, open-store.ts
 * and tree-archive.ts come from their owners' branches (bank-core, bank-stores, bank-tree).
 */
export async function loadBankKit(): Promise<BankKit> {
  const paths = { bank: '../bank/bank', stores: '../bank/open-store', tree: '../bank/tree-archive' };
  const load = (p: string): Promise<unknown> => import(p);
  const m = {
    bank: (await load(paths.bank)) as BankModules['bank'],
    stores: (await load(paths.stores)) as BankModules['stores'],
    tree: (await load(paths.tree)) as BankModules['tree'],
  };
  return {
    openStore: (loc) => m.stores.openStore(loc),
    createBank: (store, key) => m.bank.Bank.create(store, key),
    openBank: (store, key) => m.bank.Bank.open(store, key),
    backupTree: (root, o) => m.tree.backupTree(root, o),
    restoreTree: (entries, into, o) => m.tree.restoreTree(entries, into, o),
  };
}
