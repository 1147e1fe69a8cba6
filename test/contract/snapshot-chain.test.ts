import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasSnapshotSizes, type CloneCapable, type MovableBackend } from '../../src/agent/backends/backend';
import { BackendSlots } from '../../src/agent/backend-slots';
import { cloneDataset } from '../../src/agent/clone-dataset';
import { KeyedLock } from '../../src/agent/keyed-lock';
import { Mover, type SourceConnector } from '../../src/agent/mover';
import { Replicator } from '../../src/agent/replicator';
import { sendChain } from '../../src/agent/snapshot-chain';
import { Snapshots } from '../../src/agent/snapshots';
import { SourceTransferHandler } from '../../src/agent/transfer-handler';
import { LocalControl } from '../../src/control/control';
import { openDb, type Db } from '../../src/control/db';
import { silentLogger } from '../../src/log';
import { TransferClient } from '../../src/transfer/client';
import { loadOrCreateKey } from '../../src/transfer/keys';
import { TransferServer } from '../../src/transfer/server';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { waitFor } from '../support/docker';
import { fixtures } from './pool-fixtures';

const log = silentLogger();

/*
 * snap (issue 7 item 1), on every backend with snapshots and streams: a user's snapshots, rollback
 * to each (newer ones stay), clones from them, and the snapshot chain (snapshot-chain.ts): a move
 * carries the volume's snapshots to the target as increments, the registry records both hosts, a move
 * back carries only what the other host lacks, and replication's call of the same function.
 */

before(function () {
  requireRootAndTools('btrfs', 'mkfs.btrfs', 'mkfs.ext4', 'mkfs.xfs', 'losetup', 'fsfreeze');
});

interface Host {
  name: string;
  backend: MovableBackend & CloneCapable;
  snapshots: Snapshots;
  server: TransferServer;
  mover: Mover;
  /** A Replicator of this host that reaches its peers through `connect`. */
  replicator(connect: SourceConnector): Replicator;
  key: { privateKey: string; publicKey: string };
  mnt: string;
}

for (const fx of fixtures) {
  describe(`user snapshots and the snapshot chain: ${fx.label}`, function () {
    let dir: string;
    let db: Db;
    let control: LocalControl;
    const hosts: Host[] = [];

    before(async function () {
      const missing = fx.missing?.() ?? [];
      if (missing.length > 0) {
        console.log(`    SKIPPED snapshot chain: ${fx.label}: this machine lacks ${missing.join(', ')}`);
        this.skip();
      }
      dir = makeTempDir(`snap-chain-${fx.label.replace(/\W+/g, '-')}`);
      db = openDb(':memory:');
      control = new LocalControl(db);
      const keys = new Map(['h1', 'h2'].map((n) => [n, loadOrCreateKey(join(dir, n, 'key', 'id_ed25519'))]));
      for (const name of ['h1', 'h2']) {
        const backend = await fx.make(join(dir, name, 'pool'));
        const key = keys.get(name)!;
        const other = name === 'h1' ? 'h2' : 'h1';
        const lock = new KeyedLock();
        const slots = new BackendSlots(name, control);
        slots.set(fx.kind, { backend });
        const snapshots = new Snapshots(name, control, slots, lock, log);
        const server = new TransferServer(
          key,
          async () => new Map([[other, keys.get(other)!.publicKey]]),
          new SourceTransferHandler(
            { node: name, backendOf: async () => backend, withVolumeLock: (v, work) => lock.run(v, work), releaseForMove: async () => undefined, destroyCopy: async () => false },
            control,
            snapshots,
          ),
          log,
        );
        const port = await server.listen(0, '127.0.0.1');
        await control.registerNode({ name, address: `127.0.0.1:${port}`, transferKey: key.publicKey, bootId: 'boot' });
        // As cluster.ts wires them: the move's pre-copy and replication rounds share one lock per volume.
        const incoming = new KeyedLock();
        const mover = new Mover(
          { node: name, backendOf: async () => backend, promote: (volume, snap) => backend.rollback(volume, snap, fx.spec), startContainers: async () => undefined },
          control,
          key.privateKey,
          log,
          undefined,
          undefined,
          undefined,
          incoming,
        );
        const replicator = (connect: SourceConnector) => new Replicator({ node: name, backendOf: async () => backend }, control, snapshots, connect, log, undefined, undefined, incoming);
        const mnt = join(dir, name, 'mnt');
        mkdirSync(mnt, { recursive: true });
        hosts.push({ name, backend, snapshots, server, mover, replicator, key, mnt });
      }
    });
    after(async function () {
      for (const h of hosts) await h.server.close();
      db?.close();
      fx.cleanup?.();
      if (dir) cleanupDir(dir);
    });

    async function write(h: Host, file: string, text: string): Promise<void> {
      await h.backend.mount('db', h.mnt);
      try {
        writeFileSync(join(h.mnt, file), text);
      } finally {
        await h.backend.unmount('db', h.mnt);
      }
    }
    async function files(h: Host, name = 'db'): Promise<Record<string, string>> {
      await h.backend.mount(name, h.mnt, { readOnly: true });
      try {
        const out: Record<string, string> = {};
        for (const f of ['a', 'b', 'c', 'd', 'e']) if (existsSync(join(h.mnt, f))) out[f] = readFileSync(join(h.mnt, f), 'utf8');
        return out;
      } finally {
        await h.backend.unmount(name, h.mnt);
      }
    }
    const registry = async () => (await control.snapshotsOf('db')).map((s) => `${s.name}@${s.hosts.join('+')}`);

    it('takes user snapshots and rolls back to each, older and newer, keeping them all', async function () {
      const [h1] = hosts;
      await h1.backend.create('db', fx.spec);
      await control.reserveVolume({ name: 'db', backend: fx.kind, sizeBytes: fx.spec.sizeBytes, fs: fx.spec.fs, options: {}, primaryNode: 'h1' });
      await control.confirmVolume('db', 'h1');
      await write(h1, 'a', 'one');
      await h1.snapshots.take('db', { name: 's1', origin: 'manual' });
      await write(h1, 'b', 'two');
      await h1.snapshots.take('db', { name: 's2', origin: 'manual' });
      await write(h1, 'c', 'three');
      await h1.snapshots.take('db', { name: 's3', origin: 'manual' });
      await write(h1, 'd', 'four');
      await h1.snapshots.rollback('db', 's1');
      expect(await files(h1)).to.deep.equal({ a: 'one' });
      await h1.snapshots.rollback('db', 's3');
      expect(await files(h1)).to.deep.equal({ a: 'one', b: 'two', c: 'three' });
      expect(await h1.backend.listSnapshots('db')).to.deep.equal(['s1', 's2', 's3']);
      expect(await registry()).to.deep.equal(['s1@h1', 's2@h1', 's3@h1']);
    });

    it('tells a snapshot\'s own size where the backend can (btrfs, zfs), else none', async function () {
      const [h1] = hosts;
      await write(h1, 'big', 'x'.repeat(3 * 2 ** 20));
      await h1.snapshots.take('db', { name: 'sized', origin: 'manual' });
      await h1.backend.mount('db', h1.mnt);
      rmSync(join(h1.mnt, 'big'));
      await h1.backend.unmount('db', h1.mnt);
      const size = async () => (await h1.snapshots.withSizes('db', await control.snapshotsOf('db'))).find((s) => s.name === 'sized')!.sizeBytes;
      if (!hasSnapshotSizes(h1.backend)) {
        expect(await size()).to.equal(null);
      } else {
        // The file now lives only in the snapshot: its own bytes, once the pool has committed.
        await waitFor('the snapshot to hold the 3 MiB file alone', async () => {
          spawnSync('sync');
          return ((await size()) ?? 0) >= 3 * 2 ** 20;
        }, 30_000, 500);
      }
      await h1.snapshots.remove('db', 'sized');
      expect(await registry()).to.deep.equal(['s1@h1', 's2@h1', 's3@h1']);
    });

    it('clones a new volume from a snapshot, independent of its source', async function () {
      const [h1] = hosts;
      await cloneDataset(h1.backend, { volume: 'db', snapshot: 's2' }, 'fromsnap', fx.spec);
      expect(await files(h1, 'fromsnap')).to.deep.equal({ a: 'one', b: 'two' });
      await h1.backend.destroy('fromsnap');
      expect(await files(h1)).to.deep.equal({ a: 'one', b: 'two', c: 'three' });
    });

    it('a move carries every snapshot as increments; each rolls back on the target; the registry shows both hosts', async function () {
      const [h1, h2] = hosts;
      await write(h1, 'd', 'four');
      const m = await control.requestMove('db', 'h2');
      await h2.mover.ensure(m);
      expect((await control.getMove(m.id))!.state).to.equal('done');
      expect(await files(h2)).to.deep.equal({ a: 'one', b: 'two', c: 'three', d: 'four' });
      expect(await registry()).to.deep.equal(['s1@h1+h2', 's2@h1+h2', 's3@h1+h2']);
      expect((await h2.backend.listSnapshots('db')).filter((s) => !s.startsWith('_'))).to.deep.equal(['s1', 's2', 's3']);
      await h2.snapshots.rollback('db', 's2');
      expect(await files(h2)).to.deep.equal({ a: 'one', b: 'two' });
      await h2.snapshots.rollback('db', 's1');
      expect(await files(h2)).to.deep.equal({ a: 'one' });
      await h2.snapshots.rollback('db', 's3');
      expect(await files(h2)).to.deep.equal({ a: 'one', b: 'two', c: 'three' });
    });

    it('a move back carries only what the other host lacks; replication runs the same chain', async function () {
      const [h1, h2] = hosts;
      await write(h2, 'e', 'five');
      await h2.snapshots.take('db', { name: 's4', origin: 'manual' });
      const back = await control.requestMove('db', 'h1');
      await h1.mover.ensure(back);
      expect((await control.getMove(back.id))!.state).to.equal('done');
      expect(await registry()).to.deep.equal(['s1@h1+h2', 's2@h1+h2', 's3@h1+h2', 's4@h1+h2']);
      await h1.snapshots.rollback('db', 's4');
      expect(await files(h1)).to.deep.equal({ a: 'one', b: 'two', c: 'three', e: 'five' });

      // Replication's use: a fresh snapshot on the primary (h1), pulled by the standby (h2).
      await write(h1, 'a', 'six');
      const rep = await h1.snapshots.take('db', { origin: 'replication', name: '_replication.h2.1' });
      const client = await TransferClient.connect({ name: 'h1', address: (await control.listNodes()).find((n) => n.name === 'h1')!.address!, hostKey: h1.key.publicKey }, h2.key.privateKey);
      try {
        const r = await sendChain({ volume: 'db', from: 'h1', to: 'h2', source: client, backend: h2.backend, control, log });
        expect(r.sent).to.deep.equal([rep.name]);
        expect(r.base).to.equal(rep.name);
        expect(r.bytes).to.be.above(0);
        const again = await sendChain({ volume: 'db', from: 'h1', to: 'h2', source: client, backend: h2.backend, control, log });
        expect(again.sent, 'nothing left to carry').to.deep.equal([]);
      } finally {
        client.close();
      }
      expect((await control.snapshotsOf('db')).find((s) => s.name === rep.name)).to.include({ origin: 'replication' }).and.have.property('hosts').that.deep.equals(['h1', 'h2']);
      await h2.backend.clone('db', rep.name, 'standbycheck', fx.spec);
      expect(await files(h2, 'standbycheck')).to.deep.equal({ a: 'six', b: 'two', c: 'three', e: 'five' });
    });

    it('a move to a standby waits for the replication round under way, and neither receives a snapshot twice', async function () {
      const [h1, h2] = hosts;
      await write(h1, 'b', 'seven');
      // The round's stream from the primary is held until `open`: the primary has taken (and recorded)
      // its snapshot, and the standby has not received it yet, when the move begins.
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const replicator = h2.replicator(async (peer) => {
        const c = await TransferClient.connect(peer, h2.key.privateKey);
        return {
          ask: (req) => c.ask(req),
          close: () => c.close(),
          request: (req) => {
            const stream = c.request(req);
            if (req.op !== 'send') return stream;
            const held = new PassThrough();
            stream.on('error', (err) => held.destroy(err));
            void gate.then(() => stream.pipe(held));
            return held;
          },
        };
      });
      const v = (await control.getVolume('db'))!;
      const duty = { volume: 'db', backend: fx.kind, sizeBytes: v.sizeBytes, fs: v.fs, primary: 'h1', generation: v.generation, rpoSeconds: 10, bandwidthBytes: null, oldestBase: null };
      const round = replicator.round(duty);
      const fresh = async () => (await control.snapshotsOf('db')).find((s) => /^_replication\.\d{8}T\d{6}Z$/.test(s.name));
      await waitFor('the primary to take the round\'s snapshot', async () => (await fresh()) !== undefined, 30_000, 50);
      const taken = (await fresh())!.name;
      const m = await control.requestMove('db', 'h2');
      const moved = h2.mover.ensure(m);
      // Long enough for a move that did not wait to list the standby's snapshots and ask for this one.
      await new Promise((r) => setTimeout(r, 1000));
      open();
      const [r] = await Promise.all([round, moved]);
      await replicator.stop();
      expect(r, 'the round that was under way ran to its end').to.include({ snapshot: taken });
      expect((await control.getMove(m.id))!.state).to.equal('done');
      expect((await control.snapshotsOf('db')).find((s) => s.name === taken)!.hosts).to.deep.equal(['h1', 'h2']);
      expect(await files(h2)).to.deep.equal({ a: 'six', b: 'seven', c: 'three', e: 'five' });
    });
  });
}
