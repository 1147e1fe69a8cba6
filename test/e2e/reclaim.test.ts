import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removedListShape, volumeViewShape } from '../../src/wire/shapes';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, removeE2eLeftovers, requireDockerd, TEST_IMAGE, waitFor, E2E_DRIVER, E2E_PLUGIN_SOCKET } from '../support/docker';
import { FerryProcess, REPO_ROOT } from './ferry-process';

// The suites' one plugin name; a label of its own: the prune below touches only this test's volumes on the shared dockerd.
const [DRIVER, PLUGIN_SOCKET] = [E2E_DRIVER, E2E_PLUGIN_SOCKET];
const LABEL = 'ferry-e2e-reclaim';

/** Each backend the issue asks for, with the Create options it needs. */
const BACKENDS: { kind: string; opts: string[] }[] = [
  { kind: 'btrfs', opts: [] },
  { kind: 'loop', opts: ['-o', 'size=64M'] },
  { kind: 'directory', opts: [] },
];

function run(volumeArgs: string[], script: string): ReturnType<typeof docker> {
  return docker(['run', '--rm', '--label', E2E_LABEL, '--volume-driver', DRIVER, ...volumeArgs, TEST_IMAGE, 'sh', '-c', script]);
}

/**
 * `docker volume prune` of named volumes: Docker 23 and later prune only anonymous volumes unless
 * given `-a` (which older versions do not know); the label keeps it to this test's volumes. Whatever
 * the version, dockerd prunes only volumes of its own `local` driver (moby's VolumesService.Prune
 * finds them ByDriver("local")): a plugin's volumes are never pruned.
 */
function pruneArgs(): string[] {
  const major = Number(dockerOk(['version', '--format', '{{.Server.Version}}']).split('.')[0]);
  return ['volume', 'prune', '-f', ...(major >= 23 ? ['-a'] : []), '--filter', `label=${LABEL}`];
}

describe('reclaim=retain end to end on a real dockerd (rm, prune, ls --removed, undelete, expiry)', function () {
  let dir: string;
  let ferry: FerryProcess;

  before(async function () {
    requireRootAndTools('docker', 'btrfs', 'losetup', 'mkfs.ext4');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('e2e-reclaim');
    // Upkeep every second, so that a short retain time expires within the test.
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ usageIntervalSeconds: 1 }));
    ferry = new FerryProcess(dir, PLUGIN_SOCKET, ['-c', config]);
    await ferry.start();
    removeE2eLeftovers(DRIVER);
  });
  after(async function () {
    if (ferry) {
      removeE2eLeftovers(DRIVER);
      await ferry.kill('SIGTERM');
    }
    if (dir) cleanupDir(dir);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) {
      console.log(`--- ferry log tail (${ferry.logFile}) ---\n${readFileSync(ferry.logFile, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
  });

  const removed = () => {
    const r = ferry.cli(['volume', 'ls', '--removed', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    return removedListShape.parse(JSON.parse(r.stdout || '[]'));
  };
  /** Whatever is on disk under a name of removal `id` (dataset, image, snapshot), in the backend's pool. */
  const onDisk = (kind: string, id: number): string[] =>
    spawnSync('find', [join(ferry.dataDir, kind), '-maxdepth', '4', '-name', `_removed.${id}*`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  const dockerVolumes = (): string[] => dockerOk(['volume', 'ls', '--filter', `driver=${DRIVER}`, '--format', '{{.Name}}']).split('\n');

  for (const b of BACKENDS) {
    it(`${b.kind}: prune leaves it (dockerd prunes only its local driver); rm keeps the data; ls --removed shows it; the name is free again; undelete refuses it and brings the data back --as another`, function () {
      const name = `keep-${b.kind}`;
      dockerOk(['volume', 'create', '-d', DRIVER, '--label', LABEL, '-o', `backend=${b.kind}`, ...b.opts, '-o', 'reclaim=retain', name]);
      expect(run(['-v', `${name}:/data`], 'echo precious > /data/f && seq 1 5000 > /data/n').code).to.equal(0);
      const prune = docker(pruneArgs());
      expect(prune.code, prune.stderr).to.equal(0);
      expect(prune.stdout, 'dockerd never asks a plugin to remove a volume in a prune').not.to.include(name);
      expect(dockerVolumes()).to.include(name);
      expect(removed().map((x) => x.name)).not.to.include(name);
      dockerOk(['volume', 'rm', name]);
      expect(dockerVolumes()).not.to.include(name);

      const [r] = removed().filter((x) => x.name === name);
      expect(r, 'ferry volume ls --removed lists it').to.not.equal(undefined);
      expect(r).to.include({ node: 'e2e', backend: b.kind, state: 'retained', dataset: `_removed.${r.id}` });
      expect(Date.parse(r.expiresAt) - Date.parse(r.removedAt), 'the default: 7 days').to.equal(7 * 86_400_000);
      expect(onDisk(b.kind, r.id).length, 'the retained data is in the pool').to.be.greaterThan(0);
      const table = ferry.cli(['volume', 'ls', '--removed']);
      expect(table.stdout.split('\n')[0]).to.match(/^NAME\s+ID\s+REMOVED AT\s+EXPIRES AT\s+HOST\s+SIZE\s+STATE$/);
      expect(table.stdout).to.match(new RegExp(`^${name}\\s+${r.id}\\s.*\\se2e\\s.*retained$`, 'm'));

      // A new volume of the same name, meanwhile: an empty one.
      dockerOk(['volume', 'create', '-d', DRIVER, '--label', LABEL, '-o', `backend=${b.kind}`, ...b.opts, name]);
      expect(run(['-v', `${name}:/data`], 'test -e /data/f && echo old || echo empty').stdout).to.equal('empty');
      const taken = ferry.cli(['volume', 'undelete', name]);
      expect(taken.code, 'a conflict').to.equal(4);
      expect(taken.stderr).to.match(new RegExp(`a volume named ${name} exists again .*ferry volume undelete ${name} --as NEW`));

      const back = ferry.cli(['volume', 'undelete', name, '--as', `${name}-back`, '--json']);
      expect(back.code, back.stderr).to.equal(0);
      expect(volumeViewShape.parse(JSON.parse(back.stdout))).to.include({ name: `${name}-back`, backend: b.kind, state: 'ready' });
      expect(dockerVolumes()).to.include(`${name}-back`);
      const read = run(['-v', `${name}-back:/data`], 'cat /data/f && wc -l < /data/n');
      expect(read.code, read.stderr).to.equal(0);
      expect(read.stdout.split('\n').map((l) => l.trim())).to.deep.equal(['precious', '5000']);
      expect(removed().map((x) => x.id), 'undeleted: no longer listed').not.to.include(r.id);
      expect(onDisk(b.kind, r.id), 'its retained copy is gone').to.deep.equal([]);
      dockerOk(['volume', 'rm', name, `${name}-back`]);
    });

    it(`${b.kind}: docker volume rm keeps it for its retain time; then upkeep destroys it and it is gone from the pool`, async function () {
      const name = `brief-${b.kind}`;
      dockerOk(['volume', 'create', '-d', DRIVER, '--label', LABEL, '-o', `backend=${b.kind}`, ...b.opts, '-o', 'reclaim=retain', '-o', 'retain-removed=3s', name]);
      expect(run(['-v', `${name}:/data`], 'echo soon-gone > /data/f').code).to.equal(0);
      dockerOk(['volume', 'rm', name]);
      const [r] = removed().filter((x) => x.name === name);
      expect(r?.state).to.equal('retained');
      expect(onDisk(b.kind, r.id).length).to.be.greaterThan(0);
      await waitFor(`retained ${name} to expire`, () => !removed().some((x) => x.id === r.id), 60_000, 250);
      expect(onDisk(b.kind, r.id)).to.deep.equal([]);
      const gone = ferry.cli(['volume', 'undelete', name]);
      expect(gone.code).to.equal(3);
      expect(gone.stderr).to.match(/no retained data of a removed volume .*ferry volume ls --removed/);
    });
  }

  it('a volume without reclaim=retain is deleted as before; ferry volume rm of a retained one says where its data is kept', function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '--label', LABEL, 'plain']);
    const plain = ferry.cli(['volume', 'rm', 'plain']);
    expect([plain.code, plain.stderr]).to.deep.equal([0, '']);
    expect(removed().map((x) => x.name)).not.to.include('plain');
    // dockerd still lists "plain" under this driver (it was removed behind dockerd's back): forget it
    // now, while ferry answers, or every later docker volume ls waits for this test's dead socket.
    // dockerd asks ferry, hears "no such volume" and drops its record either way; whether its rm then
    // exits 0 or says "no such volume" depends on dockerd's cache, so both are fine here, nothing else.
    const forget = docker(['volume', 'rm', 'plain']);
    expect(forget.code === 0 || /no such volume/.test(forget.stderr), forget.stderr).to.equal(true);
    expect(dockerOk(['volume', 'ls', '-q', '--filter', `driver=${DRIVER}`]).split('\n')).not.to.include('plain');
    expect(ferry.cli(['volume', 'create', '-o', 'reclaim=retain', 'told']).code).to.equal(0);
    const told = ferry.cli(['volume', 'rm', 'told']);
    expect(told.code, told.stderr).to.equal(0);
    expect(told.stderr).to.match(/^ferry: the data of told is kept on e2e until \S+ \(reclaim=retain\): ferry volume undelete told brings it back\n$/);
  });
});
