import { readFileSync } from 'node:fs';

/** One line of /proc/self/mountinfo, the fields ferry uses. */
export interface MountEntry {
  mountPoint: string;
  root: string;
  fsType: string;
  source: string;
  options: string;
}

// mountinfo escapes space, tab, newline and backslash as octal (\040).
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo text (pure). */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (sep < 6 || parts.length < sep + 3) continue;
    entries.push({
      root: unescape(parts[3]),
      mountPoint: unescape(parts[4]),
      options: parts[5],
      fsType: parts[sep + 1],
      source: unescape(parts[sep + 2]),
    });
  }
  return entries;
}

/** The current mount table of this process's mount namespace. */
export function readMountTable(): MountEntry[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** True when something is mounted exactly at `path`. */
export function isMountPoint(path: string, table: MountEntry[] = readMountTable()): boolean {
  return table.some((e) => e.mountPoint === path);
}
