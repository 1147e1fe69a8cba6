import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  MANIFEST_FORMAT,
  checkManifest,
  diffTrees,
  encodeManifest,
  isSafeRelativePath,
  parentsFirst,
  readManifest,
  sameContent,
  tarFileList,
  walkTree,
  type EntryMeta,
  type Tree,
} from '../../../../src/agent/backends/directory/tree-delta';
import { isFerryError } from '../../../../src/errors';

const file = (over: Partial<EntryMeta> = {}): EntryMeta => ({
  type: 'file',
  mode: 0o100644,
  uid: 0,
  gid: 0,
  size: 10n,
  mtimeNs: 1_000_000_000_000n,
  nlink: 1,
  rdev: 0,
  ...over,
});
const dir = (over: Partial<EntryMeta> = {}): EntryMeta => file({ type: 'dir', mode: 0o40755, size: 4096n, nlink: 2, ...over });
const tree = (entries: Record<string, EntryMeta>): Tree => new Map(Object.entries(entries));

describe('directory tree delta', function () {
  describe('diffTrees', function () {
    const base = tree({ '.': dir(), a: dir(), 'a/f': file(), 'a/g': file(), l: file({ type: 'symlink', mode: 0o120777, target: 'a/f' }), old: dir(), 'old/x': file() });

    const cases: [string, Tree, Partial<ReturnType<typeof diffTrees>>][] = [
      ['nothing changed', base, { changed: [], deleted: [], suspects: [] }],
      ['content change (size)', new Map([...base, ['a/f', file({ size: 11n })]]), { changed: ['a/f'], deleted: [] }],
      ['mode only', new Map([...base, ['a/g', file({ mode: 0o100600 })]]), { changed: ['a/g'] }],
      ['owner only', new Map([...base, ['a/g', file({ uid: 1000 })]]), { changed: ['a/g'] }],
      ['mtime only', new Map([...base, ['a/g', file({ mtimeNs: 2n })]]), { changed: ['a/g'] }],
      ['a new hard link (link count)', new Map([...base, ['a/g', file({ nlink: 2 })]]), { changed: ['a/g'] }],
      ['symlink target', new Map([...base, ['l', file({ type: 'symlink', mode: 0o120777, target: 'a/g' })]]), { changed: ['l'], deleted: [] }],
      [
        'a deleted directory lists only its top',
        tree({ '.': dir(), a: dir(), 'a/f': file(), 'a/g': file(), l: file({ type: 'symlink', mode: 0o120777, target: 'a/f' }) }),
        { changed: [], deleted: ['old'] },
      ],
      [
        'a file that became a directory is deleted first, then sent',
        new Map([...base, ['a/f', dir()], ['a/f/new', file()]]),
        { changed: ['a/f', 'a/f/new'], deleted: ['a/f'] },
      ],
      [
        'a directory that became a file drops its contents with it',
        new Map([...[...base].filter(([p]) => p !== 'old/x'), ['old', file()]]),
        { changed: ['old'], deleted: ['old'] },
      ],
    ];
    for (const [label, next, want] of cases) {
      it(label, function () {
        const got = diffTrees(next, base);
        for (const [k, v] of Object.entries(want)) expect(got[k as keyof typeof got], k).to.deep.equal(v);
      });
    }

    it('sends everything, root first, without a base', function () {
      expect(diffTrees(base, undefined)).to.deep.equal({ changed: ['.', 'a', 'a/f', 'a/g', 'l', 'old', 'old/x'], deleted: [], suspects: [] });
    });

    it('names files that look unchanged but were modified close to the base copy as suspects', function () {
      const racy = new Map([...base, ['a/g', file({ mtimeNs: 2_000_000_000_000n })]]);
      expect(diffTrees(racy, racy, 2_000_000_000_000n).suspects).to.deep.equal(['a/g']);
      expect(diffTrees(racy, racy, 2_000_000_000_001n).suspects).to.deep.equal([]);
    });
  });

  it('orders parents before children, whatever the characters', function () {
    expect(parentsFirst(['a b', 'a/b', 'a', '.', 'a-b/c', 'a-b'])).to.deep.equal(['.', 'a', 'a/b', 'a b', 'a-b', 'a-b/c']);
  });

  it('builds tar file lists with ./ prefixes and NUL separators', function () {
    expect(tarFileList(['.', 'a', '-x']).toString()).to.equal('./\0./a\0./-x\0');
    expect(tarFileList([]).length).to.equal(0);
  });

  const unsafe = ['', '.', '/etc', '../x', 'a/../../x', 'a//b', 'a/./b', 'a\0b'];
  for (const p of unsafe) it(`refuses the unsafe path ${JSON.stringify(p)}`, () => expect(isSafeRelativePath(p)).to.equal(false));
  for (const p of ['a', 'a/b c', '.hidden', 'a/..b']) it(`accepts the path ${JSON.stringify(p)}`, () => expect(isSafeRelativePath(p)).to.equal(true));

  describe('manifest', function () {
    const m = { format: MANIFEST_FORMAT, snapshot: 's2', base: 's1', deleted: ['a', 'b/c'], entries: 3 };

    it('round-trips, leaving the rest of the body, whatever the chunking', async function () {
      const body = Buffer.concat([encodeManifest(m), Buffer.from('TARDATA')]);
      for (const size of [1, 3, 1000]) {
        const parts: Buffer[] = [];
        for (let i = 0; i < body.length; i += size) parts.push(body.subarray(i, i + size));
        const { manifest, rest } = await readManifest(Readable.from(parts));
        expect(manifest).to.deep.equal(m);
        const tail: Buffer[] = [];
        for await (const b of rest) tail.push(b);
        expect(Buffer.concat(tail).toString()).to.equal('TARDATA');
      }
    });

    const bad: [string, unknown][] = [
      ['a wrong format', { ...m, format: 99 }],
      ['an unsafe deleted path', { ...m, deleted: ['../../etc'] }],
      ['a negative entry count', { ...m, entries: -1 }],
      ['no snapshot', { ...m, snapshot: undefined }],
    ];
    for (const [label, value] of bad) {
      it(`refuses ${label}`, function () {
        expect(() => checkManifest(value)).to.throw().that.satisfies((e: unknown) => isFerryError(e, 'STREAM_CORRUPT'));
      });
    }

    it('refuses a body cut inside the manifest', async function () {
      try {
        await readManifest(Readable.from([encodeManifest(m).subarray(0, 10)]));
        expect.fail('read a cut manifest');
      } catch (err) {
        expect(isFerryError(err, 'STREAM_CORRUPT'), String(err)).to.equal(true);
      }
    });
  });

  describe('on disk', function () {
    let root: string;
    beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'ferry-unit-tree-'))));
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    it('walks a tree without following symlinks', async function () {
      mkdirSync(join(root, 'd/e'), { recursive: true });
      writeFileSync(join(root, 'd/e/f'), 'hello');
      symlinkSync('/', join(root, 'up'));
      const t = await walkTree(root);
      expect([...t.keys()].sort()).to.deep.equal(['.', 'd', 'd/e', 'd/e/f', 'up']);
      expect(t.get('d/e/f')).to.include({ type: 'file', size: 5n });
      expect(t.get('up')).to.include({ type: 'symlink', target: '/' });
    });

    it('compares file contents', async function () {
      writeFileSync(join(root, 'a'), 'same bytes');
      writeFileSync(join(root, 'b'), 'same bytes');
      writeFileSync(join(root, 'c'), 'diff bytes');
      writeFileSync(join(root, 'd'), 'same bytes!');
      expect(await sameContent(join(root, 'a'), join(root, 'b'), 4)).to.equal(true);
      expect(await sameContent(join(root, 'a'), join(root, 'c'), 4)).to.equal(false);
      expect(await sameContent(join(root, 'a'), join(root, 'd'), 4)).to.equal(false);
    });
  });
});
