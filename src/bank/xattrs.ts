/**
 * Extended attributes (POSIX ACLs included) for the tree archive. Node has no xattr API, so a
 * backup runs ONE `getfattr` over the whole tree and parses its dump, and a restore writes one dump
 * and runs ONE `setfattr --restore` (one process either way, however many files carry xattrs).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CommandFailedError, type Runner } from '../exec/runner';

/** argv of the dump of every xattr under `root` (package `attr`). */
export function getfattrArgv(root: string): string[] {
  return [
    'getfattr',
    '-R', // the whole tree
    '-P', // never follow a symlink to a directory while walking
    '-h', // a symlink's own xattrs, not its target's (a dangling one would fail otherwise)
    '-d', // dump name=value
    '-m', '-', // every namespace: user, trusted, security, system (POSIX ACLs)
    '-e', 'base64', // values as 0s<base64>, exact bytes
    '--absolute-names', // keep the leading '/' (and no warning on stderr)
    resolve(root),
  ];
}

/** Turns getfattr's \ooo escapes (newlines, backslashes, other unprintables) back into bytes, read as UTF-8. */
export function unquoteName(quoted: string): string {
  if (!quoted.includes('\\')) return quoted;
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of quoted.matchAll(/\\([0-7]{3})/g)) {
    parts.push(Buffer.from(quoted.slice(last, m.index), 'utf8'), Buffer.from([parseInt(m[1], 8)]));
    last = (m.index ?? 0) + m[0].length;
  }
  parts.push(Buffer.from(quoted.slice(last), 'utf8'));
  return Buffer.concat(parts).toString('utf8');
}

/** The escape setfattr --restore reads back: control bytes, DEL and '\' as \ooo; the rest (UTF-8 too) as is. */
export function quoteName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  let out = '';
  let plainFrom = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b < 0x20 || b === 0x7f || b === 0x5c) {
      out += bytes.subarray(plainFrom, i).toString('utf8') + '\\' + b.toString(8).padStart(3, '0');
      plainFrom = i + 1;
    }
  }
  return out + bytes.subarray(plainFrom).toString('utf8');
}

/**
 * Parses getfattr's dump of the tree at `root`: path relative to root ('' is root itself, '/'
 * separated) → xattr name → base64 value. Files without xattrs are absent.
 */
export function parseGetfattrDump(text: string, root: string): Map<string, Record<string, string>> {
  const base = resolve(root);
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unquoteName(line.slice('# file: '.length));
      const rel = abs === base ? '' : abs.startsWith(base + '/') ? abs.slice(base.length + 1) : undefined;
      if (rel === undefined) throw new Error(`getfattr named ${abs}, which is not under ${base}`);
      current = {};
      out.set(rel, current);
      continue;
    }
    if (!current || line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = unquoteName(eq < 0 ? line : line.slice(0, eq));
    const value = eq < 0 ? '' : line.slice(eq + 1);
    // -e base64 writes 0s<base64>; an empty value is "0s" or nothing at all.
    current[name] = value.startsWith('0s') ? value.slice(2) : value === '' ? '' : Buffer.from(value.replace(/^"|"$/g, ''), 'utf8').toString('base64');
  }
  for (const [k, v] of out) if (Object.keys(v).length === 0) out.delete(k);
  return out;
}

/** The dump `setfattr --restore` reads: every absolute path with its xattrs (base64 values). */
export function formatSetfattrDump(items: ReadonlyArray<{ abs: string; xattrs: Record<string, string> }>): string {
  let out = '';
  for (const { abs, xattrs } of items) {
    out += `# file: ${quoteName(abs)}\n`;
    for (const [name, b64] of Object.entries(xattrs)) out += `${quoteName(name)}=0s${b64}\n`;
    out += '\n';
  }
  return out;
}

/**
 * Every xattr under `root`, by relative path (one getfattr run). A filesystem that keeps no xattrs
 * (zfs-fuse, ZFS with xattr=off, some NFS mounts) has none to back up: getfattr exits 1 there saying
 * "Operation not supported" for each file, which is no failure; any other complaint still is.
 */
export async function readXattrs(runner: Runner, root: string): Promise<Map<string, Record<string, string>>> {
  const argv = getfattrArgv(root);
  const r = await runner.run(argv, { okExitCodes: [1] });
  if (r.exitCode === 1 && !onlyUnsupported(r.stderr)) throw new CommandFailedError(argv, 1, r.stderr);
  return parseGetfattrDump(r.stdout, root);
}

/** Whether every complaint of getfattr is that the filesystem keeps no xattrs (pure). */
export function onlyUnsupported(stderr: string): boolean {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  return lines.length > 0 && lines.every((l) => l.endsWith(': Operation not supported'));
}

/** Sets the xattrs of every item (absolute paths) with one `setfattr --restore`; nothing to do → no process. */
export async function applyXattrs(runner: Runner, items: ReadonlyArray<{ abs: string; xattrs: Record<string, string> }>): Promise<void> {
  if (items.length === 0) return;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-xattrs-'));
  try {
    const file = join(dir, 'dump');
    await writeFile(file, formatSetfattrDump(items), { mode: 0o600 });
    await runner.run(['setfattr', '-h', `--restore=${file}`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
