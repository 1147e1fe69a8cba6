import { expect } from 'chai';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterEvent } from '../../src/wire/records';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';
import { docker, dockerOk, E2E_LABEL, removeE2eLeftovers, requireDockerd, TEST_IMAGE, waitFor, E2E_DRIVER, E2E_PLUGIN_SOCKET } from '../support/docker';
import { FerryProcess, REPO_ROOT } from './ferry-process';

const [DRIVER, PLUGIN_SOCKET] = [E2E_DRIVER, E2E_PLUGIN_SOCKET];

interface LogLine {
  msg: string;
  volume?: string;
  checkpoint?: string;
  pruned?: string[];
}

/*
 * bank-policy (issue 8 items 4, 5) on a real dockerd: policies back volumes up to a file:// bank on a
 * schedule of a few seconds, retention keeps the set it should (never a manual checkpoint), a restore
 * drill whose check passes records a pass, one whose command fails records the failure with its exit
 * code and output, and no drill scratch volume is ever seen by docker volume ls or left behind.
 */
describe('end to end on a real dockerd: scheduled backups, retention, restore drills', function () {
  let dir: string;
  let ferry: FerryProcess;
  const cli = (args: string[]): string => {
    const r = ferry.cli(args);
    if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const events = (volume: string): ClusterEvent[] => (JSON.parse(cli(['volume', 'inspect', volume])) as { events: ClusterEvent[] }).events;
  const checkpoints = (volume: string): { id: string; origin: string }[] => JSON.parse(cli(['backup', 'ls', '--bank', 'offsite', volume, '--json']));
  const logLines = (): LogLine[] =>
    readFileSync(ferry.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  const count = (lines: LogLine[], msg: string, volume: string): number => lines.filter((l) => l.msg === msg && l.volume === volume).length;
  /** Drill scratch volumes seen by `docker volume ls` while the test waited (must stay empty). */
  const seenScratch = new Set<string>();
  const lookForScratch = (): void => {
    for (const v of dockerOk(['volume', 'ls', '-q']).split('\n')) if (v.startsWith('ferry-drill-')) seenScratch.add(v);
  };

  before(async function () {
    requireRootAndTools('docker', 'getfattr');
    requireDockerd(REPO_ROOT);
    dir = makeTempDir('e2e-bpol');
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ schedules: { refreshSeconds: 0.5 } }));
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

  it('backs up on schedule, prunes to the keep, drills pass and fail, and leaves no scratch volume', async function () {
    for (const v of ['bp-good', 'bp-bad']) {
      dockerOk(['volume', 'create', '-d', DRIVER, '-o', 'backend=directory', v]);
      expect(docker(['run', '--rm', '--label', E2E_LABEL, '-v', `${v}:/data`, TEST_IMAGE, 'sh', '-c', 'echo hello > /data/f && mkdir /data/d && echo x > /data/d/g']).code).to.equal(0);
    }
    mkdirSync(join(dir, 'bank'));
    cli(['bank', 'key', 'new', join(dir, 'bank.key')]);
    cli(['bank', 'add', 'offsite', `file://${join(dir, 'bank')}`, '--key-file', join(dir, 'bank.key')]);
    const manual = JSON.parse(cli(['backup', 'create', 'bp-good', '--to', 'offsite', '--json'])) as { id: string };

    // Refused before anything runs: a drill needs backups, backups need a bank this cluster has.
    const refused = ferry.cli(['policy', 'create', 'nobank', '--backup-to', 'elsewhere', '--backup-schedule', '* * * * *']);
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.match(/no bank named elsewhere/);

    cli(['policy', 'create', 'good', '--backup-to', 'offsite', '--backup-schedule', '*/3 * * * * *', '--backup-keep', '2', '--verify-every', '4s', '--verify-with', `${TEST_IMAGE} test "$(cat /data/f)" = hello && ls /data/d`]);
    cli(['policy', 'create', 'bad', '--backup-to', 'offsite', '--backup-schedule', '*/3 * * * * *', '--verify-every', '4s', '--verify-with', `${TEST_IMAGE} echo the check found nothing >&2; exit 3`]);
    const shown = JSON.parse(cli(['policy', 'inspect', 'good'])) as { policy: Record<string, unknown> };
    expect(shown.policy).to.include({ backupTo: 'offsite', backupSchedule: '*/3 * * * * *', backupKeep: '2', verifyEverySeconds: 4 });
    expect(cli(['policy', 'ls'])).to.match(/good .*offsite \*\/3 \* \* \* \* \* keep 2\s+every 4s/);
    cli(['volume', 'set', 'bp-good', 'policy=good']);
    cli(['volume', 'set', 'bp-bad', 'policy=bad']);

    // Drills: a pass for the good check, a failure with its exit code and output for the bad one.
    const drillOf = (volume: string): ClusterEvent | undefined => events(volume).find((e) => e.kind === 'restore-drill');
    await waitFor(
      'a restore drill of each volume',
      () => {
        lookForScratch();
        return drillOf('bp-good') !== undefined && drillOf('bp-bad') !== undefined;
      },
      120_000,
      300,
    );
    expect(drillOf('bp-good')!.detail).to.match(/^restore drill of bp-good passed: checkpoint \S+ of bank offsite restored into ferry-drill-[0-9a-f]{8}, .* exited 0 .*output: g$/);
    expect(drillOf('bp-bad')!.detail).to.match(/^restore drill of bp-bad FAILED: .* exited 3 .*output: the check found nothing/);

    // Enough scheduled backups that retention had to prune; then the schedules stop and runs end.
    await waitFor(
      'four scheduled backups of bp-good',
      () => {
        lookForScratch();
        return count(logLines(), 'scheduled backup taken', 'bp-good') >= 4;
      },
      120_000,
      300,
    );
    cli(['volume', 'set', 'bp-good', 'policy=']);
    cli(['volume', 'set', 'bp-bad', 'policy=']);
    await waitFor('the schedules and drills to stop, and their runs to end', () => {
      lookForScratch();
      const l = logLines();
      return ['bp-good', 'bp-bad'].every(
        (v) =>
          count(l, 'backup schedule stopped', v) === 1 &&
          count(l, 'restore drill stopped', v) === 1 &&
          count(l, 'scheduled backup started', v) === count(l, 'scheduled backup taken', v) + count(l, 'scheduled backup failed', v) &&
          count(l, 'restore drill due', v) === count(l, 'restore drill passed', v) + count(l, 'restore drill failed', v),
      );
    });

    const lines = logLines();
    const taken = lines.filter((l) => l.msg === 'scheduled backup taken' && l.volume === 'bp-good');
    const ids = taken.map((l) => l.checkpoint!).sort();
    const pruned = taken.flatMap((l) => l.pruned ?? []).sort();
    const inBank = checkpoints('bp-good');
    // keep 2: the two newest scheduled stay, with the manual one; every older scheduled one was pruned.
    expect(inBank.filter((c) => c.origin === 'schedule').map((c) => c.id).sort()).to.deep.equal(ids.slice(-2));
    expect(inBank.filter((c) => c.origin === 'manual').map((c) => c.id)).to.deep.equal([manual.id]);
    expect(pruned).to.deep.equal(ids.slice(0, -2));
    // No keep: every scheduled backup of bp-bad stays.
    const badTaken = lines.filter((l) => l.msg === 'scheduled backup taken' && l.volume === 'bp-bad').length;
    expect(checkpoints('bp-bad').length).to.equal(badTaken);

    // Scratch volumes: never listed by docker volume ls, none left in ferry or in the book.
    expect([...seenScratch]).to.deep.equal([]);
    const left = (JSON.parse(cli(['volume', 'ls', '--json'])) as { name: string }[]).map((v) => v.name).filter((n) => n.startsWith('ferry-drill-'));
    expect(left).to.deep.equal([]);
    expect((JSON.parse(readFileSync(join(ferry.dataDir, 'schedules.json'), 'utf8')) as { scratch: string[] }).scratch).to.deep.equal([]);
    expect(count(lines, 'restore drill passed', 'bp-good')).to.be.greaterThan(0);
    expect(count(lines, 'restore drill passed', 'bp-bad')).to.equal(0);
  });
});
