import { expect } from 'chai';
import type { TestHost } from './harness';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';

/*
 * Removing a volume removes it from the whole cluster (issue 2: "Remove destroys the data"): asked on
 * any host, refused while any host mounts it, and every copy (primary and replicas) is destroyed,
 * by a host that was down at the time once it is back. Control here keeps no replicas by default
 * (control.keepReplica: false); volumes that need one are created with -o replica=keep.
 */

/** Runs a one-off container with volume `vol` on host `h`. */
async function run(h: TestHost, vol: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return h.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', `${vol}:/data`, TEST_IMAGE, 'sh', '-c', script], { timeoutMs: 180_000 });
}

const WRITE = 'dd if=/dev/urandom of=/data/blob bs=1M count=8 2>/dev/null && md5sum /data/blob > /data/blob.sum && sync';
const CHECK = 'md5sum -c -s /data/blob.sum && echo intact';

interface Inspected {
  volume: { name: string; primaryNode: string; state: string; replicas: string[]; dropping: string[] };
  leases: unknown[];
}

describe('cluster: removing a volume removes every copy', function () {
  const env = useFerryCluster({ hosts: 3, controlSettings: { control: { keepReplica: false } }, logLines: 40 });
  let h1: TestHost;
  let h2: TestHost;
  let h3: TestHost;
  before(function () {
    [h1, h2, h3] = env.cluster.hosts;
  });

  function inspect(h: TestHost, name: string): Inspected | undefined {
    const r = env.ferry.cli(h, ['volume', 'inspect', name]);
    if (r.code === 3) return undefined;
    expect(r.code, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as Inspected;
  }

  function move(name: string, to: TestHost): void {
    const m = env.ferry.cli(to, ['volume', 'move', name, '--to', to.name]);
    expect(m.code, m.stderr).to.equal(0);
  }

  async function gone(name: string, ...hosts: TestHost[]): Promise<void> {
    for (const h of hosts) await waitFor(`every copy of ${name} gone from ${h.name}'s pool`, () => env.ferry.subvolumesOf(h, name).length === 0, 20_000);
  }

  it("drops the old copy after a move when control's policy keeps no replicas", async function () {
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'dropped']);
    expect((await run(h1, 'dropped', WRITE)).code).to.equal(0);
    move('dropped', h2);
    await gone('dropped', h1);
    expect(inspect(h3, 'dropped')?.volume).to.deep.include({ primaryNode: 'h2', state: 'ready', replicas: [], dropping: [] });
    expect((await run(h2, 'dropped', CHECK)).stdout).to.equal('intact');
  });

  it('docker volume rm on a host that holds no copy removes the primary and the kept replica', async function () {
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', '-o', 'replica=keep', 'both']);
    expect((await run(h1, 'both', WRITE)).code).to.equal(0);
    move('both', h2);
    expect(env.ferry.subvolumesOf(h1, 'both'), 'the replica on h1').to.include('volumes/both');
    expect(inspect(h3, 'both')?.volume).to.deep.include({ primaryNode: 'h2', replicas: ['h1'], dropping: [] });
    const status = JSON.parse(await h3.dockerOk(['volume', 'inspect', '-f', '{{json .Status}}', 'both'])) as { primary: string; replicas: string[] };
    expect(status).to.deep.include({ primary: 'h2', replicas: ['h1'] });
    // A restart reconciles h1's disk with control: the replica is on record and on disk, no orphan.
    await env.ferry.killAgent(h1, 'SIGTERM');
    await env.ferry.startAgent(h1);
    const h1Status = JSON.parse(env.ferry.cli(h1, ['status', '--json']).stdout) as { replicas: string[]; orphans: { name: string }[] };
    expect(h1Status.replicas).to.include('both');
    expect(h1Status.orphans.map((o) => o.name)).to.not.include('both');
    expect(inspect(h3, 'both')?.volume.replicas, 'still on record after the restart').to.deep.equal(['h1']);

    await h3.dockerOk(['volume', 'rm', 'both']);
    await gone('both', h2, h1);
    await waitFor('control to forget both', () => inspect(h3, 'both') === undefined, 10_000);
    expect(await h1.dockerOk(['volume', 'ls', '-q'])).to.not.match(/^both$/m);
    expect((JSON.parse(env.ferry.cli(h1, ['status', '--json']).stdout) as { replicas: string[] }).replicas).to.not.include('both');
  });

  it('refuses a remove while a container on any host mounts the volume, naming host and container; the primary destroys its copy at once', async function () {
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'busy']);
    expect((await run(h1, 'busy', WRITE)).code).to.equal(0);
    // Mounting it on h2 moves it there.
    await h2.dockerOk(['run', '-d', '--name', 'holder', '-v', 'busy:/data', TEST_IMAGE, 'sleep', '600'], { timeoutMs: 180_000 });
    let refused = { code: 0, stdout: '', stderr: '' };
    await waitFor('the refusal to name the container', async () => {
      refused = await h3.docker(['volume', 'rm', 'busy']);
      return refused.code !== 0 && /containers: holder/.test(refused.stderr);
    }, 20_000, 500);
    expect(refused.stderr).to.match(/volume busy is in use: mounted on host h2 at \S+ by 1 container mount\(s\) \(containers: holder\); stop the containers using it/);
    const cli = env.ferry.cli(h1, ['volume', 'rm', 'busy']);
    expect(cli.code).to.equal(4);
    expect(cli.stderr).to.match(/volume busy is in use: mounted on host h2/);
    expect(inspect(h3, 'busy')?.volume).to.deep.include({ primaryNode: 'h2', state: 'ready' });
    expect(env.ferry.subvolumesOf(h2, 'busy')).to.include('volumes/busy');

    await h2.dockerOk(['rm', '-f', 'holder']);
    await waitFor('the lease to go', () => inspect(h3, 'busy')?.leases.length === 0, 20_000);
    const rm = env.ferry.cli(h2, ['volume', 'rm', 'busy']);
    expect(rm.code, rm.stderr).to.equal(0);
    // The caller is the primary: its copy went before the command answered.
    expect(env.ferry.subvolumesOf(h2, 'busy')).to.deep.equal([]);
    await waitFor('control to forget busy', () => inspect(h1, 'busy') === undefined, 10_000);
  });

  it('a host that is down when the volume is removed destroys its copy when it is back, control restarting meanwhile', async function () {
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', '-o', 'replica=keep', 'away']);
    expect((await run(h1, 'away', WRITE)).code).to.equal(0);
    move('away', h2);
    move('away', h1);
    // h1 is primary again: no longer a replica; h2 kept one.
    expect(inspect(h3, 'away')?.volume).to.deep.include({ primaryNode: 'h1', replicas: ['h2'], dropping: [] });
    expect(env.ferry.subvolumesOf(h2, 'away')).to.include('volumes/away');

    await env.ferry.killAgent(h2, 'SIGKILL');
    await waitFor('h2 to be marked down', () => (JSON.parse(env.ferry.cli(h3, ['node', 'ls', '--json']).stdout) as { name: string; state: string }[]).some((n) => n.name === 'h2' && n.state === 'down'), 20_000);
    const rm = env.ferry.cli(h3, ['volume', 'rm', 'away']);
    expect(rm.code, rm.stderr).to.equal(0);
    expect(rm.stderr).to.match(/the copies on h1, h2 \(down\) are destroyed when those hosts next hear from control/);
    await gone('away', h1);
    expect(env.ferry.subvolumesOf(h2, 'away'), "h2's copy waits for h2").to.include('volumes/away');
    expect(inspect(h3, 'away')?.volume).to.deep.include({ state: 'deleting', dropping: ['h2'] });
    expect(env.ferry.cli(h3, ['volume', 'ls']).stdout).to.match(/away .*deleting \(waiting for h2\)/);
    // Docker no longer sees it; a new volume of that name waits for the old one to be gone.
    expect(await h1.dockerOk(['volume', 'ls', '-q'])).to.not.match(/^away$/m);
    const again = await h3.docker(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'away']);
    expect(again.code).to.not.equal(0);
    expect(again.stderr).to.match(/volume away is still being removed from h2; retry shortly \(h2 is down: its copy goes when it is back\)/);
    const mount = await run(h1, 'away', 'true');
    expect(mount.code, 'a removed volume never mounts again').to.not.equal(0);

    await env.ferry.killControl('SIGKILL');
    await env.ferry.startControl();
    await env.ferry.startAgent(h2);
    await gone('away', h2);
    await waitFor('control to forget away', () => inspect(h3, 'away') === undefined, 10_000);
    // h2 reconciled at its start while its copy still existed: destroyed, not reported as an orphan.
    const s = JSON.parse(env.ferry.cli(h2, ['status', '--json']).stdout) as { orphans: { name: string }[] };
    expect(s.orphans.map((o) => o.name)).to.not.include('away');
    await h3.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=64M', 'away']);
    expect((await run(h3, 'away', 'ls /data | wc -l')).stdout, 'the new volume starts empty').to.equal('0');
  });
});
