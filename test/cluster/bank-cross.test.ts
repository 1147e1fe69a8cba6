import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type Cluster, type TestHost } from './harness';
import { FerryCluster, REPO_ROOT } from './ferry-cluster';
import { TEST_IMAGE, waitFor } from '../support/docker';
import { cleanupDir, makeTempDir } from '../support/host';
import { swiftAio } from '../support/swift';
import type { BankLocation } from '../../src/bank/types';

/*
 * Issue 8's proof beyond one cluster: cluster A backs up volumes its containers wrote into two
 * banks (Swift through s3api, and a file:// directory); A is then torn down entirely (its hosts,
 * dockerds, agents and control with its database: only one test cluster fits this machine, names and
 * subnet are fixed), and cluster B, started afresh with a new control database, adds the same banks
 * --read-only with nothing but their URL and key, lists the checkpoints, restores them and runs
 * containers on them: the same sha256s, and PostgreSQL starts on its restored data with every row.
 */

const PG_IMAGE = 'ferry-test/postgres:15';
const PG_ROWS = 20_000;
/** Every file of /data with its sha256, sorted: what a container reads. */
const SUMS = 'cd /data && find . -type f ! -path "./lost+found/*" | sort | xargs sha256sum';

interface Checkpoint {
  id: string;
  volume: string;
  bank?: string;
}

/** The postgres test image from the root dockerd (built by scripts/build-postgres-image.sh), loaded into every host. */
async function loadPostgresImage(cluster: Cluster): Promise<void> {
  const root = ['docker', '-H', 'unix:///var/run/docker.sock'];
  if (spawnSync(root[0], [...root.slice(1), 'image', 'inspect', PG_IMAGE]).status !== 0) {
    const b = spawnSync('bash', [join(REPO_ROOT, 'scripts/build-postgres-image.sh')], { encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`cannot build ${PG_IMAGE}: ${b.stderr}`);
  }
  const tar = join(cluster.dir, 'postgres-image.tar');
  const saved = spawnSync(root[0], [...root.slice(1), 'save', '-o', tar, PG_IMAGE], { encoding: 'utf8' });
  if (saved.status !== 0) throw new Error(`cannot save ${PG_IMAGE}: ${saved.stderr}`);
  await Promise.all(cluster.hosts.map((h) => h.dockerOk(['load', '-q', '-i', tar], { timeoutMs: 180_000 })));
}

/**
 * A TCP forwarder in a process of its own (the test's spawnSync calls of the CLI block this one's
 * event loop): hosts reach the root namespace at the bridge address, Swift listens on 127.0.0.1.
 * Resolves to the port it listens on (`port` 0: any free one).
 */
function forward(host: string, port: number, target: number): Promise<{ port: number; proc: ChildProcess }> {
  const script = `
    const net = require('node:net');
    const [host, port, target] = process.argv.slice(1);
    const server = net.createServer((c) => {
      const u = net.connect(Number(target), '127.0.0.1');
      c.pipe(u); u.pipe(c);
      c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
    });
    server.listen(Number(port), host, () => console.log(server.address().port));`;
  const proc = spawn(process.execPath, ['-e', script, host, String(port), String(target)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((ok, fail) => {
    proc.once('exit', (code) => fail(new Error(`the forwarder to Swift exited with ${code}`)));
    proc.stdout!.once('data', (d: Buffer) => {
      proc.removeAllListeners('exit');
      ok({ port: Number(d.toString().trim()), proc });
    });
  });
}

async function psql(h: TestHost, container: string, sql: string): Promise<string> {
  return (await h.dockerOk(['exec', container, 'psql', '-U', 'postgres', '-tAc', sql])).trim();
}

async function startPostgres(h: TestHost, name: string, volume: string): Promise<void> {
  await h.dockerOk([
    'run', '-d', '--name', name, '--volume-driver', 'ferry', '-v', `${volume}:/var/lib/postgresql/data`,
    '--label', 'ferry.pre-snapshot=psql -U postgres -c CHECKPOINT', PG_IMAGE,
  ]);
  await waitFor(`postgres in ${name} to answer`, async () => (await h.docker(['exec', name, 'psql', '-U', 'postgres', '-tAc', 'select 1'])).stdout.trim() === '1', 60_000, 250);
}

describe('cluster: a bank carries volumes to another cluster', function () {
  let dir: string;
  let bucket: BankLocation;
  let forwarder: { port: number; proc: ChildProcess } | undefined;
  let forwardPort = 0;
  let cluster: Cluster | undefined;
  let ferry: FerryCluster | undefined;
  const keyFile = (): string => join(dir, 'bank.key');
  let sums = '';
  /** Checkpoints A made: bank → volume → id. */
  const made: Record<string, Record<string, string>> = { sw: {}, fl: {} };

  before(async function () {
    const swift = await swiftAio(this);
    bucket = await swift.bank('banks/one');
    dir = makeTempDir('bank-cross');
    writeFileSync(keyFile(), randomBytes(32), { mode: 0o600 });
    mkdirSync(join(dir, 'file-bank'));
    writeFileSync(join(dir, 'access'), swift.accessKey, { mode: 0o600 });
    writeFileSync(join(dir, 'secret'), swift.secretKey, { mode: 0o600 });
  });
  after(async function () {
    await ferry?.stop().catch(() => undefined);
    forwarder?.proc.kill();
    await cluster?.teardown();
    if (dir) cleanupDir(dir);
  });
  /** A cluster of two hosts with ferry, the postgres image, and Swift reachable at the bridge address (the same port each time). */
  const startBoth = async (): Promise<void> => {
    cluster = await startCluster({ hosts: 2 });
    ferry = new FerryCluster(cluster);
    await ferry.start();
    await loadPostgresImage(cluster);
    forwarder = await forward(cluster.bridgeIp, forwardPort, Number(new URL(bucket.endpoint!).port));
    forwardPort = forwarder.port;
  };
  const stopBoth = async (): Promise<void> => {
    await ferry!.stop();
    ferry = undefined;
    forwarder!.proc.kill();
    forwarder = undefined;
    // Every host, its dockerd and agent, and control with its database: gone.
    await cluster!.teardown();
    cluster = undefined;
  };
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) console.log(ferry.logs());
  });

  const cli = (h: TestHost, args: string[]): string => {
    const r = ferry!.cli(h, args);
    expect(r.code, `ferry ${args.join(' ')}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  };
  const addBanks = (h: TestHost, readOnly: boolean): void => {
    const ro = readOnly ? ['--read-only'] : [];
    const sw = [bucket.url, '--endpoint', `http://${cluster!.bridgeIp}:${forwardPort}`, '--access-key-file', join(dir, 'access'), '--secret-key-file', join(dir, 'secret')];
    cli(h, ['bank', 'add', 'sw', ...sw, '--key-file', keyFile(), ...ro]);
    cli(h, ['bank', 'add', 'fl', `file://${join(dir, 'file-bank')}`, '--key-file', keyFile(), ...ro]);
  };
  const list = (h: TestHost, bank: string): Checkpoint[] => {
    const out = JSON.parse(cli(h, ['backup', 'ls', '--bank', bank, '--json'])) as Checkpoint[] | { checkpoints: Checkpoint[] };
    return Array.isArray(out) ? out : out.checkpoints;
  };

  it('cluster A: containers write, ferry backs the volumes up into both banks', async function () {
    await startBoth();
    const h1 = cluster!.host(1);
    addBanks(h1, false);

    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=256M', 'files']);
    const w = await h1.docker(
      ['run', '--rm', '--volume-driver', 'ferry', '-v', 'files:/data', TEST_IMAGE, 'sh', '-c',
        `mkdir -p /data/a/b && dd if=/dev/urandom of=/data/a/big bs=1M count=24 2>/dev/null && for i in $(seq 1 200); do echo "line $i" > /data/a/b/f$i; done && ln -s a/big /data/link && sync && ${SUMS}`],
      { timeoutMs: 180_000 },
    );
    expect(w.code, w.stderr).to.equal(0);
    sums = w.stdout.trim();
    expect(sums.split('\n')).to.have.length(201);

    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=256M', 'pgdata']);
    await startPostgres(h1, 'pg', 'pgdata');
    await psql(h1, 'pg', `create table t (id int primary key, note text); insert into t select i, md5(i::text) from generate_series(1, ${PG_ROWS}) i`);
    expect(await psql(h1, 'pg', 'select count(*) from t')).to.equal(String(PG_ROWS));

    for (const bank of ['sw', 'fl']) {
      for (const volume of ['files', 'pgdata']) {
        // With postgres running: its pre-snapshot hook CHECKPOINTs before the snapshot the backup reads.
        const c = JSON.parse(cli(h1, ['backup', 'create', volume, '--to', bank, '--json'])) as Checkpoint;
        expect(c.volume).to.equal(volume);
        made[bank][volume] = c.id;
      }
      expect(list(h1, bank).map((c) => [c.volume, c.id]).sort()).to.deep.equal(Object.entries(made[bank]).sort());
    }
    await stopBoth();
  });

  it('cluster B, with only the URLs and the key, lists, restores and runs on the same data', async function () {
    if (!made.sw.files) this.skip();
    await startBoth();
    const h2 = cluster!.host(2);
    addBanks(h2, true);
    // B never saw these volumes.
    expect((await h2.dockerOk(['volume', 'ls', '-q', '--filter', 'driver=ferry'])).trim()).to.equal('');

    for (const bank of ['sw', 'fl']) {
      expect(list(h2, bank).map((c) => [c.volume, c.id]).sort()).to.deep.equal(Object.entries(made[bank]).sort());
      cli(h2, ['backup', 'restore', bank, `files@${made[bank].files}`, '--as', `files-${bank}`]);
      const r = await h2.docker(['run', '--rm', '--volume-driver', 'ferry', '-v', `files-${bank}:/data`, TEST_IMAGE, 'sh', '-c', `${SUMS} && readlink /data/link`], { timeoutMs: 180_000 });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(`${sums}\na/big`);
    }
    // A read-only bank takes no backup.
    const refused = ferry!.cli(h2, ['backup', 'create', 'files-sw', '--to', 'sw']);
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.match(/read-only/);

    cli(h2, ['backup', 'restore', 'sw', `pgdata@${made.sw.pgdata}`, '--as', 'pg-back']);
    await startPostgres(h2, 'pg-b', 'pg-back');
    expect(await psql(h2, 'pg-b', 'select count(*) from t')).to.equal(String(PG_ROWS));
    expect(await psql(h2, 'pg-b', `select note from t where id = ${PG_ROWS}`)).to.equal(
      (await import('node:crypto')).createHash('md5').update(String(PG_ROWS)).digest('hex'),
    );
    await h2.dockerOk(['rm', '-f', 'pg-b']);
  });
});
