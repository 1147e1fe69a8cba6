import { expect } from 'chai';
import { PassThrough, type Readable } from 'node:stream';
import type { ContainerSpec, MoveRecord } from '../../src/wire/records';
import { Mover, type MoveSource, type TargetSide } from '../../src/agent/mover';
import { SourceTransferHandler, type SourceSide } from '../../src/agent/transfer-handler';
import { LocalControl } from '../../src/control/control';
import { openDb, type Db } from '../../src/control/db';
import type { ActiveMoveState } from '../../src/control/move-states';
import { isFerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import type { TransferRequest } from '../../src/transfer/protocol';
import { moveFinalSnapshot, moveOfSnapshot, moveRoundSnapshot } from '../../src/volume/snapshot-names';
import { MemoryBackend } from '../support/memory-backend';

const log = silentLogger();

/** One host: an in-memory pool, the source side (transfer handler) and the target side (mover). */
class Host {
  readonly backend = new MemoryBackend();
  readonly started: ContainerSpec[][] = [];
  /** How often a peer woke this host (asked it to heartbeat now). */
  woken = 0;
  readonly handler: SourceTransferHandler;
  readonly mover: Mover;

  constructor(
    readonly name: string,
    control: LocalControl,
    hosts: Map<string, Host>,
  ) {
    const source: SourceSide = {
      node: name,
      backendOf: async () => this.backend,
      withVolumeLock: (_v, work) => work(),
      releaseForMove: async () => undefined,
      destroyCopy: async () => false,
    };
    this.handler = new SourceTransferHandler(source, control, undefined, () => void this.woken++);
    const target: TargetSide = {
      node: name,
      backendOf: async () => this.backend,
      promote: (volume, snap) => this.backend.rollback(volume, snap, {}),
      startContainers: async (specs) => void this.started.push(specs),
    };
    // The seam: instead of ssh2 to the source's transfer service, its handler in this process.
    this.mover = new Mover(target, control, 'no key', log, { stepDelayMs: 0 }, async (peer) => askAs(hosts.get(peer.name)!, name));
  }
}

/** The source `src` as host `peer` reaches it: requests go through its real SourceTransferHandler. */
function askAs(src: Host, peer: string): MoveSource {
  const request = (req: TransferRequest): Readable => {
    const out = new PassThrough();
    src.handler.handle(req, peer).then(
      (r) => (r ? r.on('error', (e) => out.destroy(e)).pipe(out) : out.end()),
      (e: Error) => out.destroy(e),
    );
    return out;
  };
  return {
    request,
    async ask(req) {
      const parts: Buffer[] = [];
      for await (const c of request(req)) parts.push(c as Buffer);
      return Buffer.concat(parts).toString('utf8');
    },
    close() {},
  };
}

describe('Mover (in-memory control and backends)', function () {
  let db: Db;
  let control: LocalControl;
  let h1: Host;
  let h2: Host;

  beforeEach(async function () {
    db = openDb(':memory:');
    control = new LocalControl(db);
    const hosts = new Map<string, Host>();
    for (const n of ['h1', 'h2']) {
      hosts.set(n, new Host(n, control, hosts));
      await control.registerNode({ name: n, address: `${n}:7001`, transferKey: `key of ${n}`, bootId: 'boot' });
    }
    [h1, h2] = [hosts.get('h1')!, hosts.get('h2')!];
    expect(await control.reserveVolume({ name: 'db', backend: 'directory', options: {}, primaryNode: 'h1' })).to.equal(true);
    await control.confirmVolume('db', 'h1');
    await h1.backend.create('db', {});
    h1.backend.write('db', 'v1');
    // Snapshots that are not the move's: they must all survive.
    await h1.backend.snapshot('db', 'before-1');
    await h1.backend.snapshot('db', 'before-2');
  });
  afterEach(function () {
    db.close();
  });

  /** The target `to` pulls one snapshot of db from `from` through the source's handler, as a move does. */
  async function pull(from: Host, to: Host, req: TransferRequest & { snapshot: string }): Promise<void> {
    await to.backend.receive('db', req.snapshot, askAs(from, to.name).request(req));
  }

  /** Brings a first move of db (h1 -> h2) to `state` the way a target that crashed there leaves it. */
  async function driveTo(state: ActiveMoveState | 'precopy+round'): Promise<MoveRecord> {
    let m = await control.requestMove('db', 'h2');
    if (state === 'precopy') return m;
    await pull(h1, h2, { op: 'send', volume: 'db', snapshot: moveRoundSnapshot(m.id, 1) });
    if (state === 'precopy+round') return m;
    m = await control.updateMove(m.id, { state: 'releasing' });
    // The container writes on until it is stopped.
    h1.backend.write('db', 'v2');
    if (state === 'releasing') return m;
    m = await control.updateMove(m.id, { state: 'final' });
    if (state === 'final') return m;
    await pull(h1, h2, { op: 'send-final', volume: 'db', snapshot: moveFinalSnapshot(m.id), base: moveRoundSnapshot(m.id, 1) });
    await control.switchMove(m.id);
    return (await control.getMove(m.id))!;
  }

  // Who hears of a move asked for through one host: woken over the transfer channel, or a heartbeat here.
  const announced: { what: string; through: 'h1' | 'h2'; restartContainers: boolean; woken: [number, number]; beats: number }[] = [
    { what: 'through the source: wakes the target', through: 'h1', restartContainers: false, woken: [0, 1], beats: 0 },
    { what: 'through the source, --restart-containers: wakes the target and heartbeats here (the source)', through: 'h1', restartContainers: true, woken: [0, 1], beats: 1 },
    { what: 'through the target: heartbeats here and wakes nobody', through: 'h2', restartContainers: false, woken: [0, 0], beats: 1 },
  ];
  for (const a of announced) {
    it(`announces a move requested ${a.what}`, async function () {
      const m = await control.requestMove('db', 'h2', { restartContainers: a.restartContainers });
      expect(m.restartContainers).to.equal(a.restartContainers);
      let beats = 0;
      (a.through === 'h1' ? h1 : h2).mover.announce(m, () => void beats++);
      await new Promise((r) => setTimeout(r, 20));
      expect([h1.woken, h2.woken, beats]).to.deep.equal([...a.woken, a.beats]);
      // A wake starts nothing by itself: control's answer to the heartbeat hands out the move.
      expect((await control.getMove(m.id))!.state).to.equal('precopy');
    });
  }

  for (const state of ['precopy', 'precopy+round', 'releasing', 'final', 'switched'] as const) {
    it(`resumes a move from ${state} and ends it done, keeping every snapshot that is not the move's`, async function () {
      const m = await driveTo(state);
      await h2.mover.ensure(m);
      const after = (await control.getMove(m.id))!;
      expect(after.state).to.equal('done');
      const v = (await control.getVolume('db'))!;
      expect(v.primaryNode).to.equal('h2');
      expect(v.generation).to.equal(2);
      expect(h2.backend.live.get('db')).to.equal(state === 'precopy' || state === 'precopy+round' ? 'v1' : 'v2');
      // The target keeps only the move's final snapshot (the base of a move back).
      expect(await h2.backend.listSnapshots('db')).to.deep.equal([moveFinalSnapshot(m.id)]);
      const left = await h1.backend.listSnapshots('db');
      expect(left).to.include.members(['before-1', 'before-2', moveFinalSnapshot(m.id)]);
      // A run that made the switch prunes the replica's move snapshots; one resumed after it leaves them for the next move.
      if (state !== 'switched') expect(left).to.deep.equal(['before-1', 'before-2', moveFinalSnapshot(m.id)]);
    });
  }

  it('moves back by an increment from the kept final snapshot, and neither host loses a snapshot it owns', async function () {
    const first = await control.requestMove('db', 'h2');
    await h2.mover.ensure(first);
    h2.backend.write('db', 'v3');
    await h2.backend.snapshot('db', 'mine');
    const back = await control.requestMove('db', 'h1');
    await h1.mover.ensure(back);
    expect((await control.getMove(back.id))!.state).to.equal('done');
    expect((await control.getVolume('db'))!.primaryNode).to.equal('h1');
    expect(h1.backend.live.get('db')).to.equal('v3');
    // The move back's older move snapshots (move 1's final) go; the user's stay on both hosts.
    expect(await h1.backend.listSnapshots('db')).to.deep.equal(['before-1', 'before-2', moveFinalSnapshot(back.id)]);
    expect(await h2.backend.listSnapshots('db')).to.deep.equal(['mine', moveFinalSnapshot(back.id)]);
  });

  it('never takes a snapshot it does not own as the base of an increment', async function () {
    // h2 holds a snapshot of the same name as one of h1's, but of other data (names alone say nothing
    // of contents outside a move's own): an increment on it would build a wrong volume.
    await h2.backend.create('db', {});
    h2.backend.write('db', 'unrelated');
    await h2.backend.snapshot('db', 'before-2');
    const sent: TransferRequest[] = [];
    const handle = h1.handler.handle.bind(h1.handler);
    h1.handler.handle = (req, peer) => {
      sent.push(req);
      return handle(req, peer);
    };
    const m = await control.requestMove('db', 'h2');
    await h2.mover.ensure(m);
    const streams = sent.filter((r) => r.op === 'send' || r.op === 'send-final') as (TransferRequest & { base?: string })[];
    expect(streams[0].base, 'the first stream is full').to.equal(undefined);
    for (const r of streams) if (r.base !== undefined) expect(moveOfSnapshot(r.base), `base ${r.base}`).to.equal(m.id);
    expect(h2.backend.live.get('db')).to.equal('v1');
    expect(await h2.backend.listSnapshots('db')).to.include('before-2');
  });

  it('a failed move leaves the source primary and drops only its own snapshots on the target', async function () {
    const first = await control.requestMove('db', 'h2');
    await h2.mover.ensure(first);
    h2.backend.failSend = /final/;
    const back = await control.requestMove('db', 'h1');
    try {
      await h1.mover.ensure(back);
      expect.fail('the move went on without its final snapshot');
    } catch (err) {
      expect(isFerryError(err, 'COMMAND_FAILED'), String(err)).to.equal(true);
    }
    const m = (await control.getMove(back.id))!;
    expect(m.state).to.equal('failed');
    expect(m.error).to.match(/the disk under db failed/);
    expect((await control.getVolume('db'))!.primaryNode).to.equal('h2');
    // h1's replica keeps its user snapshots and its base; nothing of the failed move is left.
    expect(await h1.backend.listSnapshots('db')).to.deep.equal(['before-1', 'before-2', moveFinalSnapshot(first.id)]);
  });

  it('control refuses to take a move backwards and takes a repeated report as progress only', async function () {
    const m = await driveTo('final');
    try {
      await control.updateMove(m.id, { state: 'releasing', bytesDone: 5 });
      expect.fail('final went back to releasing');
    } catch (err) {
      expect(isFerryError(err, 'MOVE_CONFLICT')).to.equal(true);
      expect((err as Error).message).to.match(/move 1 of db is final: event precopied is not allowed/);
    }
    const again = await control.updateMove(m.id, { state: 'final', bytesDone: 9 });
    expect(again.state).to.equal('final');
    expect(again.bytesDone).to.equal(9);
    await control.failMove(m.id, 'given up');
    await control.failMove(m.id, 'twice');
    expect((await control.getMove(m.id))!.error).to.equal('given up');
    try {
      await control.switchMove(m.id);
      expect.fail('a failed move switched');
    } catch (err) {
      expect((err as Error).message).to.match(/move 1 of db is failed \(given up\), no longer under way/);
    }
  });

  it('a host that stops answering fails its moves before the switch, not after', async function () {
    const m = await driveTo('releasing');
    db.prepare("UPDATE nodes SET last_heartbeat = '2000-01-01T00:00:00.000Z' WHERE name = 'h2'").run();
    expect(control.markSilentNodesDown(1000)).to.deep.equal(['h2']);
    const failed = (await control.getMove(m.id))!;
    expect(failed.state).to.equal('failed');
    expect(failed.error).to.match(/host h2 stopped answering during releasing/);
  });
});
