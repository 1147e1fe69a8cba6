import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CloneCapable, MovableBackend } from '../../src/agent/backends/backend';
import { Mover } from '../../src/agent/mover';
import { SourceTransferHandler } from '../../src/agent/transfer-handler';
import { LocalControl } from '../../src/control/control';
import { openDb, type Db } from '../../src/control/db';
import { silentLogger } from '../../src/log';
import { loadOrCreateKey } from '../../src/transfer/keys';
import { TransferServer } from '../../src/transfer/server';
import { moveFinalSnapshot } from '../../src/volume/snapshot-names';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { fixtures } from './pool-fixtures';

const log = silentLogger();

before(function () {
  requireRootAndTools('btrfs', 'mkfs.btrfs', 'mkfs.ext4', 'mkfs.xfs', 'losetup', 'fsfreeze');
});

/** One host: a real pool, its transfer service on loopback (the source side), a real Mover (the target side). */
interface Host {
  name: string;
  backend: MovableBackend & CloneCapable;
  server: TransferServer;
  mover: Mover;
  mnt: string;
}

for (const fx of fixtures) {
  describe(`a move keeps the snapshots it does not own: ${fx.label}`, function () {
    let dir: string;
    let db: Db;
    let control: LocalControl;
    const hosts: Host[] = [];

    before(async function () {
      const missing = fx.missing?.() ?? [];
      if (missing.length > 0) {
        console.log(`    SKIPPED move snapshots: ${fx.label}: this machine lacks ${missing.join(', ')}`);
        this.skip();
      }
      dir = makeTempDir(`move-snaps-${fx.label.replace(/\W+/g, '-')}`);
      db = openDb(':memory:');
      control = new LocalControl(db);
      const keys = new Map(['h1', 'h2'].map((n) => [n, loadOrCreateKey(join(dir, n, 'key', 'id_ed25519'))]));
      for (const name of ['h1', 'h2']) {
        const backend = await fx.make(join(dir, name, 'pool'));
        const key = keys.get(name)!;
        const other = name === 'h1' ? 'h2' : 'h1';
        const server = new TransferServer(
          key,
          async () => new Map([[other, keys.get(other)!.publicKey]]),
          new SourceTransferHandler(
            {
              node: name,
              backendOf: async () => backend,
              withVolumeLock: (_v, work) => work(),
              // Nothing mounts the volume in this test between the steps below.
              releaseForMove: async () => undefined,
              destroyCopy: async () => false,
            },
            control,
          ),
          log,
        );
        const port = await server.listen(0, '127.0.0.1');
        await control.registerNode({ name, address: `127.0.0.1:${port}`, transferKey: key.publicKey, bootId: 'boot' });
        const mover = new Mover(
          {
            node: name,
            backendOf: async () => backend,
            promote: (volume, snap) => backend.rollback(volume, snap, fx.spec),
            startContainers: async () => undefined,
          },
          control,
          key.privateKey,
          log,
        );
        const mnt = join(dir, name, 'mnt');
        mkdirSync(mnt, { recursive: true });
        hosts.push({ name, backend, server, mover, mnt });
      }
    });
    after(async function () {
      for (const h of hosts) await h.server.close();
      db?.close();
      fx.cleanup?.();
      if (dir) cleanupDir(dir);
    });

    /** Writes `file` into the volume on host `h` (mounted for the write only). */
    async function write(h: Host, file: string, text: string): Promise<void> {
      await h.backend.mount('db', h.mnt);
      try {
        writeFileSync(join(h.mnt, file), text);
      } finally {
        await h.backend.unmount('db', h.mnt);
      }
    }

    /** The files of the volume on host `h`, with their contents. */
    async function files(h: Host, name = 'db'): Promise<Record<string, string>> {
      await h.backend.mount(name, h.mnt, { readOnly: true });
      try {
        const out: Record<string, string> = {};
        for (const f of ['a', 'b', 'c', 'd']) if (existsSync(join(h.mnt, f))) out[f] = readFileSync(join(h.mnt, f), 'utf8');
        return out;
      } finally {
        await h.backend.unmount(name, h.mnt);
      }
    }

    it('keeps before-1 and before-2 on the source across a move and a move back, and the target’s own too', async function () {
      const [h1, h2] = hosts;
      await h1.backend.create('db', fx.spec);
      await write(h1, 'a', 'one');
      await h1.backend.snapshot('db', 'before-1');
      await write(h1, 'b', 'two');
      await h1.backend.snapshot('db', 'before-2');
      await write(h1, 'c', 'three');
      await control.reserveVolume({ name: 'db', backend: fx.kind, sizeBytes: fx.spec.sizeBytes, fs: fx.spec.fs, options: {}, primaryNode: 'h1' });
      await control.confirmVolume('db', 'h1');

      const there = await control.requestMove('db', 'h2');
      await h2.mover.ensure(there);
      expect((await control.getMove(there.id))!.state).to.equal('done');
      expect(await files(h2)).to.deep.equal({ a: 'one', b: 'two', c: 'three' });
      expect(await h2.backend.listSnapshots('db')).to.deep.equal([moveFinalSnapshot(there.id)]);
      expect(await h1.backend.listSnapshots('db')).to.deep.equal(['before-1', 'before-2', moveFinalSnapshot(there.id)]);

      await write(h2, 'd', 'four');
      await h2.backend.snapshot('db', 'mine');
      const back = await control.requestMove('db', 'h1');
      await h1.mover.ensure(back);
      expect((await control.getMove(back.id))!.state).to.equal('done');
      expect((await control.getVolume('db'))!.primaryNode).to.equal('h1');
      expect(await files(h1)).to.deep.equal({ a: 'one', b: 'two', c: 'three', d: 'four' });
      expect(await h1.backend.listSnapshots('db')).to.deep.equal(['before-1', 'before-2', moveFinalSnapshot(back.id)]);
      expect(await h2.backend.listSnapshots('db')).to.deep.equal(['mine', moveFinalSnapshot(back.id)]);

      // The user's snapshots are whole, not just names: each still holds what it held when taken.
      await h1.backend.clone('db', 'before-1', 'check1', fx.spec);
      await h1.backend.clone('db', 'before-2', 'check2', fx.spec);
      expect(await files(h1, 'check1')).to.deep.equal({ a: 'one' });
      expect(await files(h1, 'check2')).to.deep.equal({ a: 'one', b: 'two' });
    });
  });
}
