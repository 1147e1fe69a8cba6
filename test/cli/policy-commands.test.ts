import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { optionChangesFromArgs, policyChangesFromFlags, policySpecFromFlags, policyTable } from '../../src/cli/policy-commands';
import { requireSnapshots } from '../../src/agent/backends/backend';
import { LocalControl } from '../../src/control/control';
import { isFerryError } from '../../src/errors';
import type { Ferry } from '../../src/serve';
import { policyInspectShape, policyListShape, policyShape, volumeViewShape } from '../../src/wire/shapes';
import { waitFor } from '../support/docker';
import { startTestFerry, testConfig } from '../support/ferry';
import { cleanupDir, makeTempDir } from '../support/host';
import { unixRequest } from '../support/unix-http';

/* `ferry policy ...` and `ferry volume set`: the flags (pure), then the real CLI against a real `ferry serve`. */

const FERRY = resolve(__dirname, '../../../bin/ferry');

describe('CLI: policy flags (pure)', () => {
  it('a new policy gets defaults, units read from the flags', () => {
    expect(
      policySpecFromFlags('gold', { schedule: '0 3 * * *', keep: '48h 14d 8w 12m', replicateTo: 'h2, h3', rpo: '30s', bandwidth: '50M', failover: 'auto', reclaim: 'retain', retainRemoved: '7d' }),
    ).to.deep.equal({
      name: 'gold',
      schedule: '0 3 * * *',
      keep: '48h 14d 8w 12m',
      replicateTo: ['h2', 'h3'],
      replicas: null,
      rpoSeconds: 30,
      bandwidthBytes: 50 * 2 ** 20,
      failover: 'auto',
      reclaim: 'retain',
      retainRemovedSeconds: 7 * 86400,
      backupTo: null,
      backupSchedule: null,
      backupKeep: null,
      verifyEverySeconds: null,
      verifyWith: null,
    });
    expect(policySpecFromFlags('bare', {})).to.include({ schedule: null, keep: null, failover: 'manual', reclaim: 'delete' });
  });

  it('an update carries only the flags given; none clears a field', () => {
    expect(policyChangesFromFlags({ keep: '10', rpo: 'none', replicateTo: 'none', replicas: '2' })).to.deep.equal({ keep: '10', rpoSeconds: null, replicateTo: [], replicas: 2 });
    expect(policyChangesFromFlags({})).to.deep.equal({});
  });

  const bad: [Parameters<typeof policyChangesFromFlags>[0], RegExp][] = [
    [{ rpo: 'soon' }, /invalid rpo "soon"/],
    [{ bandwidth: 'fast' }, /invalid bandwidth "fast"/],
    [{ replicas: '0' }, /--replicas must be a whole number of at least 1/],
    [{ failover: 'maybe' }, /--failover must be one of auto, manual/],
    [{ retainRemoved: '1mo' }, /invalid retain-removed/],
  ];
  for (const [flags, message] of bad) {
    it(`refuses ${JSON.stringify(flags)}`, () => {
      expect(() => policyChangesFromFlags(flags))
        .to.throw(message)
        .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
    });
  }

  it('volume set takes KEY=VALUE, KEY= removes', () => {
    expect(optionChangesFromArgs(['policy=nightly', 'replica='])).to.deep.equal({ policy: 'nightly', replica: null });
    expect(() => optionChangesFromArgs(['policy'])).to.throw(/must look like KEY=VALUE/);
  });

  it('lists policies as a table', () => {
    const p = { ...policySpecFromFlags('gold', { schedule: '0 3 * * *', keep: '10', replicas: '2', rpo: '90s', bandwidth: '50M' }), createdAt: '', updatedAt: '' };
    const [header, row] = policyTable([p]).split('\n');
    expect(header).to.match(/^NAME\s+SCHEDULE\s+KEEP\s+REPLICATE\s+RPO\s+BANDWIDTH\s+FAILOVER\s+RECLAIM\s+BACKUP\s+DRILL$/);
    expect(row.split(/\s{2,}/)).to.deep.equal(['gold', '0 3 * * *', '10', '2 hosts', '1m30s', '50.0 MiB/s', 'manual', 'delete', '-', '-']);
    const b = {
      ...policySpecFromFlags('safe', { backupTo: 'offsite', backupSchedule: '0 2 * * *', backupKeep: '7d 4w', verifyEvery: '7d', verifyWith: 'busybox true' }),
      createdAt: '',
      updatedAt: '',
    };
    expect(policyTable([b]).split('\n')[1].split(/\s{2,}/).slice(-2)).to.deep.equal(['offsite 0 2 * * * keep 7d 4w', 'every 1w']);
  });

  it('bank-policy: backup and drill flags, none clears them', () => {
    expect(policySpecFromFlags('safe', { backupTo: 'offsite', backupSchedule: '0 2 * * *', backupKeep: '7d 4w 12m', verifyEvery: '7d', verifyWith: ' busybox test -s /data/f ' })).to.include({
      backupTo: 'offsite',
      backupSchedule: '0 2 * * *',
      backupKeep: '7d 4w 12m',
      verifyEverySeconds: 7 * 86400,
      verifyWith: 'busybox test -s /data/f',
    });
    expect(policyChangesFromFlags({ backupTo: 'none', verifyEvery: 'none', backupKeep: '10' })).to.deep.equal({ backupTo: null, verifyEverySeconds: null, backupKeep: '10' });
    expect(() => policyChangesFromFlags({ verifyEvery: 'weekly' })).to.throw(/invalid verify-every "weekly"/);
  });
});

describe('CLI: policies end to end (ferry serve, the ferry command, the plugin socket)', function () {
  this.timeout(90_000);
  let dir: string;
  let ferry: Ferry;
  let api: string;
  let pluginSocket: string;

  /** Runs the real `ferry` command against this test's ferry serve. */
  function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((res, rej) => {
      const c = spawn(FERRY, ['--api-socket', api, ...args]);
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      c.on('error', rej);
      c.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
    });
  }
  async function json<T extends z.ZodType>(shape: T, ...args: string[]): Promise<z.infer<T>> {
    const r = await cli(...args);
    expect(r.code, r.stderr).to.equal(0);
    return shape.parse(JSON.parse(r.stdout));
  }
  const scheduled = async (policy: string): Promise<string[]> =>
    (await requireSnapshots(ferry.agent.backends.backendFor('directory'), 'db', 'list').listSnapshots('db')).filter((n) => n.startsWith(`_schedule.${policy}.`));

  before(async () => {
    dir = makeTempDir('policy-cli');
    const config = testConfig(dir, { defaults: { backend: 'directory' }, schedules: { refreshSeconds: 0.3 }, profiles: { gold: { policy: 'fast' } } });
    api = config.apiSocket;
    pluginSocket = config.pluginSocket;
    ferry = await startTestFerry(config);
  });
  after(async () => {
    await ferry?.stop();
    cleanupDir(dir);
  });

  it('creates, lists and inspects a policy; a Create through Docker\'s protocol names it; snapshots every second, kept to 3', async () => {
    const made = await json(policyShape, 'policy', 'create', 'fast', '--schedule', '* * * * * *', '--keep', '3', '--json');
    expect(made).to.include({ name: 'fast', schedule: '* * * * * *', keep: '3', failover: 'manual', reclaim: 'delete' });
    expect((await json(policyListShape, 'policy', 'ls', '--json')).map((p) => p.name)).to.deep.equal(['fast']);
    const ls = await cli('policy', 'ls');
    expect(ls.stdout).to.match(/^NAME\s+SCHEDULE/).and.match(/\nfast\s+\* \* \* \* \* \*\s+3\s/);

    // What Compose's driver_opts: {policy: fast} sends.
    const created = await unixRequest(pluginSocket, '/VolumeDriver.Create', { Name: 'db', Opts: { policy: 'fast' } });
    expect(created.json).to.deep.equal({ Err: '' });
    const got = await unixRequest(pluginSocket, '/VolumeDriver.Get', { Name: 'db' });
    expect((got.json.Volume as { Status: Record<string, unknown> }).Status).to.include({ policy: 'fast' });
    expect(await json(policyInspectShape, 'policy', 'inspect', 'fast')).to.deep.include({ volumes: ['db'] });

    const seen = new Set<string>();
    await waitFor('four scheduled snapshots of db', async () => {
      for (const n of await scheduled('fast')) seen.add(n);
      return seen.size >= 4;
    }, 30_000, 100);
    await waitFor('at most 3 kept', async () => (await scheduled('fast')).length <= 3, 10_000, 50);
    const registry = (await new LocalControl(ferry.db!).snapshotsOf('db')).filter((s) => s.origin === 'schedule');
    expect(registry.length).to.be.within(3, 4);
    expect(registry.every((s) => s.policy === 'fast')).to.equal(true);
  });

  it('refuses a Create naming a policy that does not exist, and rm of a policy in use, naming the volumes', async () => {
    const r = await unixRequest(pluginSocket, '/VolumeDriver.Create', { Name: 'other', Opts: { policy: 'nightly' } });
    expect(r.json.Err).to.match(/policy nightly does not exist: the policies are fast/);
    const rm = await cli('policy', 'rm', 'fast');
    expect(rm.code).to.equal(4);
    expect(rm.stderr).to.match(/policy fast is used by volume db: give it another policy first \(ferry volume set VOLUME policy=OTHER/);
    const bad = await cli('policy', 'create', 'x', '--schedule', '61 * * * *');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/invalid schedule "61 \* \* \* \*"/);
  });

  it('volume set gives and takes a policy; a profile may name one; the schedule stops with it', async () => {
    const cleared = await json(volumeViewShape, 'volume', 'set', 'db', 'policy=', '--json');
    expect(cleared.options).to.not.have.property('policy');
    await waitFor('the schedule of db to stop', () => ferry.agent.scheduler.scheduled().length === 0, 10_000, 50);
    const rm = await cli('policy', 'rm', 'fast');
    expect(rm.code, rm.stderr).to.equal(0);
    // The same routes the CLI uses, straight on the API socket (each CLI process costs a second here).
    const missing = await unixRequest(api, '/v1/volumes/db/options', { policy: 'fast' }, 'PATCH');
    expect(missing.status).to.equal(404);
    expect(JSON.stringify(missing.json)).to.match(/policy fast does not exist/);
    const spec = policySpecFromFlags('fast', { schedule: '0 3 * * *', keep: '48h 14d' });
    expect((await unixRequest(api, '/v1/policies', spec)).status).to.equal(201);
    expect((await unixRequest(api, '/v1/volumes', { name: 'web', options: { profile: 'gold' } })).status).to.equal(201);
    expect(policyInspectShape.parse((await unixRequest(api, '/v1/policies/fast', undefined, 'GET')).json).volumes).to.deep.equal(['web']);
    await waitFor('the schedule of web to start', () => ferry.agent.scheduler.scheduled().some((j) => j.volume === 'web'), 10_000, 50);
    const upd = await json(policyShape, 'policy', 'update', 'fast', '--keep', '10', '--json');
    expect(upd).to.include({ keep: '10', schedule: '0 3 * * *' });
  });
});
