import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, openSync, closeSync, writeSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bank } from '../../src/bank/bank';
import { cutAll } from '../../src/bank/gear-chunker';
import { openStore } from '../../src/bank/open-store';
import { SEAL_OVERHEAD } from '../../src/bank/seal';
import { apiCall, apiStream } from '../../src/cli/client';
import { isFerryError } from '../../src/errors';
import { LocalControl } from '../../src/control/control';
import type { Ferry } from '../../src/serve';
import type { BankRecord, ListedCheckpoint, VolumeView } from '../../src/wire/records';
import { startTestFerry, testConfig } from '../support/ferry';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { destroyPools, testPoolName, zfsMissing } from '../support/zfs';
import { treeDigest, writeSampleTree } from '../support/tree';
import { describeTree, expectSameTree, writeRichTree, xattrDump, type MetaEntry } from '../support/tree-meta';

const MiB = 1024 * 1024;

/** The FerryError code a call fails with (the test fails when it succeeds). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isFerryError(err)) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/*
 * bank-ops (issue 8) through the local API of a real ferry serve (in process): banks added with their
 * key checked, backups of btrfs and directory volumes to a file:// bank, restores into other
 * backends with the same bytes, an incremental after a small change, one path out, refusals.
 */
describe('local API: banks and backups (file:// bank, real backends)', function () {
  let dir: string;
  let ferry: Ferry;
  let api: string;
  let bankDir: string;
  let keyFile: string;
  const call = <T>(method: string, path: string, body?: unknown): Promise<T> => apiCall<T>(api, method, path, body);
  /** Long calls stream their progress (a plain call's socket is dropped after 5 s of silence). */
  const long = <T>(method: string, path: string, body?: unknown): Promise<T> => apiStream<T>(api, method, path, body ?? {}, () => undefined);
  const addBank = (name: string, key: Buffer, o: Record<string, unknown> = {}) =>
    call<{ bank: BankRecord }>('POST', '/v1/banks', { name, url: `file://${bankDir}`, key: key.toString('base64'), ...o });
  /** Writes into a volume through a Mount, as a container would, and releases it. */
  const write = async (volume: string, fn: (root: string) => void): Promise<void> => {
    const mp = await ferry.agent.mounts.mount(volume, `w-${volume}`);
    try {
      fn(mp);
    } finally {
      await ferry.agent.mounts.unmount(volume, `w-${volume}`);
    }
  };
  const digestOf = async (volume: string): Promise<Map<string, string>> => {
    let d = new Map<string, string>();
    await write(volume, (root) => (d = treeDigest(root)));
    return d;
  };

  /** A zfs pool for the round trip where zfs answers here (zfs-fuse); none elsewhere. */
  let zfsPool: string | undefined;
  let zfsLacks: string[] = [];

  before(async function () {
    requireRootAndTools('btrfs', 'mkfs.xfs', 'getfattr');
    dir = makeTempDir('bank-api');
    zfsLacks = zfsMissing();
    if (zfsLacks.length === 0) zfsPool = testPoolName();
    ferry = await startTestFerry(testConfig(dir, zfsPool ? { zfs: { poolName: zfsPool, poolSize: '1G' } } : {}));
    api = join(dir, 'api.sock');
    bankDir = join(dir, 'bank');
    mkdirSync(bankDir);
    keyFile = join(dir, 'bank.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  });
  after(async function () {
    await ferry?.stop();
    // Before the dir goes: the pool's file is in it.
    if (zfsPool) destroyPools([zfsPool]);
    if (dir) cleanupDir(dir);
  });

  it('adds a bank (initialised), refuses a wrong key and a short one, and never answers a secret', async function () {
    const key = readFileSync(keyFile);
    const { bank } = await addBank('main', key);
    expect(bank).to.include({ name: 'main', url: `file://${bankDir}`, readOnly: false });
    expect(existsSync(join(bankDir, 'config'))).to.equal(true);
    expect(await codeOf(addBank('other', randomBytes(32)))).to.equal('BANK_KEY_WRONG');
    expect(await codeOf(addBank('short', randomBytes(16)))).to.equal('INVALID_REQUEST');
    expect(await codeOf(addBank('main', key))).to.equal('BANK_EXISTS');
    expect(await codeOf(addBank('again', key, { create: true }))).to.equal('BANK_EXISTS');
    const { banks } = await call<{ banks: BankRecord[] }>('GET', '/v1/banks');
    expect(banks.map((b) => b.name)).to.deep.equal(['main']);
    const everything = JSON.stringify([banks, await call('GET', '/v1/banks/main'), await ferry.agent.status.report()]);
    expect(everything).not.to.include(key.toString('base64'));
    // The read-only twin of the same bank: another cluster's view.
    expect((await addBank('mirror', key, { readOnly: true })).bank).to.include({ readOnly: true, bankId: bank.bankId });
  });

  it('backs up a btrfs volume, restores it as loop xfs and as directory with the same bytes; --path --into', async function () {
    await call('POST', '/v1/volumes', { name: 'src', options: { backend: 'btrfs' } });
    await write('src', (root) => writeSampleTree(root, 30, 3 * MiB));
    const before = await digestOf('src');
    const progress: unknown[] = [];
    const r = await apiStream<{ checkpoint: ListedCheckpoint }>(api, 'POST', '/v1/volumes/src/backups', { bank: 'main' }, (p) => progress.push(p));
    expect(r.checkpoint).to.include({ volume: 'src', backend: 'btrfs', origin: 'manual' });
    expect(r.checkpoint.addedBytes).to.be.greaterThan(3 * MiB);
    expect(progress.length).to.be.greaterThan(0);
    const { checkpoints } = await call<{ checkpoints: ListedCheckpoint[] }>('GET', '/v1/backups?bank=main&volume=src');
    expect(checkpoints.map((c) => c.id)).to.deep.equal([r.checkpoint.id]);
    // Nothing of the backup is left on the host: no snapshot, no scratch, no work record.
    expect((await ferry.agent.snapshots.withSizes('src', [])).length).to.equal(0);
    expect(readdirSync(join(dir, 'data', 'bank-work'))).to.deep.equal([]);

    const restored = await long<{ volume: VolumeView }>('POST', `/v1/banks/main/volumes/src/checkpoints/latest/restore`, { as: 'src-xfs', backend: 'loop', size: '320M', fs: 'xfs' });
    expect(restored.volume).to.include({ backend: 'loop', fs: 'xfs' });
    expect(restored.volume.options.restoring).to.equal(undefined);
    expect(await digestOf('src-xfs')).to.deep.equal(before);
    const asDir = await long<{ volume: VolumeView }>('POST', `/v1/banks/mirror/volumes/src/checkpoints/${r.checkpoint.id}/restore`, { as: 'src-dir', backend: 'directory' });
    expect(asDir.volume.backend).to.equal('directory');
    expect(await digestOf('src-dir')).to.deep.equal(before);

    const into = join(dir, 'extract');
    const out = await long<{ files: number }>('POST', '/v1/banks/main/volumes/src/checkpoints/latest/extract', { path: 'a/b', into });
    expect(out.files).to.be.greaterThan(0);
    const extracted = treeDigest(join(into, 'a', 'b'));
    expect(extracted.get('c/big.bin')).to.equal(before.get('a/b/c/big.bin'));
  });

  it('a second backup after a small change adds about that much (directory: every file read, only new chunks uploaded)', async function () {
    await call('POST', '/v1/volumes', { name: 'inc', options: { backend: 'directory' } });
    // 48 files of 1 MiB: the chunker cuts one stream of them (the files in name order).
    const names = Array.from({ length: 48 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    const files = names.map(() => randomBytes(MiB));
    await write('inc', (root) => names.forEach((n, i) => writeFileSync(join(root, n), files[i])));
    const first = (await long<{ checkpoint: ListedCheckpoint }>('POST', '/v1/volumes/inc/backups', { bank: 'main' })).checkpoint;
    // 1% of the data: 0.48 MiB rewritten in the middle of one file.
    const before = Buffer.concat(files);
    const edit = randomBytes(Math.round(0.48 * MiB));
    edit.copy(files[20], 300 * 1024);
    await write('inc', (root) => {
      const fd = openSync(join(root, 'f20'), 'r+');
      writeSync(fd, edit, 0, edit.length, 300 * 1024);
      closeSync(fd);
    });
    const second = (await long<{ checkpoint: ListedCheckpoint }>('POST', '/v1/volumes/inc/backups', { bank: 'main' })).checkpoint;
    expect(second.parent).to.equal(first.id);
    expect(second.dataBytes).to.equal(first.dataBytes);
    // Exactly the chunks the bank's own chunker makes anew from the changed stream are uploaded
    // (each random chunk sealed raw: 30 bytes more), plus the tree's chunks. How many bytes that is
    // depends on the bank's random gear key: around the change's 0.48 MiB a median of about 2 MiB,
    // rarely up to 13 MiB (800 simulated keys), so no fixed share can bound it every time.
    const bank = await Bank.open(openStore({ url: `file://${bankDir}` }), readFileSync(keyFile));
    let fresh: Buffer[];
    try {
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      const old = new Set(cutAll(bank.cutter(), before).map(sha));
      fresh = cutAll(bank.cutter(), Buffer.concat(files)).filter((c) => !old.has(sha(c)));
    } finally {
      await bank.close();
    }
    const expected = fresh.reduce((n, c) => n + c.length + SEAL_OVERHEAD, 0);
    const said = `first added ${first.addedBytes}, second ${second.addedBytes}; new data chunks ${fresh.length}, ${expected} bytes sealed`;
    expect(fresh.length, said).to.be.at.least(1);
    expect(second.addedBytes, said).to.be.within(expected, expected + 64 * 1024);
    // Far below a full copy, whatever the key.
    expect(second.addedBytes, said).to.be.lessThan(first.addedBytes * 0.4);
  });

  it('refuses: a backup to a read-only bank, an unknown bank, a restore over an existing volume; Mount of a volume still being restored', async function () {
    expect(await codeOf(call('POST', '/v1/volumes/src/backups', { bank: 'mirror' }))).to.equal('BANK_READ_ONLY');
    expect(await codeOf(call('DELETE', '/v1/banks/mirror/volumes/src/checkpoints/latest'))).to.equal('BANK_READ_ONLY');
    expect(await codeOf(call('POST', '/v1/volumes/src/backups', { bank: 'nope' }))).to.equal('BANK_NOT_FOUND');
    // A volume whose primary is another host: refused, naming it (recorded as control would for host h2).
    const control = new LocalControl(ferry.db!);
    await control.reserveVolume({ name: 'far', backend: 'directory', options: {}, primaryNode: 'h2' });
    await control.confirmVolume('far', 'h2');
    const far = await call('POST', '/v1/volumes/far/backups', { bank: 'main' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(far && isFerryError(far, 'NOT_PRIMARY') && far.message).to.match(/lives on h2, not h1: run the backup on h2/);
    expect(await codeOf(call('POST', '/v1/banks/main/volumes/src/checkpoints/latest/restore', { as: 'src-dir' }))).to.equal('VOLUME_EXISTS');
    expect(await codeOf(call('POST', '/v1/banks/main/volumes/nothing/checkpoints/latest/restore', { as: 'x1' }))).to.equal('CHECKPOINT_NOT_FOUND');
    // A restore cut off before it cleared its mark: Mount says what to do.
    await call('POST', '/v1/volumes', { name: 'half', options: { backend: 'directory', restoring: 'main/20261202T101500Z-1a2b3c4d' } });
    const err = await ferry.agent.mounts.mount('half', 'c1').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/being restored from main\/20261202T101500Z-1a2b3c4d/);
  });

  it('every backend here round trips a tree with every kind of entry (owners, modes, xattrs, ACLs, sparse, hard and symbolic links)', async function () {
    // A bank of its own, so the other tests' counts stay theirs.
    const everyDir = join(dir, 'bank-every');
    mkdirSync(everyDir);
    await call('POST', '/v1/banks', { name: 'every', url: `file://${everyDir}`, key: readFileSync(keyFile).toString('base64') });
    const kinds: Array<{ tag: string; options: Record<string, string> }> = [
      { tag: 'btrfs', options: { backend: 'btrfs' } },
      { tag: 'ext4', options: { backend: 'loop', fs: 'ext4', size: '128M' } },
      { tag: 'xfs', options: { backend: 'loop', fs: 'xfs', size: '320M' } },
      { tag: 'directory', options: { backend: 'directory' } },
      ...(zfsPool ? [{ tag: 'zfs', options: { backend: 'zfs', size: '128M' } }] : []),
    ];
    if (!zfsPool) console.log(`      (zfs not round-tripped: this machine lacks ${zfsLacks.join(', ')})`);
    const added: number[] = [];
    for (const { tag, options } of kinds) {
      await call('POST', '/v1/volumes', { name: `rt-${tag}`, options });
      let socket = '';
      let xattrs = true;
      await write(`rt-${tag}`, (root) => {
        // zfs-fuse keeps no xattrs or ACLs (setfattr: Operation not supported): its tree has none.
        xattrs = spawnSync('setfattr', ['-n', 'user.probe', '-v', '1', root]).status === 0;
        if (!xattrs) console.log(`      (${tag} here keeps no xattrs: its tree has none)`);
        else spawnSync('setfattr', ['-x', 'user.probe', root]);
        ({ socket } = writeRichTree(root, { smallFiles: 40, bigBytes: 5 * MiB, xattrs }));
      });
      let before = new Map<string, MetaEntry>();
      let xBefore: string[] = [];
      await write(`rt-${tag}`, (root) => {
        before = describeTree(root);
        xBefore = xattrs ? xattrDump(root) : [];
      });
      const cp = (await long<{ checkpoint: ListedCheckpoint }>('POST', `/v1/volumes/rt-${tag}/backups`, { bank: 'every' })).checkpoint;
      added.push(cp.addedBytes);
      await long('POST', `/v1/banks/every/volumes/rt-${tag}/checkpoints/${cp.id}/restore`, { as: `rt-${tag}-back` });
      await write(`rt-${tag}-back`, (root) => {
        const after = describeTree(root);
        // The directory backend stamps a snapshot by its root's mtime (and a clone's root gets the
        // time it was made), so a directory volume's own root keeps no mtime of its own.
        if (tag === 'directory') before.set('', { ...before.get('')!, mtimeNs: after.get('')!.mtimeNs });
        try {
          expectSameTree(before, after, [socket]);
        } catch (err) {
          throw new Error(`${tag}: ${(err as Error).message}`);
        }
        if (xattrs) expect(xattrDump(root), `${tag}: xattrs and ACLs`).to.deep.equal(xBefore);
        // Holes stay holes: the 16 MiB sparse file occupies what its data does, not 16 MiB.
        expect(describeTree(root).get('data/sparse.img')!.blocks * 512, `${tag}: sparse file's blocks`).to.be.lessThan(MiB);
      });
    }
    expect(added.every((n) => n > 5 * MiB), `added per volume: ${added.join(', ')}`).to.equal(true);
  });

  it('a restore into a volume that keeps no xattrs (zfs-fuse) of a checkpoint that has some fails, saying so, and leaves no volume', async function () {
    if (!zfsPool) this.skip();
    const { checkpoints } = await call<{ checkpoints: ListedCheckpoint[] }>('GET', '/v1/backups?bank=every&volume=rt-btrfs');
    expect(checkpoints, 'the round trip above backed up rt-btrfs, xattrs and all').to.have.length(1);
    const err = await long('POST', '/v1/banks/every/volumes/rt-btrfs/checkpoints/latest/restore', { as: 'rt-noxattr', backend: 'zfs', size: '128M' }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/setfattr.*Operation not supported/s);
    expect(await call<{ volumes: VolumeView[] }>('GET', '/v1/volumes').then((r) => r.volumes.map((v) => v.name))).to.not.include('rt-noxattr');
  });

  it('two volumes holding the same files: the second backup adds almost nothing', async function () {
    const files = Array.from({ length: 24 }, (_, i) => ({ name: `f${i}`, data: randomBytes(MiB / 2 + i * 1000) }));
    for (const name of ['twin-a', 'twin-b']) {
      await call('POST', '/v1/volumes', { name, options: { backend: name === 'twin-a' ? 'btrfs' : 'directory' } });
      await write(name, (root) => {
        mkdirSync(join(root, 'same'));
        for (const f of files) writeFileSync(join(root, 'same', f.name), f.data);
      });
    }
    const a = (await long<{ checkpoint: ListedCheckpoint }>('POST', '/v1/volumes/twin-a/backups', { bank: 'every' })).checkpoint;
    const b = (await long<{ checkpoint: ListedCheckpoint }>('POST', '/v1/volumes/twin-b/backups', { bank: 'every' })).checkpoint;
    expect(a.dataBytes).to.equal(b.dataBytes);
    expect(a.addedBytes).to.be.greaterThan(10 * MiB);
    // Only the second volume's tree (its manifest's chunks) is new: under 2% of the data.
    expect(b.addedBytes, `a added ${a.addedBytes}, b added ${b.addedBytes}`).to.be.lessThan(a.dataBytes * 0.02);
  });

  it('removes a checkpoint; forgets a bank, its data staying; events name what happened', async function () {
    const { checkpoints } = await call<{ checkpoints: ListedCheckpoint[] }>('GET', '/v1/backups?bank=main&volume=inc');
    expect(checkpoints).to.have.length(2);
    await call('DELETE', `/v1/banks/main/volumes/inc/checkpoints/${checkpoints[0].id}`);
    expect((await call<{ checkpoints: ListedCheckpoint[] }>('GET', '/v1/backups?bank=main&volume=inc')).checkpoints.map((c) => c.id)).to.deep.equal([checkpoints[1].id]);
    // gc: the removed checkpoint's own chunks go, or stay in a pack under 10% unused (packs are
    // rewritten from 10%); every checkpoint left still checks out, all data read.
    const gc = await long<{ removed: number; kept: number; unusedKept: number }>('POST', '/v1/banks/main/gc');
    expect(gc.removed + gc.unusedKept).to.be.greaterThan(0);
    expect(await codeOf(long('POST', '/v1/banks/mirror/gc'))).to.equal('BANK_READ_ONLY');
    const clean = await long<{ checkpoints: number; read: number; problems: unknown[] }>('POST', '/v1/banks/mirror/check', { readDataPercent: 100 });
    expect(clean.problems).to.deep.equal([]);
    expect(clean.checkpoints).to.equal(2);
    expect(clean.read).to.be.greaterThan(0);
    // A pack lost from the bank (after gc each holds a chunk some checkpoint uses): check names its
    // chunks and the checkpoints they break.
    const packDir = join(bankDir, 'packs');
    // gc leaves a removed pack's directory behind, maybe empty: the first that holds one.
    const sub = readdirSync(packDir).find((d) => readdirSync(join(packDir, d)).length > 0)!;
    const lost = readdirSync(join(packDir, sub))[0];
    rmSync(join(packDir, sub, lost));
    const broken = await long<{ problems: Array<{ chunk: string; problem: string; checkpoints: string[] }> }>('POST', '/v1/banks/main/check');
    expect(broken.problems).to.have.length.greaterThan(0);
    for (const p of broken.problems) {
      expect(p.chunk).to.match(/^[0-9a-f]{64}$/);
      expect(p.problem).to.equal('missing');
      expect(p.checkpoints.length).to.be.greaterThan(0);
    }
    await call('DELETE', '/v1/banks/mirror');
    expect((await call<{ banks: BankRecord[] }>('GET', '/v1/banks')).banks.map((b) => b.name)).to.not.include('mirror');
    expect(existsSync(join(bankDir, 'config'))).to.equal(true);
    const kinds = (await ferry.agent.volumes.inspect('inc').then(() => call<{ events: { kind: string }[] }>('GET', '/v1/volumes/inc'))).events.map((e) => e.kind);
    expect(kinds).to.include.members(['backup-created', 'backup-removed']);
    const all = (await new LocalControl(ferry.db!).recentEvents(200)).map((e) => e.kind);
    expect(all).to.include.members(['bank-added', 'bank-removed', 'bank-gc', 'bank-check', 'restore-done', 'backup-failed']);
  });
});
