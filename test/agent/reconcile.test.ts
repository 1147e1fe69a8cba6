import { expect } from 'chai';
import { planReconcile, type ReconcileInput, type ReconcileVolume } from '../../src/agent/reconcile';
import type { Lease } from '../../src/wire/records';

function vol(name: string, over: Partial<ReconcileVolume> = {}): ReconcileVolume {
  return {
    name,
    backend: 'btrfs',
    sizeBytes: null,
    fs: null,
    options: {},
    primaryNode: 'h1',
    generation: 1,
    state: 'ready',
    createdAt: '2026-01-01T00:00:00Z',
    usedBytes: null,
    usedAt: null,
    replicas: [],
    dropping: [],
    ...over,
  };
}
const lease = (volume: string, node = 'h1'): Lease => ({ volume, mountId: `id-${volume}`, node, count: 1, mountpoint: `/m/${volume}`, createdAt: '' });

function plan(over: Partial<ReconcileInput>): string[] {
  const input: ReconcileInput = { node: 'h1', volumes: [], leases: [], mounted: new Set(), datasets: new Map([['btrfs', new Set()]]), ...over };
  return planReconcile(input).map((a) => `${a.kind} ${'volume' in a ? a.volume : a.dataset}`);
}

describe('planReconcile', function () {
  const disk = (...names: string[]) => new Map([['btrfs', new Set(names)]]);
  const table: [string, Partial<ReconcileInput>, string[]][] = [
    ['a leased, mounted volume stays mounted (live restore)', { volumes: [vol('a')], leases: [lease('a')], mounted: new Set(['a']), datasets: disk('a') }, ['keep-mounted a']],
    ['a leased volume that is not mounted is mounted again', { volumes: [vol('a')], leases: [lease('a')], datasets: disk('a') }, ['remount a']],
    ['a mount without a lease is unmounted', { volumes: [vol('a')], mounted: new Set(['a']), datasets: disk('a') }, ['unmount a']],
    ['an idle volume needs nothing', { volumes: [vol('a')], datasets: disk('a') }, []],
    ['a cut-off create is rolled back', { volumes: [vol('a', { state: 'creating' })], datasets: disk('a') }, ['rollback-create a']],
    ['a cut-off remove is finished, unmounting first', { volumes: [vol('a', { state: 'deleting', dropping: ['h1'] })], mounted: new Set(['a']), datasets: disk('a') }, ['unmount a', 'destroy-copy a']],
    ['a removed volume whose copy here is already gone needs nothing (others destroy theirs)', { volumes: [vol('a', { state: 'deleting', dropping: ['h2'] })], datasets: disk() }, []],
    ['a replica of a volume removed while this host was down is destroyed', { volumes: [vol('a', { primaryNode: 'h2', state: 'deleting', dropping: ['h1', 'h2'] })], datasets: disk('a') }, ['destroy-copy a']],
    ['a replica that policy does not keep is destroyed', { volumes: [vol('a', { primaryNode: 'h2', dropping: ['h1'] })], datasets: disk('a') }, ['destroy-copy a']],
    ['a kept replica on disk is left alone, and is no orphan', { volumes: [vol('a', { primaryNode: 'h2', replicas: ['h1'] })], datasets: disk('a') }, []],
    ['a kept replica that is not on disk is forgotten', { volumes: [vol('a', { primaryNode: 'h2', replicas: ['h1'] })], datasets: disk() }, ['forget-replica a']],
    ['a replica in a backend that could not be listed is kept on record', { volumes: [vol('a', { primaryNode: 'h2', replicas: ['h1'] })], datasets: new Map() }, []],
    ["another host's replica says nothing about this host", { volumes: [vol('a', { primaryNode: 'h2', replicas: ['h3'] })], datasets: disk() }, []],
    ['a dataset nobody records is reported, not deleted', { datasets: disk('stray') }, ['report-orphan-dataset stray']],
    ['a mount nobody records is reported', { mounted: new Set(['ghost']) }, ['report-orphan-mount ghost']],
    ['a recorded volume without dataset is reported missing and its leases dropped', { volumes: [vol('a')], leases: [lease('a')] }, ['report-missing a', 'drop-leases a']],
    ['a volume whose primary is another host is left alone', { volumes: [vol('a', { primaryNode: 'h2' })], mounted: new Set(), datasets: disk() }, []],
    ['a backend that could not be listed says nothing about its volumes', { volumes: [vol('a')], leases: [lease('a')], mounted: new Set(['a']), datasets: new Map() }, ['keep-mounted a']],
  ];
  for (const [label, input, want] of table) {
    it(label, function () {
      expect(plan(input)).to.deep.equal(want);
    });
  }
  it('gives a reason for every action', function () {
    const actions = planReconcile({ node: 'h1', volumes: [vol('a', { state: 'creating' })], leases: [], mounted: new Set(['a', 'z']), datasets: disk('a', 'q') });
    for (const a of actions) expect(a.reason).to.be.a('string').and.not.equal('');
  });
});
