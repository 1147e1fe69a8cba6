import { expect } from 'chai';
import { countBy, moveSamples, nodeSamples, volumeSamples } from '../../src/metrics/series';
import type { MoveRecord, NodeRecord, VolumeView } from '../../src/wire/records';

function view(name: string, over: Partial<VolumeView> = {}): VolumeView {
  return {
    name, backend: 'btrfs', sizeBytes: 100, fs: null, options: {}, primaryNode: 'h1', generation: 1, state: 'ready',
    createdAt: '2026-01-01T00:00:00.000Z', usedBytes: 10, usedAt: null, mounts: 0, replicas: [], dropping: [], ...over,
  };
}

describe('metrics: series from control records', function () {
  it('counts by label set, in order of first appearance', function () {
    expect(countBy(['a', 'b', 'a', 'c', 'a'], (x) => ({ x: x === 'c' ? 'a' : x }))).to.deep.equal([
      { labels: { x: 'a' }, value: 4 },
      { labels: { x: 'b' }, value: 1 },
    ]);
    expect(countBy([], () => ({}))).to.deep.equal([]);
  });

  const views = [
    view('a'),
    view('b', { primaryNode: 'h2', mounts: 2 }),
    view('pool', { sizeBytes: null, usedBytes: null, backend: 'directory' }),
    view('new', { state: 'creating', usedBytes: null }),
    view('gone', { state: 'deleting' }),
  ];
  const cases: { what: string; node?: string; expect: ReturnType<typeof volumeSamples> }[] = [
    {
      what: 'an agent shows only the volumes whose primary it is; none of a deleting one but its count; no used bytes before a usage pass; no size for a pool-sized volume',
      node: 'h1',
      expect: {
        byState: [
          { labels: { state: 'ready', backend: 'btrfs' }, value: 1 },
          { labels: { state: 'ready', backend: 'directory' }, value: 1 },
          { labels: { state: 'creating', backend: 'btrfs' }, value: 1 },
          { labels: { state: 'deleting', backend: 'btrfs' }, value: 1 },
        ],
        used: [{ labels: { volume: 'a', backend: 'btrfs' }, value: 10 }],
        size: [
          { labels: { volume: 'a', backend: 'btrfs' }, value: 100 },
          { labels: { volume: 'new', backend: 'btrfs' }, value: 100 },
        ],
        mounts: [
          { labels: { volume: 'a', backend: 'btrfs' }, value: 0 },
          { labels: { volume: 'pool', backend: 'directory' }, value: 0 },
          { labels: { volume: 'new', backend: 'btrfs' }, value: 0 },
        ],
      },
    },
    {
      what: 'control shows every volume, with its primary as a label',
      expect: {
        byState: [
          { labels: { state: 'ready', backend: 'btrfs' }, value: 2 },
          { labels: { state: 'ready', backend: 'directory' }, value: 1 },
          { labels: { state: 'creating', backend: 'btrfs' }, value: 1 },
          { labels: { state: 'deleting', backend: 'btrfs' }, value: 1 },
        ],
        used: [
          { labels: { volume: 'a', backend: 'btrfs', node: 'h1' }, value: 10 },
          { labels: { volume: 'b', backend: 'btrfs', node: 'h2' }, value: 10 },
        ],
        size: [
          { labels: { volume: 'a', backend: 'btrfs', node: 'h1' }, value: 100 },
          { labels: { volume: 'b', backend: 'btrfs', node: 'h2' }, value: 100 },
          { labels: { volume: 'new', backend: 'btrfs', node: 'h1' }, value: 100 },
        ],
        mounts: [
          { labels: { volume: 'a', backend: 'btrfs', node: 'h1' }, value: 0 },
          { labels: { volume: 'b', backend: 'btrfs', node: 'h2' }, value: 2 },
          { labels: { volume: 'pool', backend: 'directory', node: 'h1' }, value: 0 },
          { labels: { volume: 'new', backend: 'btrfs', node: 'h1' }, value: 0 },
        ],
      },
    },
  ];
  for (const c of cases) it(c.what, () => expect(volumeSamples(views, c.node)).to.deep.equal(c.expect));

  it('nodes: up as 1, down as 0; heartbeat age in seconds, none before a first heartbeat', function () {
    const node = (name: string, state: 'up' | 'down', lastHeartbeat: string | null): NodeRecord => ({
      name, state, lastHeartbeat, address: null, transferKey: null, bootId: null, createdAt: '2026-01-01T00:00:00.000Z',
    });
    const now = Date.parse('2026-01-01T00:01:00.000Z');
    expect(nodeSamples([node('h1', 'up', '2026-01-01T00:00:59.500Z'), node('h2', 'down', '2026-01-01T00:00:00.000Z'), node('h3', 'up', null)], now)).to.deep.equal({
      up: [
        { labels: { node: 'h1' }, value: 1 },
        { labels: { node: 'h2' }, value: 0 },
        { labels: { node: 'h3' }, value: 1 },
      ],
      heartbeatAge: [
        { labels: { node: 'h1' }, value: 0.5 },
        { labels: { node: 'h2' }, value: 60 },
      ],
    });
  });

  it('moves under way: bytes done, and bytes expected only where known', function () {
    const move = (id: number, bytesTotal: number | null): MoveRecord => ({
      id, volume: `v${id}`, source: 'h1', target: 'h2', state: 'precopy', fromGeneration: 1, bytesDone: 5 * id, bytesTotal, error: null,
      createdAt: '', updatedAt: '', restartContainers: false, containers: null,
    });
    const labels = (id: number): Record<string, string> => ({ volume: `v${id}`, source: 'h1', target: 'h2', state: 'precopy' });
    expect(moveSamples([move(1, 100), move(2, null)])).to.deep.equal({
      done: [
        { labels: labels(1), value: 5 },
        { labels: labels(2), value: 10 },
      ],
      expected: [{ labels: labels(1), value: 100 }],
    });
  });
});
