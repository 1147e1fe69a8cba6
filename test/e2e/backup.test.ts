import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, removeE2eLeftovers, requireDockerd, TEST_IMAGE, E2E_DRIVER, E2E_PLUGIN_SOCKET } from '../support/docker';
import { bankListShape, checkpointListShape, checkpointShape } from '../../src/wire/shapes';
import { FerryProcess, REPO_ROOT } from './ferry-process';

const [DRIVER, PLUGIN_SOCKET] = [E2E_DRIVER, E2E_PLUGIN_SOCKET];
const MiB = 1024 * 1024;
/** Every file under /data with its sha256, sorted: what a container reads. */
const SUMS = 'cd /data && find . -type f | sort | xargs sha256sum';

function run(volume: string, script: string): ReturnType<typeof docker> {
  return docker(['run', '--rm', '--label', E2E_LABEL, '--volume-driver', DRIVER, '-v', `${volume}:/data`, TEST_IMAGE, 'sh', '-c', script], { timeoutMs: 120_000 });
}
function runOk(volume: string, script: string): string {
  const r = run(volume, script);
  expect(r.code, r.stderr).to.equal(0);
  return r.stdout;
}

/*
 * bank-ops (issue 8) on a real dockerd, as a user types it: a container writes into a ferry volume;
 * ferry backup create to a file:// bank; backup ls; restore --as into btrfs and into loop xfs, where
 * docker run reads the same sha256s; an incremental after a 1% change; --path --into; a wrong key and
 * a read-only bank refused.
 */
describe('end to end on a real dockerd: backups to a bank', function () {
  let dir: string;
  let ferry: FerryProcess;
  let bankUrl: string;
  let keyFile: string;
  let sums: string;
  let first: ReturnType<typeof checkpointShape.parse>;
  const cli = (args: string[]): ReturnType<FerryProcess['cli']> => ferry.cli(args);
  const ok = (args: string[]): string => {
    const r = cli(args);
    expect(r.code, `ferry ${args.join(' ')}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  };

  before(async function () {
    requireRootAndTools('docker', 'btrfs', 'mkfs.xfs', 'getfattr');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('e2e-backup');
    ferry = new FerryProcess(dir, PLUGIN_SOCKET);
    await ferry.start();
    removeE2eLeftovers(DRIVER);
    mkdirSync(join(dir, 'bank'));
    bankUrl = `file://${join(dir, 'bank')}`;
    keyFile = join(dir, 'bank.key');
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
      console.log(`--- ferry log tail (${ferry.logFile}) ---\n${readFileSync(ferry.logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
    }
  });

  it('bank key new writes a 0600 key and never overwrites one; bank add refuses a wrong key, recording nothing', function () {
    ok(['bank', 'key', 'new', keyFile]);
    expect(statSync(keyFile).size).to.equal(32);
    expect(statSync(keyFile).mode & 0o777).to.equal(0o600);
    expect(cli(['bank', 'key', 'new', keyFile]).code).to.equal(2);
    ok(['bank', 'add', 'main', bankUrl, '--key-file', keyFile]);
    const wrongKey = join(dir, 'wrong.key');
    ok(['bank', 'key', 'new', wrongKey]);
    const wrong = cli(['bank', 'add', 'stolen', bankUrl, '--key-file', wrongKey]);
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.match(/key/i);
    ok(['bank', 'add', 'mirror', bankUrl, '--key-file', keyFile, '--read-only']);
    const banks = bankListShape.parse(JSON.parse(ok(['bank', 'ls', '--json'])));
    expect(banks.map((b) => [b.name, b.readOnly])).to.deep.equal([
      ['main', false],
      ['mirror', true],
    ]);
  });

  it('a container writes; ferry backup create --json; backup ls shows it', function () {
    dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'backend=btrfs', 'app']);
    // 64 MiB of random files, a few small ones, a symlink and an odd mode.
    runOk('app', 'mkdir -p /data/d/e && for i in $(seq 1 64); do head -c 1048576 /dev/urandom > /data/d/f$i; done && echo hello > /data/d/e/small && chmod 600 /data/d/e/small && ln -s d/e/small /data/link && sync');
    sums = runOk('app', SUMS);
    expect(sums.split('\n').filter(Boolean)).to.have.length(65);
    first = checkpointShape.parse(JSON.parse(ok(['backup', 'create', 'app', '--to', 'main', '--json'])));
    expect(first).to.include({ bank: 'main', volume: 'app', backend: 'btrfs', origin: 'manual', files: 65 });
    expect(first.addedBytes).to.be.greaterThan(64 * MiB);
    const listed = checkpointListShape.parse(JSON.parse(ok(['backup', 'ls', '--bank', 'main', 'app', '--json'])));
    expect(listed.map((c) => c.id)).to.deep.equal([first.id]);
    // The read-only twin sees the same checkpoint (the bank describes itself).
    expect(ok(['backup', 'ls', '--bank', 'mirror', '-q'])).to.equal(`app@${first.id}\n`);
  });

  for (const [as, opts] of [
    ['app-btrfs', []],
    ['app-xfs', ['-o', 'backend=loop', '-o', 'size=400M', '-o', 'fs=xfs']],
  ] as const) {
    it(`restore --as ${as}: docker run reads the same sha256s`, function () {
      ok(['backup', 'restore', 'mirror', 'app@latest', '--as', as, ...opts]);
      expect(runOk(as, SUMS)).to.equal(sums);
      expect(runOk(as, 'stat -c %a /data/d/e/small && readlink /data/link').trim()).to.equal('600\nd/e/small');
    });
  }

  it('a second backup after a 1% change adds about 1%', function () {
    // 640 KiB (1% of 64 MiB) rewritten inside one file.
    runOk('app', 'dd if=/dev/urandom of=/data/d/f30 bs=64k count=10 seek=3 conv=notrunc 2>/dev/null && sync');
    const second = checkpointShape.parse(JSON.parse(ok(['backup', 'create', 'app', '--to', 'main', '--json'])));
    expect(second.parent).to.equal(first.id);
    const share = second.addedBytes / first.addedBytes;
    console.log(`      incremental after a 1% change added ${(100 * share).toFixed(1)}% (${second.addedBytes} of ${first.addedBytes} bytes)`);
    // The changed 640 KiB, the chunks around it (about 1 MiB each) and the tree.
    expect(share).to.be.lessThan(0.08);
    expect(share).to.be.greaterThan(0.009);
  });

  it('--path --into writes one directory of a checkpoint into a host directory', function () {
    const into = join(dir, 'out');
    ok(['backup', 'restore', 'main', `app@${first.id}`, '--path', 'd/e', '--into', into]);
    expect(readFileSync(join(into, 'd', 'e', 'small'), 'utf8')).to.equal('hello\n');
    expect(existsSync(join(into, 'd', 'f1'))).to.equal(false);
  });

  it('a read-only bank refuses a backup (BANK_READ_ONLY, exit 4); events name what happened', function () {
    const r = cli(['backup', 'create', 'app', '--to', 'mirror']);
    expect(r.code).to.equal(4);
    expect(r.stderr).to.match(/added read-only/);
    const events = (JSON.parse(ok(['volume', 'inspect', 'app'])) as { events: { kind: string }[] }).events.map((e) => e.kind);
    expect(events).to.include.members(['backup-created', 'backup-failed']);
    expect(JSON.parse(ok(['volume', 'inspect', 'app-xfs'])).events.map((e: { kind: string }) => e.kind)).to.include('restore-done');
  });

  it('bank gc and bank check --read-data 100% on the bank the CLI wrote', function () {
    ok(['backup', 'rm', 'main', `app@${first.id}`]);
    expect(ok(['bank', 'gc', 'main'])).to.match(/^bank main: \d+ chunks removed/);
    const check = JSON.parse(ok(['bank', 'check', 'main', '--read-data', '100%', '--json'])) as { checkpoints: number; problems: unknown[] };
    expect(check).to.deep.include({ checkpoints: 1, problems: [] });
    expect(ok(['bank', 'check', 'mirror'])).to.match(/no problems/);
  });
});
