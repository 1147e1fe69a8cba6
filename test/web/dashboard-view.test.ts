import { expect } from 'chai';
import { buildDashboard, diffDashboard, type DashboardInput } from '../../src/web/dashboard-view';
import type { MoveRecord, NodeRecord, VolumeView } from '../../src/wire/records';

const T = '2026-12-02T03:00:00.000Z';
const GiB = 2 ** 30;

function node(name: string, state: 'up' | 'down' = 'up'): NodeRecord {
  return { name, address: null, transferKey: null, bootId: null, lastHeartbeat: T, state, createdAt: T };
}
function volume(name: string, over: Partial<VolumeView> = {}): VolumeView {
  return {
    name, backend: 'btrfs', sizeBytes: GiB, fs: null, options: {}, primaryNode: 'h1', generation: 1, state: 'ready',
    createdAt: T, usedBytes: null, usedAt: null, mounts: 0, replicas: [], dropping: [], ...over,
  };
}
function move(id: number, volume: string, state: MoveRecord['state'], over: Partial<MoveRecord> = {}): MoveRecord {
  return {
    id, volume, source: 'h1', target: 'h2', state, fromGeneration: 1, bytesDone: 0, bytesTotal: null, error: null,
    createdAt: T, updatedAt: T, restartContainers: false, containers: null, ...over,
  };
}
function input(over: Partial<DashboardInput> = {}): DashboardInput {
  return { nodes: [node('h1'), node('h2')], volumes: [], leases: [], moves: [], events: [], hosts: [], ...over };
}
const status = (node: string, over: object = {}) => ({
  node, at: T, backends: [{ kind: 'btrfs', ok: true, totalBytes: 10 * GiB, freeBytes: 5 * GiB }], orphans: [], missing: [], ...over,
});

describe('dashboard view', () => {
  const attention: [string, Partial<DashboardInput>, string[]][] = [
    ['a healthy cluster needs nothing', { hosts: [status('h1')] }, []],
    ['a host that is down', { nodes: [node('h1'), node('h2', 'down')] }, ['host-down:h2']],
    ['a failed move, the newest of its volume', { moves: [move(3, 'v', 'failed', { error: 'disk broke' })] }, ['move-failed:3']],
    ['a failed move that a later move of the volume superseded', { moves: [move(4, 'v', 'done'), move(3, 'v', 'failed')] }, []],
    ['an orphan dataset and a missing one', { hosts: [status('h1', { orphans: [{ backend: 'btrfs', name: 'old', reason: 'no record' }], missing: ['gone'] })] }, ['missing:h1:gone', 'orphan:h1:btrfs:old']],
    ['a pool under 10% free', { hosts: [status('h1', { backends: [{ kind: 'loop', ok: true, totalBytes: 100 * GiB, freeBytes: 9 * GiB }] })] }, ['pool-low:h1:loop']],
    ['a pool at 10% free', { hosts: [status('h1', { backends: [{ kind: 'loop', ok: true, totalBytes: 100 * GiB, freeBytes: 10 * GiB }] })] }, []],
    [
      'an unavailable backend that a volume on the host uses',
      { hosts: [status('h1', { backends: [{ kind: 'loop', ok: false, error: 'no xfs' }] })], volumes: [volume('v', { backend: 'loop' })] },
      ['backend:h1:loop'],
    ],
    [
      'an unavailable backend that a replica on the host uses',
      { hosts: [status('h2', { backends: [{ kind: 'loop', ok: false, error: 'no xfs' }] })], volumes: [volume('v', { backend: 'loop', replicas: ['h2'] })] },
      ['backend:h2:loop'],
    ],
    [
      'an unavailable backend no volume on the host uses (a host need not have every backend)',
      { hosts: [status('h1', { backends: [{ kind: 'lvm', ok: false, error: 'no device-mapper' }] })], volumes: [volume('v', { backend: 'btrfs' }), volume('w', { backend: 'lvm', primaryNode: 'h2' })] },
      [],
    ],
  ];
  for (const [what, over, keys] of attention) {
    it(`needs attention: ${what}`, () => {
      expect(Object.keys(buildDashboard(input(over)).attention).sort()).to.deep.equal(keys);
    });
  }

  it('says what happened and what to do for a down host and a failed move', () => {
    const v = buildDashboard(input({ nodes: [node('h2', 'down')], moves: [move(3, 'db', 'failed', { error: 'disk broke' })] }));
    expect(v.attention['host-down:h2']).to.include({ severity: 'error' });
    expect(v.attention['host-down:h2'].fix).to.match(/ferry agent on h2/);
    expect(v.attention['move-failed:3'].what).to.equal('move 3 of db from h1 to h2 failed: disk broke');
    expect(v.attention['move-failed:3'].fix).to.match(/ferry volume move db --to h2/);
  });

  it('shows hosts with pools where reported, and a serve host that is no node', () => {
    const v = buildDashboard(input({ nodes: [node('h2')], hosts: [status('solo')], volumes: [volume('a', { primaryNode: 'solo' })] }));
    expect(v.hosts.solo).to.deep.include({ state: 'up', primaries: 1, reportedAt: T, pools: [{ kind: 'btrfs', ok: true, free: '5.0 GiB', total: '10.0 GiB', freePercent: 50 }] });
    expect(v.hosts.h2.pools).to.equal(null);
  });

  it('shows volumes with their mounts by host and containers, and the move under way', () => {
    const v = buildDashboard(
      input({
        volumes: [volume('db', { usedBytes: 3 * 2 ** 20, replicas: ['h3'] }), volume('free', { sizeBytes: null })],
        leases: [
          { volume: 'db', mountId: 'a', node: 'h1', count: 1, mountpoint: '/m', createdAt: T, containers: ['web'] },
          { volume: 'db', mountId: 'b', node: 'h1', count: 2, mountpoint: '/m', createdAt: T, containers: ['web', 'cron'] },
        ],
        moves: [move(7, 'db', 'precopy', { bytesDone: GiB, bytesTotal: 4 * GiB })],
      }),
    );
    expect(v.volumes.db).to.deep.include({ primary: 'h1', size: '1.0 GiB', used: '3.0 MiB', replicas: ['h3'], moving: 7, mounts: [{ node: 'h1', count: 3, containers: ['web', 'cron'] }] });
    expect(v.volumes.free).to.deep.include({ size: 'unlimited', used: 'unknown', moving: null, mounts: [] });
    expect(v.moves['7']).to.deep.include({ active: true, percent: 25, progress: '25%, 1.0 GiB of 4.0 GiB' });
  });

  it('shows a done move at 100% and one without a total as bytes sent', () => {
    const v = buildDashboard(input({ moves: [move(2, 'a', 'done', { bytesDone: 2 ** 20, bytesTotal: 2 ** 20 }), move(1, 'b', 'precopy', { bytesDone: 2 ** 20 })] }));
    expect(v.moves['2']).to.deep.include({ active: false, percent: 100 });
    expect(v.moves['1']).to.deep.include({ percent: null, progress: '1.0 MiB sent' });
  });

  it('diffs: nothing changed is null; only changed items travel; gone keys are deleted', () => {
    const a = buildDashboard(input({ volumes: [volume('x'), volume('y')], moves: [move(1, 'x', 'precopy')] }));
    expect(diffDashboard(a, buildDashboard(input({ volumes: [volume('x'), volume('y')], moves: [move(1, 'x', 'precopy')] })))).to.equal(null);
    const b = buildDashboard(input({ volumes: [volume('x'), volume('z')], moves: [move(1, 'x', 'precopy', { bytesDone: 5, bytesTotal: 10 })] }));
    const p = diffDashboard(a, b)!;
    expect(Object.keys(p.set).sort()).to.deep.equal(['moves', 'volumes']);
    expect(Object.keys(p.set.volumes!)).to.deep.equal(['z']);
    expect(p.set.moves!['1']).to.deep.include({ percent: 50 });
    expect(p.del).to.deep.equal({ volumes: ['y'] });
  });

  it('diffs from nothing to the whole view (a snapshot)', () => {
    const a = buildDashboard(input({ volumes: [volume('x')] }));
    const p = diffDashboard(undefined, a)!;
    expect(p.set.hosts).to.have.keys('h1', 'h2');
    expect(p.set.volumes).to.have.keys('x');
    expect(p.del).to.deep.equal({});
  });
});
