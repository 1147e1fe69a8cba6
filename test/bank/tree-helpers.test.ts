import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataRuns, looksSparse, HOLE_BLOCK } from '../../src/bank/sparse';
import { formatSetfattrDump, getfattrArgv, onlyUnsupported, parseGetfattrDump, quoteName, unquoteName } from '../../src/bank/xattrs';
import { nsToSeconds, splitRdev, treePathSegments } from '../../src/bank/tree-restore';
import { unchanged } from '../../src/bank/tree-archive';
import type { TreeEntry } from '../../src/bank/types';

const fixture = (name: string): string => readFileSync(join(__dirname, '../../../test/fixtures/getfattr', name), 'utf8');

describe('bank tree helpers', () => {
  describe('dataRuns: 4 KiB-aligned zero blocks are holes', () => {
    const B = HOLE_BLOCK;
    const block = (fill: number): Buffer => Buffer.alloc(B, fill);
    const cases: Array<{ name: string; buf: Buffer; at: number; runs: Array<{ at: number; start: number; end: number }> }> = [
      { name: 'all data', buf: Buffer.concat([block(1), block(2)]), at: 0, runs: [{ at: 0, start: 0, end: 2 * B }] },
      { name: 'all zero', buf: Buffer.alloc(3 * B), at: 0, runs: [] },
      { name: 'data, hole, data at an offset', buf: Buffer.concat([block(1), block(0), block(3)]), at: 8 * B, runs: [{ at: 8 * B, start: 0, end: B }, { at: 10 * B, start: 2 * B, end: 3 * B }] },
      { name: 'a zero tail shorter than a block is a hole', buf: Buffer.concat([block(1), Buffer.alloc(100)]), at: 0, runs: [{ at: 0, start: 0, end: B }] },
      { name: 'a short data tail is data', buf: Buffer.concat([block(0), Buffer.from('x')]), at: 0, runs: [{ at: B, start: B, end: B + 1 }] },
      { name: 'one non-zero byte keeps its block', buf: (() => { const b = Buffer.alloc(2 * B); b[B + 17] = 1; return b; })(), at: 0, runs: [{ at: B, start: B, end: 2 * B }] },
    ];
    for (const c of cases) it(c.name, () => expect(dataRuns(c.buf, c.at)).to.deep.equal(c.runs));
    it('refuses an unaligned offset', () => expect(() => dataRuns(Buffer.alloc(1), 1)).to.throw(/multiple/));
    it('looksSparse compares allocated blocks with the size', () => {
      expect(looksSparse(1 << 20, 8)).to.equal(true);
      expect(looksSparse(4096, 8)).to.equal(false);
      expect(looksSparse(0, 0)).to.equal(false);
    });
  });

  describe('getfattr dumps', () => {
    it('runs one getfattr over the tree, not following symlinks, every namespace, base64', () => {
      expect(getfattrArgv('/v/')).to.deep.equal(['getfattr', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', '/v']);
    });
    it('parses real getfattr output: escapes, UTF-8, empty values, ACLs', () => {
      const m = parseGetfattrDump(fixture('mixed-tree.txt'), '/tmp/gfx');
      expect([...m.keys()].sort()).to.deep.equal(['a b', 'd', 'nl\nx', 'plain', 'é=ü\\q']);
      expect(m.get('a b')).to.deep.equal({ 'user.k': Buffer.from('hello').toString('base64') });
      expect(m.get('nl\nx')).to.deep.equal({ 'user.e': '' });
      expect(m.get('é=ü\\q')).to.deep.equal({ 'user.q': Buffer.from('1').toString('base64') });
      expect(Object.keys(m.get('plain')!).sort()).to.deep.equal(['system.posix_acl_access', 'user.z']);
      expect(Object.keys(m.get('d')!)).to.deep.equal(['system.posix_acl_default']);
    });
    it('the root itself is the empty path; a path outside the root is refused', () => {
      expect(parseGetfattrDump('# file: /r\nuser.a=0sYQ==\n\n', '/r').get('')).to.deep.equal({ 'user.a': 'YQ==' });
      expect(() => parseGetfattrDump('# file: /other\nuser.a=0sYQ==\n', '/r')).to.throw(/not under/);
    });
    it('names quote and unquote back, byte for byte', () => {
      for (const n of ['plain', 'a b', 'nl\nx', 'back\\slash', 'tab\there', 'é=ü', '日本語', 'del\x7f']) expect(unquoteName(quoteName(n))).to.equal(n);
      expect(quoteName('a\nb\\c')).to.equal('a\\012b\\134c');
    });
    const unsupported: Array<[string, string, boolean]> = [
      ['a filesystem without xattrs (zfs-fuse)', 'getfattr: /v/a: Operation not supported\ngetfattr: /v/b c: Operation not supported\n', true],
      ['nothing said', '', false],
      ['a file it may not read', 'getfattr: /v/a: Permission denied\n', false],
      ['one unsupported, one I/O error', 'getfattr: /v/a: Operation not supported\ngetfattr: /v/b: Input/output error\n', false],
    ];
    for (const [what, stderr, ok] of unsupported) {
      it(`an exit 1 of getfattr is no xattrs only when every complaint is "not supported": ${what}`, () => {
        expect(onlyUnsupported(stderr)).to.equal(ok);
      });
    }
    it('formats the dump setfattr --restore reads', () => {
      expect(formatSetfattrDump([{ abs: '/t/a\nb', xattrs: { 'user.k': 'aGk=', 'user.e': '' } }])).to.equal('# file: /t/a\\012b\nuser.k=0saGk=\nuser.e=0s\n\n');
    });
  });

  describe('restore paths', () => {
    const ok: Array<[string, string[]]> = [['', []], ['a', ['a']], ['a/b c/d', ['a', 'b c', 'd']], ['..a/b..', ['..a', 'b..']]];
    for (const [p, segs] of ok) it(`accepts ${JSON.stringify(p)}`, () => expect(treePathSegments(p)).to.deep.equal(segs));
    for (const p of ['..', 'a/../../etc', '/etc/passwd', 'a//b', 'a/./b', 'a/', 'a\0b']) {
      it(`refuses ${JSON.stringify(p)}`, () => expect(treePathSegments(p)).to.be.instanceOf(Error));
    }
  });

  it('splitRdev decodes Linux device numbers', () => {
    // makedev(1, 3) = /dev/null, makedev(8, 1), makedev(259, 65536): the high parts.
    expect(splitRdev(0x103)).to.deep.equal([1, 3]);
    expect(splitRdev(0x801)).to.deep.equal([8, 1]);
    expect(splitRdev(0x10010300)).to.deep.equal([259, 65536]);
  });

  it('nsToSeconds aims at the middle of the microsecond libuv keeps', () => {
    expect(nsToSeconds('1700000000000000000')).to.be.closeTo(1700000000.0000005, 1e-7);
    expect(nsToSeconds('1700000000123456789')).to.be.closeTo(1700000000.1234565, 1e-7);
    expect(nsToSeconds('-1500000000')).to.be.closeTo(-1.4999995, 1e-9);
    // Truncating the double to microseconds (as libuv does) gives back the microsecond, every time.
    for (const ns of ['1796206917607193062', '1796206917607999999', '1300000000987654321', '1']) {
      const t = nsToSeconds(ns);
      const micros = BigInt(Math.floor(t)) * 1_000_000n + BigInt(Math.floor((t - Math.floor(t)) * 1e6));
      expect(micros, ns).to.equal(BigInt(ns) / 1000n);
    }
  });

  describe('unchanged: reuse needs size, mtime, inode and ctime all equal', () => {
    const base: TreeEntry = { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '5', size: 10, ino: 7, ctimeNs: '6', extents: [] };
    const cases: Array<[string, Partial<TreeEntry> | undefined, boolean]> = [
      ['the same', {}, true],
      ['no parent entry', undefined, false],
      ['size differs', { size: 11 }, false],
      ['mtime differs', { mtimeNs: '4' }, false],
      ['inode differs', { ino: 8 }, false],
      ['ctime differs', { ctimeNs: '7' }, false],
      ['parent was a directory', { type: 'dir' }, false],
      ['parent kept no ctime', { ctimeNs: undefined }, false],
    ];
    for (const [name, change, want] of cases) {
      it(name, () => expect(unchanged(base, change === undefined ? undefined : { ...base, ...change })).to.equal(want));
    }
  });
});
