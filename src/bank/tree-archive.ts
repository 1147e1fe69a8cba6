/**
 * The tree archive: a volume's tree as a checkpoint's TreeEntry[] plus chunks. backupTree walks the
 * tree (tree-walk.ts), reads the xattrs in one getfattr (xattrs.ts), and sends the data of every new
 * or changed file through ONE chunker in walk order, holes left out (sparse.ts); each chunk is put
 * (up to PUTS_IN_FLIGHT at once) and the files whose bytes it holds get their extents
 * (tree-extents.ts). restoreTree (tree-restore.ts) writes such a tree back.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { ProcessRunner, type Runner } from '../exec/runner';
import { silentLogger, type Logger } from '../log';
import { ExtentLedger, type PlacedExtent } from './tree-extents';
import { dataRuns, looksSparse } from './sparse';
import { turns } from './event-loop-turns';
import { walkTree } from './tree-walk';
import { readXattrs } from './xattrs';
import type { ChunkCutter, ChunkStore, ProgressSink, TreeEntry } from './types';

export { restoreTree, type RestoreTreeOptions } from './tree-restore';

/** Size of each read of a sparse file (others are read straight into the cutter, up to its max chunk at a time). */
export const READ_BYTES = 1024 * 1024;
/**
 * Chunks being put at once (each up to the chunker's max, 4 MiB, in the chunk store's copy): the
 * bank's chunk store seals 8 at a time into its packs, so more in flight would only hold memory.
 */
export const PUTS_IN_FLIGHT = 8;
/** How often progress is reported at most. */
const PROGRESS_EVERY_MS = 200;

export interface BackupTreeOptions {
  /** A fresh chunker of the bank (Bank.cutter()). */
  cutter: ChunkCutter;
  /** Where chunks go (Bank.chunks()); put dedups against the chunks the bank has. */
  chunks: ChunkStore;
  /**
   * The parent checkpoint's entries: unchanged files reuse their extents (with stableInodes). A
   * promise of them is awaited after the walk (the caller reads the manifest meanwhile).
   */
  parent?: TreeEntry[] | Promise<TreeEntry[] | undefined>;
  /** True when ino and ctime survive the backend's snapshot clones (btrfs, zfs, lvm, loop), so they can prove a file unchanged. */
  stableInodes: boolean;
  progress?: ProgressSink;
  /** Runs getfattr (default: a ProcessRunner on `log`). */
  runner?: Runner;
  log?: Logger;
}

export interface BackupTreeResult {
  entries: TreeEntry[];
  /** Logical bytes of file data in the tree (holes included), and the files counted. */
  dataBytes: number;
  files: number;
  /** Files read this time and their bytes (holes included), and the files reused from the parent unread. */
  readFiles: number;
  readBytes: number;
  reusedFiles: number;
  reusedBytes: number;
}

/** True when the parent's entry for the same path proves the file unchanged: size, mtime, inode and ctime all equal. */
export function unchanged(now: TreeEntry, before: TreeEntry | undefined): boolean {
  return (
    before !== undefined &&
    before.type === 'file' &&
    now.type === 'file' &&
    before.extents !== undefined &&
    before.size === now.size &&
    before.mtimeNs === now.mtimeNs &&
    before.ino !== undefined &&
    before.ino === now.ino &&
    before.ctimeNs !== undefined &&
    before.ctimeNs === now.ctimeNs
  );
}

/** Backs up the tree at `root`: its entries (walk order) with extents into chunks put through `o.chunks`. */
export async function backupTree(root: string, o: BackupTreeOptions): Promise<BackupTreeResult> {
  const log = o.log ?? silentLogger();
  const runner = o.runner ?? new ProcessRunner(log);
  // getfattr runs (another process, another core) while the walk lstats.
  const reading = readXattrs(runner, root);
  reading.catch(() => undefined); // a walk that fails first leaves it unawaited
  if (o.parent instanceof Promise) o.parent.catch(() => undefined); // the same
  const walked = await walkTree(root, log);
  const xattrs = await reading;
  const parentByPath = new Map(((await o.parent) ?? []).map((e) => [e.path, e]));

  const entries = walked.map((w) => w.entry);
  const toRead: number[] = [];
  let dataBytes = 0;
  let files = 0;
  let reusedFiles = 0;
  let reusedBytes = 0;
  for (let i = 0; i < walked.length; i++) {
    const e = entries[i];
    // A hard link's xattrs are its inode's: kept once, on the first path.
    const x = e.type === 'hardlink' ? undefined : xattrs.get(e.path);
    if (x) e.xattrs = x;
    if (e.type !== 'file') continue;
    files++;
    dataBytes += e.size ?? 0;
    const before = parentByPath.get(e.path);
    if (o.stableInodes && unchanged(e, before)) {
      e.extents = before!.extents!.map((x) => ({ ...x }));
      reusedFiles++;
      reusedBytes += e.size ?? 0;
    } else toRead.push(i);
  }

  let doneBytes = reusedBytes;
  let lastReport = 0;
  const report = (force: boolean): void => {
    if (!o.progress) return;
    const now = Date.now();
    if (!force && now - lastReport < PROGRESS_EVERY_MS) return;
    lastReport = now;
    o.progress({ phase: 'backup', doneBytes, totalBytes: dataBytes, files, uploadedBytes: o.chunks.uploadedBytes(), reusedBytes });
  };
  report(true);

  const ledger = new ExtentLedger();
  const placed: PlacedExtent[] = [];
  const ids: string[] = [];
  const inFlight: Array<Promise<void>> = [];
  // The cutter's chunks are views of its buffer. Each is hashed there; one the bank holds already
  // (most, after the first backup) needs nothing more. A new one is put: the chunk store copies it
  // before put returns (into a buffer its sealer takes), so the view may go stale right after.
  const emit = async (view: Buffer): Promise<void> => {
    const cut = ledger.cut(view.length);
    placed.push(...cut.extents);
    const id = o.chunks.idOf(view);
    if (o.chunks.holds(id)) {
      ids[cut.chunk] = id;
      return;
    }
    const put = o.chunks.put(view, id).then((got) => {
      ids[cut.chunk] = got;
    });
    // Marked handled now; the rejection still reaches whoever awaits it below.
    put.catch(() => undefined);
    inFlight.push(put);
    while (inFlight.length >= PUTS_IN_FLIGHT) await inFlight.shift();
  };

  let readBytes = 0;
  // A file that is not sparse is read straight into the cutter's buffer (ChunkCutter.space): no copy.
  // A sparse one is read into this buffer, and only its data runs are fed to the cutter. Fresh
  // buffers per read would cost page faults on every byte read.
  const readBuf = Buffer.allocUnsafe(READ_BYTES);
  // Files are opened and read synchronously (most are small, and a thread-pool trip per open, read
  // and close cost more than the calls); the event loop runs at least every 8 reads.
  const turn = turns(8);
  for (const i of toRead) {
    const w = walked[i];
    const size = w.entry.size ?? 0;
    const sparse = looksSparse(size, w.blocks);
    const fd = openSync(w.abs, 'r');
    try {
      let at = 0;
      while (at < size) {
        await turn();
        const room = sparse ? readBuf : o.cutter.space();
        const bytesRead = readSync(fd, room, 0, Math.min(room.length, size - at), at);
        if (bytesRead === 0) {
          log.warn({ path: w.abs, size, read: at }, 'file shrank while it was read: the rest is restored as zeros');
          break;
        }
        if (!sparse) {
          ledger.add({ file: i, at, length: bytesRead });
          for (const view of o.cutter.commitViews(bytesRead)) await emit(view);
        } else {
          const data = readBuf.subarray(0, bytesRead);
          for (const run of dataRuns(data, at)) {
            ledger.add({ file: i, at: run.at, length: run.end - run.start });
            for (let from = run.start; from < run.end; from += o.cutter.maxChunk) {
              const views = o.cutter.pushViews(data.subarray(from, Math.min(run.end, from + o.cutter.maxChunk)));
              for (const view of views) await emit(view);
            }
          }
        }
        at += bytesRead;
        doneBytes += bytesRead;
        readBytes += bytesRead;
        report(false);
      }
    } finally {
      closeSync(fd);
    }
  }
  const last = o.cutter.endView();
  if (last) await emit(last);
  while (inFlight.length > 0) await inFlight.shift();
  if (ledger.pendingBytes() !== 0) throw new Error(`chunker kept ${ledger.pendingBytes()} bytes after end()`);

  for (const p of placed) entries[p.file].extents!.push({ id: ids[p.chunk], offset: p.offset, length: p.length, at: p.at });
  report(true);
  log.info({ root, files, dataBytes, readFiles: toRead.length, readBytes, reusedFiles, reusedBytes }, 'tree backed up');
  return { entries, dataBytes, files, readFiles: toRead.length, readBytes, reusedFiles, reusedBytes };
}
