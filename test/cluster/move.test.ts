import { expect } from 'chai';
import type { TestHost } from './harness';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';
import type { Scrape } from '../support/prom-text';

/** Runs a one-off container with volume `vol` on host `h`. */
async function run(h: TestHost, vol: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return h.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', `${vol}:/data`, TEST_IMAGE, 'sh', '-c', script], { timeoutMs: 180_000 });
}

// 100 MiB in 200 files of random data, and a checksum list of them.
const WRITE_100M = 'mkdir -p /data/files && i=0; while [ $i -lt 200 ]; do dd if=/dev/urandom of=/data/files/f$i bs=512k count=1 2>/dev/null; i=$((i+1)); done; cd /data/files && md5sum * > /data/sums && sync';
const CHECK = 'cd /data/files && md5sum * | cmp - /data/sums && ls | wc -l';

describe('cluster: volumes that follow their containers', function () {
  const env = useFerryCluster({ hosts: 3 });

  it('registers every host and lists volumes cluster-wide', async function () {
    const [h1, h2] = env.cluster.hosts;
    const nodes = JSON.parse(env.ferry.cli(h2, ['node', 'ls', '--json']).stdout) as { name: string; state: string }[];
    expect(nodes.map((n) => `${n.name}:${n.state}`)).to.deep.equal(['h1:up', 'h2:up', 'h3:up']);
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'listed']);
    const onH3 = await env.cluster.host(3).dockerOk(['volume', 'ls', '--filter', 'driver=ferry', '--format', '{{.Name}}']);
    expect(onH3.split('\n')).to.include('listed');
    const ls = env.ferry.cli(h2, ['volume', 'ls']);
    expect(ls.stdout).to.match(/listed\s+btrfs\s+64\.0 MiB\s+(?:-|[\d.]+ [KMG]?i?B)\s+h1\s+1\s+0\s+ready/);
  });

  it('refuses a name taken on another host', async function () {
    await env.cluster.host(1).dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'taken']);
    const r = env.ferry.cli(env.cluster.host(2), ['volume', 'create', 'taken', '-o', 'size=128M']);
    expect(r.code).to.equal(4);
    expect(r.stderr).to.match(/volume taken already exists with backend=btrfs size=64.0 MiB/);
  });

  it('moves data written on h1 to h2 when a container on h2 mounts it (100 MiB, checksums), as metrics show', async function () {
    const [h1, h2] = env.cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=512M', 'data1']);
    const w = await run(h1, 'data1', WRITE_100M);
    expect(w.code, w.stderr).to.equal(0);
    const before = { control: await env.ferry.scrapeControl(), h1: await env.ferry.scrapeAgent(h1), h2: await env.ferry.scrapeAgent(h2) };
    // Control and the target are scraped while the move runs: each scrape must answer.
    const during: Scrape[] = [];
    let moving = true;
    const scraping = (async () => {
      while (moving) {
        during.push(await env.ferry.scrapeControl(), await env.ferry.scrapeAgent(h2));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const r = await run(h2, 'data1', CHECK).finally(() => (moving = false));
    await scraping;
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('200');
    const v = JSON.parse(env.ferry.cli(h2, ['volume', 'inspect', 'data1']).stdout).volume;
    expect(v).to.include({ primaryNode: 'h2', generation: 2 });

    expect(during.length).to.be.above(0);
    for (const s of during) expect(s.value('ferry_cluster_moves_in_flight') + s.value('ferry_moves_in_flight')).to.be.within(0, 1);
    const after = { control: await env.ferry.scrapeControl(), h1: await env.ferry.scrapeAgent(h1), h2: await env.ferry.scrapeAgent(h2) };
    const delta = (host: 'control' | 'h1' | 'h2', name: string, labels?: Record<string, string>): number => after[host].value(name, labels) - before[host].value(name, labels);
    const MiB = 2 ** 20;
    // The target drove the move: one ended well, its duration and downtime observed, 100 MiB received.
    expect(delta('h2', 'ferry_moves_total', { outcome: 'ok' })).to.equal(1);
    expect(delta('h2', 'ferry_move_duration_seconds_count')).to.equal(1);
    expect(delta('h2', 'ferry_move_downtime_seconds_count')).to.equal(1);
    expect(delta('h2', 'ferry_move_downtime_seconds_sum')).to.be.below(delta('h2', 'ferry_move_duration_seconds_sum'));
    expect(delta('h2', 'ferry_transfer_received_bytes_total')).to.be.within(100 * MiB, 130 * MiB);
    expect(delta('h2', 'ferry_move_bytes_total')).to.equal(delta('h2', 'ferry_transfer_received_bytes_total'));
    expect(after.h2.value('ferry_moves_in_flight')).to.equal(0);
    expect(delta('h2', 'ferry_plugin_requests_total', { op: 'VolumeDriver.Mount', outcome: 'ok' })).to.be.at.least(1);
    // The source sent it, and the volume's series moved from h1's scrape to h2's.
    expect(delta('h1', 'ferry_transfer_sent_bytes_total')).to.be.within(100 * MiB, 130 * MiB);
    expect(before.h1.get('ferry_volume_size_bytes', { volume: 'data1', backend: 'btrfs' })).to.equal(512 * MiB);
    expect(after.h1.get('ferry_volume_size_bytes', { volume: 'data1', backend: 'btrfs' })).to.equal(undefined);
    expect(after.h2.get('ferry_volume_size_bytes', { volume: 'data1', backend: 'btrfs' })).to.equal(512 * MiB);
    // Control: the move recorded done, its events, every node up, the volume's primary now h2.
    expect(delta('control', 'ferry_cluster_moves', { state: 'done' })).to.equal(1);
    expect(after.control.value('ferry_cluster_moves_in_flight')).to.equal(0);
    expect(delta('control', 'ferry_cluster_events_total', { kind: 'move-done' })).to.equal(1);
    for (const n of ['h1', 'h2', 'h3']) expect(after.control.get('ferry_cluster_node_up', { node: n }), n).to.equal(1);
    expect(after.control.get('ferry_cluster_volume_size_bytes', { volume: 'data1', backend: 'btrfs', node: 'h2' })).to.equal(512 * MiB);
    expect(after.control.get('ferry_cluster_volume_size_bytes', { volume: 'data1', backend: 'btrfs', node: 'h1' })).to.equal(undefined);
  });

  it('moves back with increments only, by ferry volume move, showing progress', async function () {
    const [h1, h2] = env.cluster.hosts;
    const c = await run(h2, 'data1', 'dd if=/dev/urandom of=/data/changed bs=1M count=4 2>/dev/null && sync');
    expect(c.code, c.stderr).to.equal(0);
    const m = env.ferry.cli(h2, ['volume', 'move', 'data1', '--to', 'h1']);
    expect(m.code, m.stderr).to.equal(0);
    expect(m.stdout).to.match(/data1 is now on h1/);
    // Not a terminal: plain progress lines (src/cli/progress.ts), one per step or tenth of the way.
    expect(m.stderr).to.match(/^data1: h2 -> h1: (precopy|releasing|final|switched|done)( \d+%)?, [\d.]+ (B|KiB|MiB)/m);
    const inspected = JSON.parse(env.ferry.cli(h1, ['volume', 'inspect', 'data1']).stdout);
    expect(inspected.volume).to.include({ primaryNode: 'h1', generation: 3 });
    expect(inspected.move).to.include({ state: 'done', source: 'h2', target: 'h1' });
    // Only the change travelled (4 MiB of 104), not the volume.
    expect(inspected.move.bytesDone).to.be.below(12 * 2 ** 20);
    const after = await run(h1, 'data1', `${CHECK} && wc -c < /data/changed`);
    expect(after.code, after.stderr).to.equal(0);
    expect(after.stdout.split('\n')).to.deep.equal(['200', String(4 * 2 ** 20)]);
  });

  it('plain Docker: names the containers holding a volume, and with --restart-containers moves them along', async function () {
    const [h1, h2] = env.cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'app1']);
    await h1.dockerOk(['run', '-d', '--name', 'app', '-v', 'app1:/data', TEST_IMAGE, 'sh', '-c',
      'i=$(tail -n 1 /data/log 2>/dev/null || echo 0); while true; do i=$((i+1)); echo $i >> /data/log; sync; sleep 0.1; done']);
    let refused = { code: 0, stdout: '', stderr: '' };
    const deadline = Date.now() + 15_000;
    do {
      await new Promise((r) => setTimeout(r, 500));
      refused = env.ferry.cli(h2, ['volume', 'move', 'app1', '--to', 'h2']);
    } while (!/containers: app/.test(refused.stderr) && Date.now() < deadline);
    expect(refused.code).to.equal(4);
    expect(refused.stderr).to.match(/volume app1 is in use: mounted on host h1 .*\(containers: app\).*--restart-containers/);

    const moved = env.ferry.cli(h2, ['volume', 'move', 'app1', '--to', 'h2', '--restart-containers']);
    expect(moved.code, moved.stderr).to.equal(0);
    expect(await h1.dockerOk(['inspect', '-f', '{{.State.Running}}', 'app'])).to.equal('false');
    await waitFor('the container to run again on h2', async () => (await h2.docker(['inspect', '-f', '{{.State.Running}}', 'app'])).stdout === 'true', 10_000, 250);
    await new Promise((r) => setTimeout(r, 1500));
    await h2.dockerOk(['rm', '-f', 'app']);
    await h1.dockerOk(['rm', '-f', 'app']);
    // The counter went on from where it stopped on h1: every line in order.
    const lines = (await run(h2, 'app1', 'cat /data/log')).stdout.split('\n').map(Number);
    expect(lines.length).to.be.above(10);
    lines.forEach((v, i) => expect(v, `line ${i + 1}`).to.equal(i + 1));
  });

  it('keeps the old copy as a replica by default (control records it), and removes it for a volume created with replica=drop', async function () {
    const [h1, h2, h3] = env.cluster.hosts;
    // data1 moved h1 -> h2 -> h1 above: h2 kept a replica and the last move's snapshot; h1 is primary again, no replica.
    expect(env.ferry.subvolumesOf(h2, 'data1').length, 'replica and its base snapshot on h2').to.be.at.least(2);
    expect(JSON.parse(env.ferry.cli(h3, ['volume', 'inspect', 'data1']).stdout).volume).to.deep.include({ primaryNode: 'h1', replicas: ['h2'] });
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', '-o', 'replica=drop', 'noreplica']);
    expect((await run(h1, 'noreplica', 'echo kept > /data/f && sync')).code).to.equal(0);
    const m = env.ferry.cli(h3, ['volume', 'move', 'noreplica', '--to', 'h3']);
    expect(m.code, m.stderr).to.equal(0);
    // h1 destroys it when its heartbeat answer says so (every 0.5 s here).
    await waitFor('nothing of noreplica left on h1', () => env.ferry.subvolumesOf(h1, 'noreplica').length === 0, 15_000);
    expect(JSON.parse(env.ferry.cli(h3, ['volume', 'inspect', 'noreplica']).stdout).volume).to.deep.include({ primaryNode: 'h3', replicas: [], dropping: [] });
    expect((await run(h3, 'noreplica', 'cat /data/f')).stdout).to.equal('kept');
  });

  it('refuses a move of a volume that a running container uses, and a conflicting second move', async function () {
    const [h1, h2, h3] = env.cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'busy1']);
    await h1.dockerOk(['run', '-d', '--name', 'holder', '-v', 'busy1:/data', TEST_IMAGE, 'sleep', '600']);
    const r = env.ferry.cli(h2, ['volume', 'move', 'busy1', '--to', 'h2']);
    expect(r.code).to.equal(4);
    expect(r.stderr).to.match(/volume busy1 is in use: mounted on host h1/);
    await h1.dockerOk(['rm', '-f', 'holder']);
    const first = env.ferry.cli(h2, ['volume', 'move', 'busy1', '--to', 'h2', '--no-wait']);
    expect(first.code, first.stderr).to.equal(0);
    const second = env.ferry.cli(h3, ['volume', 'move', 'busy1', '--to', 'h3']);
    if (second.code !== 0) expect(second.stderr).to.match(/already moving from h1 to h2|already on h2/);
    void h3;
  });
});
