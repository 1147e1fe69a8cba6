import { expect } from 'chai';
import { startCluster, type Cluster, type TestHost } from './harness';
import { FerryCluster } from './ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';

/*
 * When control or a host is away (issue 7, items 5 and 6; DESIGN: "When control or a host is away").
 * Control killed: containers on a volume's primary keep starting while the host's lease holds and are
 * refused after it with a clear error; dockerd never makes an empty `local` volume of a ferry name.
 */

/** Short, so that the test sees the lease run out: a primary may mount this long without control. */
const LEASE_S = 10;

describe('cluster: control away', function () {
  let cluster: Cluster;
  let ferry: FerryCluster;
  let h1: TestHost;
  let h2: TestHost;

  before(async function () {
    cluster = await startCluster({ hosts: 2 });
    [h1, h2] = cluster.hosts;
    ferry = new FerryCluster(cluster, { control: { leaseSeconds: LEASE_S } });
    await ferry.start();
  });
  after(async function () {
    await ferry?.stop().catch(() => undefined);
    await cluster?.teardown();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) console.log(ferry.logs(60));
  });

  /** Every volume dockerd of `h` lists, as "driver name". */
  async function dockerVolumes(h: TestHost): Promise<string[]> {
    return (await h.dockerOk(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}'])).split('\n').filter(Boolean).sort();
  }

  async function controlLeasesOn(volume: string): Promise<string[]> {
    const r = await ferry.controlRequest('POST', '/v1/agent/leasesOf', { args: [volume] });
    return ((r.json.result ?? []) as { node: string; mountId: string }[]).map((l) => `${l.node} ${l.mountId}`);
  }

  it('control killed: the primary keeps starting containers for the lease, then refuses with a clear error; never a local stand-in', async function () {
    // db lives on h1 with a file in it; other lives on h2. Both are known to h1's dockerd and agent.
    await h1.dockerOk(['run', '--rm', '-v', 'db:/data', '--volume-driver', 'ferry', TEST_IMAGE, 'sh', '-c', 'echo kept > /data/f && sync']);
    await h2.dockerOk(['volume', 'create', '-d', 'ferry', 'other']);
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
    await h1.dockerOk(['volume', 'inspect', 'other']);

    await ferry.killControl('SIGKILL');
    const killedAt = Date.now();

    // Without --volume-driver, as a Compose file or a user would: dockerd asks ferry's Get (it has
    // the name recorded for ferry); an Err there would make it create an empty local volume.
    const read = await h1.docker(['run', '--rm', '-v', 'db:/data', TEST_IMAGE, 'cat', '/data/f']);
    expect(read.code, read.stderr).to.equal(0);
    expect(read.stdout.trim()).to.equal('kept');
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
    const status = JSON.parse(await h1.dockerOk(['volume', 'inspect', 'db']))[0];
    expect(status.Driver).to.equal('ferry');
    expect(status.Status.control).to.match(/^unreachable/);
    expect(status.Status.primary).to.equal('h1');

    // A container that stays, started while control is away: control hears of its Mount ID later.
    await h1.dockerOk(['run', '-d', '--name', 'keeper', '-v', 'db:/data', TEST_IMAGE, 'sleep', '600']);
    // A volume primary elsewhere cannot come here without control: refused, and no local stand-in.
    const elsewhere = await h1.docker(['run', '--rm', '-v', 'other:/data', TEST_IMAGE, 'true']);
    expect(elsewhere.code).to.not.equal(0);
    expect(elsewhere.stderr).to.match(/primary is h2/);
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);

    // Starts keep working until the lease runs out, then fail, naming it.
    let refused = '';
    let lastOkAt = Date.now();
    await waitFor(
      'a start to be refused once the lease has run out',
      async () => {
        const r = await h1.docker(['run', '--rm', '-v', 'db:/data', TEST_IMAGE, 'cat', '/data/f']);
        if (r.code === 0) {
          expect(r.stdout.trim()).to.equal('kept');
          lastOkAt = Date.now();
          return false;
        }
        refused = r.stderr;
        return true;
      },
      (LEASE_S + 30) * 1000,
      500,
    );
    const refusedAfterS = (Date.now() - killedAt) / 1000;
    console.log(`      control killed; starts worked for ${((lastOkAt - killedAt) / 1000).toFixed(1)} s, refused after ${refusedAfterS.toFixed(1)} s (lease ${LEASE_S} s)`);
    expect(refused).to.match(/lease on its primary volumes expired at/);
    expect(refused).to.match(/unreachable since/);
    expect(refusedAfterS).to.be.at.most(LEASE_S + 5);
    expect((lastOkAt - killedAt) / 1000).to.be.at.least(LEASE_S - 3);
    // Still no stand-in, and the volume is still ferry's.
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
    expect(JSON.parse(await h1.dockerOk(['volume', 'inspect', 'db']))[0].Driver).to.equal('ferry');

    // Control back: it hears of keeper's mount, and starts work again.
    await ferry.startControl();
    await waitFor('control to hold the lease of the container started while it was away', async () => (await controlLeasesOn('db')).some((l) => l.startsWith('h1 ')), 30_000, 250);
    const again = await h1.docker(['run', '--rm', '-v', 'db:/data', TEST_IMAGE, 'cat', '/data/f']);
    expect(again.code, again.stderr).to.equal(0);
    await h1.dockerOk(['rm', '-f', 'keeper']);
    await waitFor('the last lease to go', async () => (await controlLeasesOn('db')).length === 0, 30_000, 250);
    expect(await dockerVolumes(h1)).to.deep.equal(['ferry db', 'ferry other']);
  });
});
