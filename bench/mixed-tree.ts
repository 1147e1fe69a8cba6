import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The bank bench's volume: a generated tree of mixed files, the same for a given seed and size.
 *   15 % small text-like files (0.5-16 KiB, 200 to a directory: configs, sources, mail),
 *   30 % text-like files of 1-8 MiB (log lines: compress about 4-6x with zstd),
 *   55 % incompressible files of 2-16 MiB (media, archives).
 * Text is lines drawn from a pool (numbered, so no two files are alike); random bytes are AES-CTR
 * keyed by the seed (fast, and the same on every run). `changeShare` then changes about 1 % of it
 * the way a week of use does: edits inside big files, lines inserted in the middle of text files
 * (content-defined chunking must resync after them), appends, new files and a few deletions.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** mulberry32: a small seeded PRNG for the tree's shape (sizes, picks). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
}

/** `n` incompressible bytes, determined by (seed, tag). */
export function randomBytes(seed: number, tag: string, n: number): Buffer {
  const key = createHash('sha256').update(`${seed}/${tag}`).digest();
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(n)), c.final()]);
}

/** Text-like bytes: numbered lines from a fixed pool of words. */
class TextMaker {
  private readonly lines: Buffer[] = [];
  private seq = 0;
  constructor(private readonly rng: Rng) {
    const syll = ['ka', 'to', 'ri', 'mon', 'sel', 'da', 'vek', 'ul', 'pra', 'ne', 'sto', 'li', 'gor', 'fi', 'an', 'es'];
    const words: string[] = [];
    for (let i = 0; i < 3000; i++) {
      let w = '';
      for (let k = rng.int(1, 4); k > 0; k--) w += syll[rng.int(0, syll.length - 1)];
      words.push(w);
    }
    for (let i = 0; i < 8000; i++) {
      const n = rng.int(4, 16);
      const ws: string[] = [];
      for (let k = 0; k < n; k++) ws.push(words[Math.floor(rng.next() ** 2 * words.length)]);
      this.lines.push(Buffer.from(` ${['INFO', 'WARN', 'DEBUG', 'ERROR'][rng.int(0, 3)]} ${ws.join(' ')}\n`));
    }
  }
  make(n: number): Buffer {
    const parts: Buffer[] = [];
    let len = 0;
    while (len < n) {
      const head = Buffer.from(`${1_700_000_000 + this.seq++}`);
      const line = this.lines[this.rng.int(0, this.lines.length - 1)];
      parts.push(head, line);
      len += head.length + line.length;
    }
    return Buffer.concat(parts, len).subarray(0, n);
  }
}

export interface TreeFigures {
  files: number;
  bytes: number;
}

/** Writes the tree of about `totalBytes` under `root` (which must not exist yet). */
export async function writeMixedTree(root: string, totalBytes: number, seed: number): Promise<TreeFigures> {
  const rng = new Rng(seed);
  const text = new TextMaker(rng);
  let files = 0;
  let bytes = 0;
  const put = async (path: string, data: Buffer): Promise<void> => {
    await writeFile(path, data);
    files++;
    bytes += data.length;
  };
  // Small text-like files.
  for (let done = 0, d = 0; done < totalBytes * 0.15; d++) {
    const dir = join(root, 'small', `d${String(d).padStart(3, '0')}`);
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 200 && done < totalBytes * 0.15; i++) {
      const data = text.make(rng.int(512, 16 * KiB));
      await put(join(dir, `f${i}.txt`), data);
      done += data.length;
    }
  }
  await mkdir(join(root, 'logs'), { recursive: true });
  for (let done = 0, i = 0; done < totalBytes * 0.3; i++) {
    const data = text.make(Math.min(rng.int(1 * MiB, 8 * MiB), Math.ceil(totalBytes * 0.3 - done)));
    await put(join(root, 'logs', `app${i}.log`), data);
    done += data.length;
  }
  await mkdir(join(root, 'media'), { recursive: true });
  for (let i = 0; bytes < totalBytes; i++) {
    const data = randomBytes(seed, `media${i}`, Math.min(rng.int(2 * MiB, 16 * MiB), totalBytes - bytes));
    await put(join(root, 'media', `blob${i}.bin`), data);
  }
  return { files, bytes };
}

/** Every regular file under `root`, relative, sorted. */
export async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * Changes about `share` of the tree's bytes (0.01: 1 %), deterministically for `seed`: overwrites
 * 64 KiB regions of incompressible files, inserts text in the middle of log files, appends a line to
 * small files, adds new small files, deletes a few. Returns the bytes written (new or changed).
 */
export async function changeShare(root: string, totalBytes: number, share: number, seed: number): Promise<number> {
  const rng = new Rng(seed ^ 0x5eed);
  const text = new TextMaker(rng);
  const budget = totalBytes * share;
  const all = await listFiles(root);
  const pick = (prefix: string): string[] => all.filter((f) => f.startsWith(prefix));
  const media = pick('media/');
  const logs = pick('logs/');
  const small = pick('small/');
  let changed = 0;
  // 40 %: 64 KiB overwritten in place, in media files.
  for (let i = 0; changed < budget * 0.4; i++) {
    const f = join(root, media[rng.int(0, media.length - 1)]);
    const fh = await open(f, 'r+');
    try {
      const size = (await fh.stat()).size;
      const n = Math.min(64 * KiB, size);
      await fh.write(randomBytes(seed, `edit${i}`, n), 0, n, rng.int(0, size - n));
      changed += n;
    } finally {
      await fh.close();
    }
  }
  // 25 %: 16 KiB of lines inserted in the middle of log files (every later byte shifts).
  while (changed < budget * 0.65) {
    const f = join(root, logs[rng.int(0, logs.length - 1)]);
    const data = await readFile(f);
    const at = data.indexOf(0x0a, rng.int(0, data.length - 1)) + 1;
    const add = text.make(16 * KiB);
    await writeFile(f, Buffer.concat([data.subarray(0, at), add, data.subarray(at)]));
    changed += add.length;
  }
  // 10 %: a line appended to small files.
  while (changed < budget * 0.75) {
    const add = text.make(rng.int(80, 400));
    await writeFile(join(root, small[rng.int(0, small.length - 1)]), add, { flag: 'a' });
    changed += add.length;
  }
  // 25 %: new small files; and a few deleted.
  await mkdir(join(root, 'small', 'new'), { recursive: true });
  for (let i = 0; changed < budget; i++) {
    const add = text.make(rng.int(512, 16 * KiB));
    await writeFile(join(root, 'small', 'new', `n${i}.txt`), add);
    changed += add.length;
  }
  for (let i = 0; i < 20; i++) await rm(join(root, small[rng.int(0, small.length - 1)]), { force: true });
  return changed;
}

/** One sha256 over every regular file's path and content under `root`: equal trees, equal digests. */
export async function treeDigest(root: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of await listFiles(root)) {
    h.update(f + '\0');
    h.update(await readFile(join(root, f)));
  }
  return h.digest('hex');
}
