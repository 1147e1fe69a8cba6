import type { BankChunksOptions } from './bank-chunks';
import type { AcquireOptions, HeldLock, LockKind } from './bank-locks';
import { backupTree } from './tree-archive';
import type { CheckpointSummary, ChunkCutter, ChunkStore, ProgressSink, TreeEntry } from './types';

/** What a checkpoint says about where its tree came from; the walk adds files and bytes. */
export interface BackupSubject {
  volume: string;
  host: string;
  backend: string;
  sizeBytes?: number;
  fs?: string;
  origin: string;
}

export interface BackupOptions {
  /** Inode numbers survive from one snapshot to the next (btrfs, zfs): unchanged files are known by them. */
  stableInodes: boolean;
  progress?: ProgressSink;
  /** Told whom the backup lock waits for (a gc). */
  onLockWait?: (msg: string) => void;
  /** Each chunk's sealed bytes as they go up. */
  onUpload?: (bytes: number) => void;
  /** The lock could not be released (the store went away): it goes stale in 120 s by itself. */
  onLockReleaseFailed?: (err: unknown) => void;
}

export interface BackupResult {
  summary: CheckpointSummary;
  /** Sealed bytes this backup stored (chunks the bank did not have). */
  uploadedBytes: number;
}

/** What a backup uses of the bank (src/bank/bank.ts's Bank). */
export interface BackupTarget {
  cutter(): ChunkCutter;
  chunks(o?: BankChunksOptions): ChunkStore;
  knownChunks(): Promise<Set<string>>;
  newestCheckpoint(volume: string): Promise<{ summary: CheckpointSummary; entries: TreeEntry[] } | undefined>;
  writeCheckpoint(summary: Omit<CheckpointSummary, 'id' | 'addedBytes'>, entries: TreeEntry[], chunks: ChunkStore): Promise<CheckpointSummary>;
  lock(kind: LockKind, host: string, o?: AcquireOptions): Promise<HeldLock>;
}

/**
 * Backs up the tree at `root` (a read-only snapshot's mountpoint) as a new checkpoint of
 * `subject.volume`, under the bank's shared backup lock (a gc waits). Its newest checkpoint is the
 * parent: unchanged files reuse its chunk lists. The manifest is written last, so a failure leaves
 * no checkpoint, only chunks the rerun reuses or the next gc removes.
 */
export async function runBackup(bank: BackupTarget, root: string, subject: BackupSubject, o: BackupOptions): Promise<BackupResult> {
  const lock = await bank.lock('backup', subject.host, o.onLockWait ? { onWait: o.onLockWait } : {});
  try {
    // The bank's indexes and the parent's manifest are read (each a wait on the store) while the
    // tree is walked: backupTree awaits the parent after its walk, the chunks' puts the indexes.
    // Only the walk needs the parent's entries (~10 MB of objects for 20,000 files): `found` is
    // let go after it, so they are not held while the manifest is written; the id is kept.
    let found: ReturnType<BackupTarget['newestCheckpoint']> | undefined = bank.newestCheckpoint(subject.volume);
    const parentId = found.then((p) => p?.summary.id);
    parentId.catch(() => undefined); // awaited below, unless the backup failed before
    const chunks = bank.chunks({ trusted: bank.knownChunks(), ...(o.onUpload ? { onUpload: o.onUpload } : {}) });
    try {
      const tree = await backupTree(root, {
        cutter: bank.cutter(),
        chunks,
        parent: found.then((p) => p?.entries),
        stableInodes: o.stableInodes,
        ...(o.progress ? { progress: o.progress } : {}),
      });
      found = undefined;
      o.progress?.({ phase: 'manifest', doneBytes: tree.dataBytes, totalBytes: tree.dataBytes, files: tree.files, uploadedBytes: chunks.uploadedBytes() });
      const parent = await parentId;
      const summary = await bank.writeCheckpoint(
        {
          volume: subject.volume,
          time: new Date().toISOString(),
          host: subject.host,
          backend: subject.backend,
          ...(subject.sizeBytes ? { sizeBytes: subject.sizeBytes } : {}),
          ...(subject.fs ? { fs: subject.fs } : {}),
          dataBytes: tree.dataBytes,
          files: tree.files,
          ...(parent ? { parent } : {}),
          origin: subject.origin,
        },
        tree.entries,
        chunks,
      );
      return { summary, uploadedBytes: chunks.uploadedBytes() };
    } finally {
      await chunks.close();
    }
  } finally {
    await lock.release().catch((err: unknown) => o.onLockReleaseFailed?.(err));
  }
}
