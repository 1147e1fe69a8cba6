import { expect } from 'chai';
import { newCheckpointId, isCheckpointId } from '../../src/bank/checkpoint-id';
import { decodeManifest, decodeTree, encodeManifest, encodeTree, treeBlocks, treeDataChunks, type Manifest } from '../../src/bank/manifest';
import type { TreeEntry } from '../../src/bank/types';
import { isFerryError } from '../../src/errors';

const ID = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);

const SAMPLE_TREE: TreeEntry[] = [
  { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: '1700000000123456789' },
  { path: 'a.txt', type: 'file', mode: 0o644, uid: 1000, gid: 1000, mtimeNs: '1700000000000000001', size: 10, extents: [{ id: ID, offset: 0, length: 10, at: 0 }], ino: 12, ctimeNs: '1700000000000000002', xattrs: { 'user.x': 'eQ==' } },
  { path: 'sparse', type: 'file', mode: 0o600, uid: 0, gid: 0, mtimeNs: '1', size: 1 << 30, extents: [{ id: ID2, offset: 5, length: 7, at: 1 << 29 }] },
  { path: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: '1', target: 'a.txt' },
  { path: 'hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1', target: 'a.txt' },
  { path: 'dev/null', type: 'chardev', mode: 0o666, uid: 0, gid: 0, mtimeNs: '1', rdev: 259 },
  { path: 'naïve\nname', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtimeNs: '1' },
];

describe('bank: manifest and tree encoding', () => {
  it('round-trips a tree of every kind of entry through NDJSON (a newline in a name included)', () => {
    expect(decodeTree(encodeTree(SAMPLE_TREE), 'c', 'mem://b')).to.deep.equal(SAMPLE_TREE);
    expect(treeDataChunks(SAMPLE_TREE)).to.deep.equal(new Set([ID, ID2]));
  });

  it('gives the tree in blocks of whole lines that join to the same bytes (the writer cuts them as they come)', () => {
    const whole = encodeTree(SAMPLE_TREE);
    for (const size of [1, 200, 400, whole.length, 10 * whole.length]) {
      const blocks = [...treeBlocks(SAMPLE_TREE, size)];
      expect(Buffer.concat(blocks).equals(whole), `blocks of ${size}`).to.equal(true);
      for (const b of blocks) expect(b.at(-1), 'a block ends at a line').to.equal(0x0a);
    }
    expect([...treeBlocks(SAMPLE_TREE, 1)]).to.have.length(SAMPLE_TREE.length);
    expect([...treeBlocks(SAMPLE_TREE)]).to.have.length(1);
    expect([...treeBlocks([])]).to.deep.equal([]);
  });

  it('round-trips a manifest; refuses one of another checkpoint, version or without tree chunks', () => {
    const id = newCheckpointId(new Date('2026-12-02T10:11:12.345Z'), '0a1b2c3d');
    expect(id).to.equal('20261202T101112Z-0a1b2c3d');
    expect(isCheckpointId(id)).to.equal(true);
    expect(isCheckpointId('../config')).to.equal(false);
    const m: Manifest = {
      version: 1,
      summary: { id, volume: 'db', time: '2026-12-02T10:11:12.345Z', host: 'h1', backend: 'btrfs', dataBytes: 10, files: 1, addedBytes: 99, origin: 'manual' },
      treeChunks: [ID, ID2],
    };
    expect(decodeManifest(encodeManifest(m), id, 'mem://b')).to.deep.equal(m);
    const bad: Array<[unknown, string]> = [
      [{ ...m, version: 2 }, id],
      [m, '20261202T101112Z-ffffffff'],
      [{ ...m, treeChunks: ['zz'] }, id],
      [{ version: 1 }, id],
    ];
    for (const [body, as] of bad) {
      try {
        decodeManifest(Buffer.from(JSON.stringify(body)), as, 'mem://b');
        expect.fail(`accepted ${JSON.stringify(body).slice(0, 60)}`);
      } catch (err) {
        expect(isFerryError(err, 'BANK_CORRUPT'), String(err)).to.equal(true);
      }
    }
  });
});
