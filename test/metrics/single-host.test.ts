import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../src/config/config';
import type { Ferry } from '../../src/serve';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { startTestFerry, testConfig } from '../support/ferry';
import { scrape, type Scrape } from '../support/prom-text';
import { unixRequest } from '../support/unix-http';

const MiB = 2 ** 20;

describe('metrics: scraping a live ferry serve', function () {
  let dir: string;
  let config: Config;
  let ferry: Ferry;
  const metrics = (): Promise<Scrape> => scrape(`${ferry.webUrl!}/metrics`);
  const plugin = async (endpoint: string, body: unknown): Promise<Record<string, unknown>> => (await unixRequest(config.pluginSocket, endpoint, body)).json;
  const ok = async (endpoint: string, body: unknown): Promise<Record<string, unknown>> => {
    const j = await plugin(endpoint, body);
    expect(j.Err ?? '', endpoint).to.equal('');
    return j;
  };
  const requests = (s: Scrape, op: string, outcome: string): number => s.value('ferry_plugin_requests_total', { op, outcome });
  const latencyCount = (s: Scrape, op: string): number => s.value('ferry_plugin_request_seconds_count', { op });
  const vol = { volume: 'mvol', backend: 'btrfs' };

  before(async function () {
    requireRootAndTools('btrfs', 'mkfs.btrfs');
    dir = makeTempDir('metrics');
    config = testConfig(dir);
    ferry = await startTestFerry(config);
  });
  after(async function () {
    await ferry?.stop();
    cleanupDir(dir);
  });

  it('shows the pool, the process and no volume at first', async function () {
    const s = await metrics();
    expect(s.value('ferry_backend_up', { backend: 'btrfs' })).to.equal(1);
    const size = s.value('ferry_pool_size_bytes', { backend: 'btrfs' });
    expect(size).to.be.within(1.5 * 2 ** 30, 2 * 2 ** 30);
    expect(s.value('ferry_pool_free_bytes', { backend: 'btrfs' })).to.be.within(1, size);
    expect(s.get('ferry_volumes', { state: 'ready', backend: 'btrfs' })).to.equal(undefined);
    expect(s.get('ferry_volume_size_bytes', vol)).to.equal(undefined);
    expect(s.value('ferry_moves_in_flight')).to.equal(0);
    expect(s.value('process_resident_memory_bytes')).to.be.above(10 * MiB);
    expect([...s.families]).to.include.members(['ferry_cluster_volumes', 'ferry_cluster_events_total', 'ferry_errors_total']);
  });

  it('counts a Create by op and outcome, with its latency, and shows the volume and its size', async function () {
    const before = await metrics();
    await ok('/VolumeDriver.Create', { Name: 'mvol', Opts: { size: '64M' } });
    const s = await metrics();
    expect(requests(s, 'VolumeDriver.Create', 'ok') - requests(before, 'VolumeDriver.Create', 'ok')).to.equal(1);
    expect(latencyCount(s, 'VolumeDriver.Create') - latencyCount(before, 'VolumeDriver.Create')).to.equal(1);
    expect(s.value('ferry_plugin_request_seconds_sum', { op: 'VolumeDriver.Create' })).to.be.above(0);
    expect(s.value('ferry_volumes', { state: 'ready', backend: 'btrfs' })).to.equal(1);
    expect(s.value('ferry_cluster_volumes', { state: 'ready', backend: 'btrfs' })).to.equal(1);
    expect(s.get('ferry_volume_size_bytes', vol)).to.equal(64 * MiB);
    expect(s.get('ferry_cluster_volume_size_bytes', { ...vol, node: 'h1' })).to.equal(64 * MiB);
    expect(s.get('ferry_volume_mounts', vol)).to.equal(0);
    expect(s.value('ferry_cluster_events_total', { kind: 'created' }) - before.value('ferry_cluster_events_total', { kind: 'created' })).to.equal(1);
  });

  it('counts failed requests by outcome and errors by code; an unknown endpoint is op "unknown"', async function () {
    const before = await metrics();
    expect((await plugin('/VolumeDriver.Create', { Name: 'bad', Opts: { color: 'red' } })).Err).to.match(/valid options/);
    expect((await plugin('/VolumeDriver.Get', { Name: 'nothing-here' })).Err).to.match(/does not exist/);
    expect((await plugin('/VolumeDriver.Explode', {})).Err).to.match(/unknown plugin endpoint/);
    const s = await metrics();
    const delta = (name: string, labels: Record<string, string>): number => s.value(name, labels) - before.value(name, labels);
    expect(delta('ferry_plugin_requests_total', { op: 'VolumeDriver.Create', outcome: 'error' })).to.equal(1);
    expect(delta('ferry_plugin_requests_total', { op: 'VolumeDriver.Get', outcome: 'error' })).to.equal(1);
    expect(delta('ferry_plugin_requests_total', { op: 'unknown', outcome: 'error' })).to.equal(1);
    expect(delta('ferry_errors_total', { code: 'INVALID_OPTION', where: 'plugin' })).to.equal(1);
    expect(delta('ferry_errors_total', { code: 'VOLUME_NOT_FOUND', where: 'plugin' })).to.equal(1);
    expect(delta('ferry_errors_total', { code: 'INVALID_REQUEST', where: 'plugin' })).to.equal(1);
    expect([...s.samples.keys()].some((k) => k.includes('Explode')), 'no label made from a request URL').to.equal(false);
  });

  it('shows a mount, the bytes written once usage is measured, and the unmount', async function () {
    const mountpoint = (await ok('/VolumeDriver.Mount', { Name: 'mvol', ID: 'c1' })).Mountpoint as string;
    let s = await metrics();
    expect(s.get('ferry_volume_mounts', vol)).to.equal(1);
    expect(s.get('ferry_cluster_volume_mounts', { ...vol, node: 'h1' })).to.equal(1);
    writeFileSync(join(mountpoint, 'blob'), Buffer.alloc(8 * MiB, 7));
    await ferry.agent.upkeep.maintain();
    s = await metrics();
    expect(s.get('ferry_volume_used_bytes', vol)).to.be.within(8 * MiB, 9 * MiB);
    expect(s.get('ferry_cluster_volume_used_bytes', { ...vol, node: 'h1' })).to.be.within(8 * MiB, 9 * MiB);
    await ok('/VolumeDriver.Unmount', { Name: 'mvol', ID: 'c1' });
    s = await metrics();
    expect(s.get('ferry_volume_mounts', vol)).to.equal(0);
    expect(requests(s, 'VolumeDriver.Mount', 'ok')).to.equal(1);
    expect(requests(s, 'VolumeDriver.Unmount', 'ok')).to.equal(1);
  });

  it('drops the per-volume series of a removed volume', async function () {
    await ok('/VolumeDriver.Remove', { Name: 'mvol' });
    const s = await metrics();
    expect(s.get('ferry_volume_size_bytes', vol)).to.equal(undefined);
    expect(s.get('ferry_volume_used_bytes', vol)).to.equal(undefined);
    expect(s.get('ferry_volume_mounts', vol)).to.equal(undefined);
    expect(s.get('ferry_volumes', { state: 'ready', backend: 'btrfs' })).to.equal(undefined);
    expect(requests(s, 'VolumeDriver.Remove', 'ok')).to.equal(1);
    expect(s.value('ferry_cluster_events_total', { kind: 'deleted' })).to.equal(1);
  });
});
