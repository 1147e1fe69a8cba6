import type { Command } from 'commander';
import { FerryError } from '../errors';
import { parseCheckpointRef, validateBankName } from '../volume/backup-refs';
import { formatSize } from '../volume/size';
import type { ListedCheckpoint, VolumeView } from '../wire/records';
import { progressFeed } from './bank-commands';
import { apiCall, apiStream } from './client';
import { table } from './format';

/** `ferry backup ls`'s table, in the order the banks list them (oldest first per bank). */
export function checkpointTable(cps: ListedCheckpoint[]): string {
  return table(
    ['BANK', 'VOLUME', 'CHECKPOINT', 'TIME', 'HOST', 'DATA', 'FILES', 'ADDED', 'ORIGIN'],
    cps.map((c) => [c.bank, c.volume, c.id, c.time.replace(/\.\d{3}Z$/, 'Z'), c.host, formatSize(c.dataBytes), String(c.files), formatSize(c.addedBytes), c.origin]),
  );
}

/** The Create options a restore takes (`-o KEY=VALUE`). */
export const RESTORE_OPTIONS = ['backend', 'size', 'fs'] as const;

/** One `-o KEY=VALUE` of `ferry backup restore` (commander's reducer); INVALID_OPTION for another key. */
export function parseRestoreOpt(value: string, prev: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  const key = value.slice(0, eq);
  if (eq <= 0 || !(RESTORE_OPTIONS as readonly string[]).includes(key)) {
    throw new FerryError('INVALID_OPTION', `option ${JSON.stringify(value)}: a restore takes ${RESTORE_OPTIONS.map((k) => `${k}=...`).join(', ')}`);
  }
  return { ...prev, [key]: value.slice(eq + 1) };
}

/** Which restore was asked (pure): a new volume (`--as`) or one path into a directory (`--path --into`). */
export function restoreMode(o: { as?: string; path?: string; into?: string; opt: Record<string, string> }): { as: string } | { path: string; into: string } {
  if (o.as !== undefined) {
    if (o.path !== undefined || o.into !== undefined) throw new FerryError('INVALID_REQUEST', 'restore either --as NEW (a new volume) or --path P --into DIR, not both');
    return { as: o.as };
  }
  if (o.path === undefined || o.into === undefined) throw new FerryError('INVALID_REQUEST', 'say where to: --as NEW (a new volume), or --path P --into DIR (one path into a directory)');
  if (Object.keys(o.opt).length) throw new FerryError('INVALID_REQUEST', '-o applies to a new volume (--as) only');
  if (!o.into.startsWith('/')) throw new FerryError('INVALID_REQUEST', `--into takes an absolute path, not ${o.into}`);
  return { path: o.path, into: o.into };
}

/**
 * bank-ops (issue 8): `ferry backup create|ls|rm|restore`. create runs on the volume's primary host
 * (another host names it), with a progress bar on stderr (none with --json).
 */
export function backupCommands(program: Command, api: () => string): void {
  const checkpointPath = (bank: string, ref: string): string => {
    const r = parseCheckpointRef(ref);
    return `/v1/banks/${encodeURIComponent(validateBankName(bank))}/volumes/${encodeURIComponent(r.volume)}/checkpoints/${encodeURIComponent(r.checkpoint)}`;
  };
  const backup = program.command('backup').description("volumes' backups in banks: take, list, remove, restore (here or in another cluster)");
  backup
    .command('create <volume>')
    .description('back a volume up to a bank (a snapshot is read; only chunks the bank lacks are uploaded)')
    .requiredOption('--to <bank>', 'the bank (ferry bank ls)')
    .option('--quiesce [mode]', "pause (the default of a bare --quiesce): freeze the containers using it for the snapshot's instant; none")
    .option('--json', 'print JSON (the checkpoint)')
    .action(async (volume: string, o: { to: string; quiesce?: string | boolean; json?: boolean }) => {
      const quiesce = o.quiesce === undefined ? {} : { quiesce: o.quiesce === true ? 'pause' : o.quiesce };
      const bar = progressFeed(`${volume} -> ${o.to}`, !!o.json);
      const r = await apiStream<{ checkpoint: ListedCheckpoint }>(api(), 'POST', `/v1/volumes/${encodeURIComponent(volume)}/backups`, { bank: validateBankName(o.to), ...quiesce }, bar.feed).finally(
        bar.stop,
      );
      const c = r.checkpoint;
      console.log(
        o.json
          ? JSON.stringify({ ...c, bank: o.to }, null, 2)
          : `${volume}@${c.id} in bank ${o.to}: ${formatSize(c.dataBytes)} in ${c.files} files, ${formatSize(c.addedBytes)} added`,
      );
    });
  backup
    .command('ls [volume]')
    .description('list checkpoints of every bank (or one), of every volume (or one)')
    .option('--bank <bank>', 'only this bank')
    .option('--json', 'print JSON (an array of checkpoints, each with its bank)')
    .option('-q, --quiet', 'print VOLUME@CHECKPOINT only')
    .action(async (volume: string | undefined, o: { bank?: string; json?: boolean; quiet?: boolean }) => {
      const q = new URLSearchParams({ ...(o.bank ? { bank: o.bank } : {}), ...(volume ? { volume } : {}) }).toString();
      const { checkpoints } = await apiCall<{ checkpoints: ListedCheckpoint[] }>(api(), 'GET', `/v1/backups${q ? `?${q}` : ''}`);
      const text = o.json ? JSON.stringify(checkpoints, null, 2) : o.quiet ? checkpoints.map((c) => `${c.volume}@${c.id}`).join('\n') : checkpointTable(checkpoints);
      if (text) console.log(text);
    });
  backup
    .command('rm <bank> <checkpoint>')
    .description('remove a checkpoint (VOLUME@CHECKPOINT) from a bank; its chunks go at the next ferry bank gc')
    .action(async (bank: string, ref: string) => {
      const r = await apiCall<{ removed: string; volume: string }>(api(), 'DELETE', checkpointPath(bank, ref));
      console.log(`${r.volume}@${r.removed}`);
    });
  backup
    .command('restore <bank> <checkpoint>')
    .description('restore VOLUME@CHECKPOINT (latest: the newest) as a new volume (--as), or one path of it into a directory (--path --into)')
    .option('--as <volume>', 'the new volume (on this host; any backend: -o backend=...)')
    .option('-o, --opt <key=value>', `the new volume's ${RESTORE_OPTIONS.join(', ')} (default: the checkpoint's where this host has its backend)`, parseRestoreOpt, {})
    .option('--path <path>', 'a file or directory of the checkpoint (relative to the volume root)')
    .option('--into <dir>', 'the directory of this host to write it into')
    .option('--json', 'print JSON')
    .action(async (bank: string, ref: string, o: { as?: string; opt: Record<string, string>; path?: string; into?: string; json?: boolean }) => {
      const mode = restoreMode(o);
      const bar = progressFeed(`${ref} <- ${bank}`, !!o.json);
      if ('as' in mode) {
        const r = await apiStream<{ volume: VolumeView }>(api(), 'POST', `${checkpointPath(bank, ref)}/restore`, { as: mode.as, ...o.opt }, bar.feed).finally(bar.stop);
        console.log(o.json ? JSON.stringify(r.volume, null, 2) : r.volume.name);
        return;
      }
      const r = await apiStream<{ files: number; bytes: number }>(api(), 'POST', `${checkpointPath(bank, ref)}/extract`, mode, bar.feed).finally(bar.stop);
      console.log(o.json ? JSON.stringify(r, null, 2) : `${mode.path || '/'} of ${ref} written into ${mode.into}: ${r.files} files, ${formatSize(r.bytes)}`);
    });
}
