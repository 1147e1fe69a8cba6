import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

/** A checksum of every entry under `root`: type, mode, size, content, link target. Order-independent. */
export function treeDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      if (rel === '' && name === 'lost+found') continue; // ext4/xfs make it; it is not user data
      const r = rel ? `${rel}/${name}` : name;
      const full = join(root, r);
      const st = lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(full)}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        walk(r);
      } else out.set(r, `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

/** Writes a varied tree: nested dirs, empty dir, random and sparse-ish files, a symlink, odd modes. */
export function writeSampleTree(root: string, seedFiles = 20, bigBytes = 4 * 1024 * 1024): void {
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  mkdirSync(join(root, 'empty'), { recursive: true });
  for (let i = 0; i < seedFiles; i++) writeFileSync(join(root, 'a', `f${i}.bin`), randomBytes(1000 + i * 37));
  writeFileSync(join(root, 'a/b/c/big.bin'), randomBytes(bigBytes));
  writeFileSync(join(root, 'zeros.bin'), Buffer.alloc(1024 * 1024));
  writeFileSync(join(root, 'a/b/secret'), 'mode 600');
  chmodSync(join(root, 'a/b/secret'), 0o600);
  symlinkSync('a/b/c/big.bin', join(root, 'link-to-big'));
}
