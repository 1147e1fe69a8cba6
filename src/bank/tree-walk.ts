/**
 * The tree archive's walk: every entry under a root, depth-first in byte order of names (the same
 * tree gives the same entries), lstat'ed, as TreeEntry metadata (no data yet). Hard links after the
 * first become `hardlink` entries naming the first path; sockets are skipped (they are not data).
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log';
import { turns } from './event-loop-turns';
import type { TreeEntry } from './types';

/** One walked entry: its tree entry, where it is, and what the data pass needs of its stat. */
export interface WalkedEntry {
  entry: TreeEntry;
  abs: string;
  /** Regular files: 512-byte blocks allocated (fewer than the size needs → read as sparse). */
  blocks: number;
}

/** A name as the archive can keep it: readdir's bytes that are valid UTF-8, else undefined. */
function utf8Name(raw: Buffer): string | undefined {
  const s = raw.toString('utf8');
  return Buffer.from(s, 'utf8').equals(raw) ? s : undefined;
}

/** Walks `root`: the root itself ('') first, then each directory's entries in byte order, depth first. */
export async function walkTree(root: string, log: Logger): Promise<WalkedEntry[]> {
  const out: WalkedEntry[] = [];
  // dev:ino → first path, for inodes with more than one link.
  const firstPaths = new Map<string, string>();
  let sockets = 0;
  // lstat and readdir synchronously (a thread-pool trip each costs more than the call), letting the
  // event loop run every 256 entries. Paths still to visit, the next one last (a stack, not
  // recursion: no promise per entry).
  const turn = turns(256);
  const todo: Array<[rel: string, abs: string]> = [['', root]];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const pause = turn();
    if (pause) await pause;
    const [rel, abs] = next;
    const st = lstatSync(abs, { bigint: true });
    const mode = Number(st.mode & 0o7777n);
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const mtimeNs = st.mtimeNs.toString();
    if (st.isDirectory()) {
      out.push({ entry: { path: rel, mode, uid, gid, mtimeNs, type: 'dir' }, abs, blocks: 0 });
      const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
      // Pushed last to first, so that the first name is visited next.
      for (let i = names.length - 1; i >= 0; i--) {
        const name = utf8Name(names[i]);
        if (name === undefined) {
          log.warn({ dir: abs, name: names[i].toString('hex') }, 'tree entry skipped: its name is not UTF-8');
          continue;
        }
        todo.push([rel === '' ? name : `${rel}/${name}`, join(abs, name)]);
      }
      continue;
    }
    if (st.nlink > 1n && !st.isSymbolicLink()) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstPaths.get(key);
      if (first !== undefined) {
        out.push({ entry: { path: rel, mode, uid, gid, mtimeNs, type: 'hardlink', target: first }, abs, blocks: 0 });
        continue;
      }
      firstPaths.set(key, rel);
    }
    if (st.isFile()) {
      const entry: TreeEntry = { path: rel, mode, uid, gid, mtimeNs, type: 'file', size: Number(st.size), extents: [], ino: Number(st.ino), ctimeNs: st.ctimeNs.toString() };
      out.push({ entry, abs, blocks: Number(st.blocks) });
    } else if (st.isSymbolicLink()) {
      const target = utf8Name(readlinkSync(abs, { encoding: 'buffer' }));
      if (target === undefined) {
        log.warn({ path: abs }, 'symlink skipped: its target is not UTF-8');
        continue;
      }
      out.push({ entry: { path: rel, mode, uid, gid, mtimeNs, type: 'symlink', target }, abs, blocks: 0 });
    } else if (st.isFIFO()) {
      out.push({ entry: { path: rel, mode, uid, gid, mtimeNs, type: 'fifo' }, abs, blocks: 0 });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      out.push({ entry: { path: rel, mode, uid, gid, mtimeNs, type: st.isCharacterDevice() ? 'chardev' : 'blockdev', rdev: Number(st.rdev) }, abs, blocks: 0 });
    } else if (st.isSocket()) {
      sockets++;
      log.debug({ path: abs }, 'socket skipped');
    }
  }
  if (sockets > 0) log.info({ root, sockets }, 'sockets skipped: a socket holds no data, whoever listens on it makes it again');
  return out;
}
