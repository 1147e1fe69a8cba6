/**
 * ferry's side of the bank bench, in a process of its own so that its peak memory (VmHWM) is the
 * work's alone: a backup of a directory into a bank, or a restore of a checkpoint into a directory,
 * through the library the agent's backup runner uses (Bank, the tree archive, openStore).
 *
 *   node dist/bench/bank-worker.js '<json WorkerJob>'
 *
 * Prints one JSON line (WorkerResult) on stdout; exits non-zero with the error on stderr.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Bank } from '../src/bank/bank';
import { openStore } from '../src/bank/open-store';
import { restoreTree } from '../src/bank/tree-archive';
import type { BankLocation } from '../src/bank/types';

export interface WorkerJob {
  op: 'backup' | 'restore';
  loc: BankLocation;
  keyFile: string;
  volume: string;
  /** backup: the tree to back up; restore: the directory to restore into. */
  dir: string;
  /** backup: reuse unchanged files' extents (inode and ctime kept, as on btrfs/zfs/lvm/loop clones). */
  stableInodes?: boolean;
  /** Where an s3:// bank stages packs (the agent's `<dataDir>/bank-work/spool`); default the OS's temporary directory. */
  spoolDir?: string;
}

export interface WorkerResult {
  checkpoint: string;
  files: number;
  dataBytes: number;
  uploadedBytes: number;
  /** Peak resident memory of this process, KiB (VmHWM). */
  hwmKiB: number;
}

function hwmKiB(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

export async function runJob(job: WorkerJob): Promise<WorkerResult> {
  const bank = await Bank.create(openStore(job.loc, { spoolDir: job.spoolDir }), readFileSync(job.keyFile));
  try {
    return await (job.op === 'restore' ? restore(bank, job) : backup(bank, job));
  } finally {
    await bank.close();
  }
}

async function restore(bank: Bank, job: WorkerJob): Promise<WorkerResult> {
  const newest = await bank.newestCheckpoint(job.volume);
  if (!newest) throw new Error(`no checkpoint of ${job.volume} in ${job.loc.url}`);
  const r = await restoreTree(newest.entries, job.dir, { chunks: bank.chunks() });
  return { checkpoint: newest.summary.id, files: r.files, dataBytes: r.bytes, uploadedBytes: 0, hwmKiB: hwmKiB() };
}

async function backup(bank: Bank, job: WorkerJob): Promise<WorkerResult> {
  const { summary, uploadedBytes } = await bank.backUp(
    job.dir,
    { volume: job.volume, host: hostname(), backend: 'directory', origin: 'manual' },
    { stableInodes: job.stableInodes ?? true },
  );
  return { checkpoint: summary.id, files: summary.files, dataBytes: summary.dataBytes, uploadedBytes, hwmKiB: hwmKiB() };
}

if (require.main === module) {
  runJob(JSON.parse(process.argv[2]) as WorkerJob).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err: Error) => {
      process.stderr.write(`${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
