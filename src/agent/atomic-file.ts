import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes `text` to `file` so that a crash leaves the old or the new content, never a torn one: a
 * temporary file beside it (owner-only), written, fsynced, renamed over it. The agent's state on
 * local disk goes through here (its volume book, its schedules, the freezer's journal, backups under
 * way): each is small and written whole.
 */
export function writeFileAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
