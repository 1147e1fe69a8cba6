/**
 * For tree-archive round trips: writes a tree with every kind of entry and metadata the archive
 * keeps, and describes a tree fully (type, owner, mode, mtime, size, sha256, link target, rdev,
 * hard-link groups, allocated blocks, xattrs read by getfattr in hex) so two trees can be compared.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { sh } from './host';

const MiB = 1024 * 1024;

/** One path's description; mtimeNs apart so that it can be compared within a tolerance. */
export interface MetaEntry {
  desc: string;
  mtimeNs: bigint;
  blocks: number;
  ino: number;
}

/** Every entry under root ('' is the root), by relative path. Hard links are named by the first path of their inode. */
export function describeTree(root: string): Map<string, MetaEntry> {
  const out = new Map<string, MetaEntry>();
  const firstOfIno = new Map<number, string>();
  const visit = (rel: string): void => {
    const full = rel ? join(root, rel) : root;
    const st = lstatSync(full, { bigint: true });
    const mode = (st.mode & 0o7777n).toString(8);
    const own = `${st.uid}:${st.gid} ${mode}`;
    let desc: string;
    if (st.isDirectory()) desc = `dir ${own}`;
    else if (st.isSymbolicLink()) desc = `symlink ${st.uid}:${st.gid} -> ${readlinkSync(full)}`;
    else if (st.isFile()) desc = `file ${own} ${st.size} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
    else if (st.isFIFO()) desc = `fifo ${own}`;
    else if (st.isCharacterDevice()) desc = `chardev ${own} ${st.rdev}`;
    else if (st.isBlockDevice()) desc = `blockdev ${own} ${st.rdev}`;
    else desc = `other ${own}`;
    const ino = Number(st.ino);
    if (!st.isDirectory() && st.nlink > 1n) {
      const first = firstOfIno.get(ino) ?? rel;
      firstOfIno.set(ino, first);
      desc += ` links=${st.nlink} group=${first}`;
    }
    out.set(rel, { desc, mtimeNs: st.mtimeNs, blocks: Number(st.blocks), ino });
    if (st.isDirectory()) for (const n of readdirSync(full).sort()) visit(rel ? `${rel}/${n}` : n);
  };
  visit('');
  return out;
}

/** Every xattr under root as getfattr prints it in hex, one sorted block per file, the root's path replaced by '.'. */
export function xattrDump(root: string): string[] {
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`getfattr failed: ${r.stderr}`);
  return r.stdout
    .split('\n\n')
    .map((b) => b.trim())
    .filter((b) => b !== '')
    .map((b) => {
      const [head, ...attrs] = b.split('\n');
      return [head.replace(`# file: ${root}`, '# file: .'), ...attrs.sort()].join('\n');
    })
    .sort();
}

/** Writes `length` bytes of `fill` (or random) at `at` in an open file. */
function writeAt(fd: number, at: number, data: Buffer): void {
  writeSync(fd, data, 0, data.length, at);
}

/** Sets a path's mtime to exactly `sec`.`nsec` (touch -h: no dereference). */
export function touchNs(path: string, stamp: string): void {
  sh(['touch', '-h', '-m', '-d', `@${stamp}`, path]);
}

/**
 * Writes the full tree under root: small and big files (bigger than the largest chunk), empty file
 * and dir, a sparse file, hard links (one in another dir), symlinks (one dangling), a fifo, a char
 * device, a socket (the archive skips it), odd names, owners, setuid/setgid/sticky, xattrs and
 * POSIX ACLs, exact mtimes. Returns the paths the tests look at.
 */
export function writeRichTree(root: string, o: { smallFiles?: number; bigBytes?: number; xattrs?: boolean } = {}): { sparse: string; socket: string } {
  mkdirSync(join(root, 'data/sub/deep'), { recursive: true });
  mkdirSync(join(root, 'empty dir'));
  mkdirSync(join(root, 'other'));
  for (let i = 0; i < (o.smallFiles ?? 60); i++) writeFileSync(join(root, 'data', `small-${String(i).padStart(3, '0')}`), randomBytes(500 + ((i * 7919) % 12000)));
  writeFileSync(join(root, 'data/sub/deep/big.bin'), randomBytes(o.bigBytes ?? 5 * MiB));
  writeFileSync(join(root, 'data/empty'), '');
  writeFileSync(join(root, 'data/zeros-not-sparse'), Buffer.alloc(64 * 1024));
  // Sparse: 16 MiB with data at 0, at 5 MiB (a run over two 4 KiB blocks, unaligned end) and at the very end.
  const sparse = 'data/sparse.img';
  const fd = openSync(join(root, sparse), 'w');
  writeAt(fd, 0, randomBytes(4096));
  writeAt(fd, 5 * MiB, randomBytes(6000));
  writeAt(fd, 16 * MiB - 100, Buffer.from('x'.repeat(100)));
  closeSync(fd);
  // Hard links: three names, one in another directory.
  writeFileSync(join(root, 'data/linked'), randomBytes(20000));
  linkSync(join(root, 'data/linked'), join(root, 'data/linked-2'));
  linkSync(join(root, 'data/linked'), join(root, 'other/linked-3'));
  symlinkSync('sub/deep/big.bin', join(root, 'data/to-big'));
  symlinkSync('/nowhere/at/all', join(root, 'data/dangling'));
  sh(['mknod', join(root, 'data/fifo'), 'p']);
  linkSync(join(root, 'data/fifo'), join(root, 'other/fifo-linked'));
  sh(['mknod', join(root, 'data/null-dev'), 'c', '1', '3']);
  const socket = 'data/listening.sock';
  sh(['python3', '-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(root, socket)]);
  // Odd names.
  writeFileSync(join(root, 'other/with space'), 'space');
  writeFileSync(join(root, 'other/new\nline'), 'newline');
  writeFileSync(join(root, 'other/ünïcödé-日本'), 'utf8');
  writeFileSync(join(root, 'other/back\\slash=eq'), 'backslash');
  // Owners and modes.
  writeFileSync(join(root, 'data/setuid'), '#!/bin/sh\n');
  chownSync(join(root, 'data/setuid'), 1234, 5678);
  chmodSync(join(root, 'data/setuid'), 0o4755);
  chmodSync(join(root, 'data/small-001'), 0o600);
  chmodSync(join(root, 'data/small-002'), 0);
  chownSync(join(root, 'other'), 4321, 8765);
  chmodSync(join(root, 'other'), 0o2750);
  chmodSync(join(root, 'empty dir'), 0o1777);
  lchownSync(join(root, 'data/to-big'), 42, 43);
  // xattrs: user.* on a file and a directory, an access ACL, a default ACL (unless the filesystem has none).
  if (o.xattrs !== false) {
    sh(['setfattr', '-n', 'user.note', '-v', 'kept', join(root, 'data/small-003')]);
    sh(['setfattr', '-n', 'user.bin', '-v', '0x00ff10', join(root, 'data/sub')]);
    sh(['setfattr', '-n', 'user.empty', join(root, 'other/with space')]);
    sh(['setfacl', '-m', 'u:1234:rw,g:99:r', join(root, 'data/small-004')]);
    sh(['setfacl', '-d', '-m', 'u:1234:rx', join(root, 'data/sub/deep')]);
    sh(['setfattr', '-n', 'user.linked', '-v', 'once', join(root, 'data/linked')]);
  }
  // Exact mtimes, files and then directories (writing into a directory moves its mtime).
  touchNs(join(root, 'data/small-005'), '1600000000.123456789');
  touchNs(join(root, 'data/to-big'), '1500000000.5');
  touchNs(join(root, 'data/sub/deep'), '1400000000.000000001');
  touchNs(root, '1300000000.987654321');
  return { sparse, socket };
}

/** Expects two descriptions equal, mtimes cut to the microsecond (all Node's utimes keeps), `skip` left out of `a`. */
export function expectSameTree(a: Map<string, MetaEntry>, b: Map<string, MetaEntry>, skip: string[] = []): void {
  const want = [...a.entries()].filter(([p]) => !skip.includes(p));
  expect([...b.keys()]).to.deep.equal(want.map(([p]) => p));
  for (const [p, e] of want) {
    const got = b.get(p)!;
    expect(got.desc, p).to.equal(e.desc);
    expect(got.mtimeNs, `mtime of ${JSON.stringify(p)}`).to.equal((e.mtimeNs / 1000n) * 1000n);
  }
}
