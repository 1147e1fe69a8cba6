import type { Bank } from '../bank/bank';
import type { BackupOptions, BackupResult, BackupSubject } from '../bank/bank-backup';
import type { GcResult as BankGcResult } from '../bank/bank-gc';
import type { BankLocation, BankStore, ChunkStore, CheckpointSummary, ProgressSink, TreeEntry } from '../bank/types';

/**
 * bank-ops (issue 8): what the agent uses of src/bank/ (the format, the stores, the tree archive), as
 * one small interface: `Banks` and `Backups` are built over it, serve hands them the real one
 * (`loadBankKit`). The shapes are those of common.md's Bank API.
 */

/** An opened bank (src/bank/bank.ts's `Bank`, as the agent uses it). */
export interface OpenBank {
  readonly id: string;
  readonly store: BankStore;
  /** The bank's chunks, for reading (a restore). */
  chunks(): ChunkStore;
  /** Backs up the tree at `root` as a new checkpoint (src/bank/bank-backup.ts). */
  backUp(root: string, subject: BackupSubject, o: BackupOptions): Promise<BackupResult>;
  readCheckpoint(id: string): Promise<{ summary: CheckpointSummary; entries: TreeEntry[] }>;
  /** Oldest first. */
  listCheckpoints(volume?: string): Promise<CheckpointSummary[]>;
  removeCheckpoint(id: string): Promise<void>;
  gc(o: { host: string; dryRun?: boolean; progress?: ProgressSink }): Promise<GcResult>;
  check(o: { readDataPercent?: number; progress?: ProgressSink }): Promise<CheckResult>;
  /** Frees what the bank holds (its sealer's worker threads); it is not used after. */
  close(): Promise<void>;
}

/** What `ferry bank gc` answers (the bank's own record: chunks and packs removed, repacked, kept). */
export type GcResult = BankGcResult;

/** What `ferry bank check` answers: problems name the chunk and the checkpoints it breaks. */
export interface CheckResult {
  checkpoints: number;
  chunks: number;
  read: number;
  problems: Array<{ chunk: string; problem: 'missing' | 'corrupt'; checkpoints: string[] }>;
}

/** The tree archive's restore (src/bank/tree-archive.ts; backups go through OpenBank.backUp). */
export interface TreeArchive {
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

/**
 * The real kit, loaded on first use (an agent that never backs up does not load the bank's modules,
 * its worker threads or the AWS SDK). `spoolDir`: where s3:// banks stage packs on local disk.
 */
export async function loadBankKit(spoolDir: string): Promise<BankKit> {
  const [{ Bank }, { openStore }, tree] = await Promise.all([import('../bank/bank'), import('../bank/open-store'), import('../bank/tree-archive')]);
  return {
    openStore: (loc) => openStore(loc, { spoolDir }),
    createBank: async (store, key) => asOpenBank(await Bank.create(store, key)),
    openBank: async (store, key) => asOpenBank(await Bank.open(store, key)),
    restoreTree: (entries, into, o) => tree.restoreTree(entries, into, o),
  };
}

/** A Bank as the agent uses it. */
function asOpenBank(b: Bank): OpenBank {
  return {
    id: b.id,
    store: b.store,
    chunks: () => b.chunks(),
    backUp: (root, subject, o) => b.backUp(root, subject, o),
    readCheckpoint: (id) => b.readCheckpoint(id),
    listCheckpoints: (volume) => b.listCheckpoints(volume),
    removeCheckpoint: (id) => b.removeCheckpoint(id),
    close: () => b.close(),
    gc: (o) => b.gc(o),
    check: (o) => b.check(o),
  };
}
