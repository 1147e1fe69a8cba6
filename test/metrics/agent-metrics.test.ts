import { expect } from 'chai';
import { AgentMetrics } from '../../src/metrics/agent-metrics';
import { FerryError } from '../../src/errors';
import { parseScrape } from '../support/prom-text';

describe('metrics: an agent whose control is unreachable', function () {
  it('still answers a scrape, with its counters and no volume series', async function () {
    const m = new AgentMetrics(
      {
        node: 'h1',
        volumes: () => Promise.reject(new FerryError('NODE_UNREACHABLE', 'control is down')),
        pools: async () => [{ backend: 'btrfs', ok: true, totalBytes: 100, freeBytes: 40 }],
        movesInFlight: () => 1,
      },
      { processMetrics: false },
    );
    m.pluginRequest('VolumeDriver.Mount', 'error', 0.2, 'NODE_UNREACHABLE');
    const s = parseScrape(await m.scrape());
    expect(s.get('ferry_plugin_requests_total', { op: 'VolumeDriver.Mount', outcome: 'error' })).to.equal(1);
    expect(s.get('ferry_errors_total', { code: 'NODE_UNREACHABLE', where: 'plugin' })).to.equal(1);
    expect(s.get('ferry_plugin_request_seconds_bucket', { op: 'VolumeDriver.Mount', le: '0.25' })).to.equal(1);
    expect(s.get('ferry_plugin_request_seconds_bucket', { op: 'VolumeDriver.Mount', le: '0.1' })).to.equal(0);
    expect(s.get('ferry_pool_free_bytes', { backend: 'btrfs' })).to.equal(40);
    expect(s.get('ferry_moves_in_flight')).to.equal(1);
    expect([...s.samples.keys()].filter((k) => k.startsWith('ferry_volume'))).to.deep.equal([]);
  });
});
