import { Option, type Command } from 'commander';
import { FerryError } from '../errors';
import { formatDuration, parseDuration } from '../volume/duration';
import { formatSize, parseSize } from '../volume/size';
import type { PolicyChanges, PolicySpec } from '../wire/control-client';
import type { PolicyRecord, VolumeView } from '../wire/records';
import { apiCall } from './client';
import { table } from './format';

/** The flags of `ferry policy create|update`, as commander hands them (strings; `none` clears a field on update). */
export interface PolicyFlags {
  schedule?: string;
  keep?: string;
  replicateTo?: string;
  replicas?: string;
  rpo?: string;
  bandwidth?: string;
  failover?: string;
  reclaim?: string;
  retainRemoved?: string;
  // bank-policy (issue 8)
  backupTo?: string;
  backupSchedule?: string;
  backupKeep?: string;
  verifyEvery?: string;
  verifyWith?: string;
}

/** What a flag that takes `none` means: null for none, else the value read by `read`. */
function orNone<T>(value: string, read: (v: string) => T): T | null {
  return value.trim().toLowerCase() === 'none' ? null : read(value);
}

function count(value: string, what: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new FerryError('INVALID_OPTION', `${what} must be a whole number of at least 1, got ${JSON.stringify(value)}`);
  return Number(value);
}

function hosts(value: string): string[] {
  return value
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new FerryError('INVALID_OPTION', `${what} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/**
 * The changes the given flags ask for (pure): units read here (`--rpo 30s`, `--bandwidth 50M`,
 * `--retain-removed 7d`), `none` clears a field; flags not given are absent. Control checks the whole.
 */
export function policyChangesFromFlags(f: PolicyFlags): PolicyChanges {
  const c: PolicyChanges = {};
  if (f.schedule !== undefined) c.schedule = orNone(f.schedule, (v) => v.trim());
  if (f.keep !== undefined) c.keep = orNone(f.keep, (v) => v.trim());
  if (f.replicateTo !== undefined) c.replicateTo = orNone(f.replicateTo, hosts) ?? [];
  if (f.replicas !== undefined) c.replicas = orNone(f.replicas, (v) => count(v, '--replicas'));
  if (f.rpo !== undefined) c.rpoSeconds = orNone(f.rpo, (v) => parseDuration(v, 'rpo'));
  if (f.bandwidth !== undefined) c.bandwidthBytes = orNone(f.bandwidth, (v) => parseSize(v, 'bandwidth'));
  if (f.failover !== undefined) c.failover = oneOf(f.failover, ['auto', 'manual'] as const, '--failover');
  if (f.reclaim !== undefined) c.reclaim = oneOf(f.reclaim, ['delete', 'retain'] as const, '--reclaim');
  if (f.retainRemoved !== undefined) c.retainRemovedSeconds = orNone(f.retainRemoved, (v) => parseDuration(v, 'retain-removed'));
  if (f.backupTo !== undefined) c.backupTo = orNone(f.backupTo, (v) => v.trim());
  if (f.backupSchedule !== undefined) c.backupSchedule = orNone(f.backupSchedule, (v) => v.trim());
  if (f.backupKeep !== undefined) c.backupKeep = orNone(f.backupKeep, (v) => v.trim());
  if (f.verifyEvery !== undefined) c.verifyEverySeconds = orNone(f.verifyEvery, (v) => parseDuration(v, 'verify-every'));
  if (f.verifyWith !== undefined) c.verifyWith = orNone(f.verifyWith, (v) => v.trim());
  return c;
}

/** A whole new policy from `ferry policy create NAME` and its flags (pure): unset fields get their defaults. */
export function policySpecFromFlags(name: string, f: PolicyFlags): Required<PolicySpec> {
  return {
    name,
    schedule: null,
    keep: null,
    replicateTo: [],
    replicas: null,
    rpoSeconds: null,
    bandwidthBytes: null,
    failover: 'manual',
    reclaim: 'delete',
    retainRemovedSeconds: null,
    backupTo: null,
    backupSchedule: null,
    backupKeep: null,
    verifyEverySeconds: null,
    verifyWith: null,
    ...policyChangesFromFlags(f),
  };
}

/** `ferry policy ls` as a table. */
export function policyTable(policies: readonly PolicyRecord[]): string {
  return table(
    ['NAME', 'SCHEDULE', 'KEEP', 'REPLICATE', 'RPO', 'BANDWIDTH', 'FAILOVER', 'RECLAIM', 'BACKUP', 'DRILL'],
    policies.map((p) => [
      p.name,
      p.schedule ?? '-',
      p.keep ?? '-',
      p.replicateTo.length ? p.replicateTo.join(',') : p.replicas !== null ? `${p.replicas} host${p.replicas > 1 ? 's' : ''}` : '-',
      p.rpoSeconds === null ? '-' : formatDuration(p.rpoSeconds),
      p.bandwidthBytes === null ? '-' : `${formatSize(p.bandwidthBytes)}/s`,
      p.failover,
      p.reclaim + (p.retainRemovedSeconds !== null ? ` ${formatDuration(p.retainRemovedSeconds)}` : ''),
      // bank-policy: "BANK CRON keep SPEC", and the drill's interval.
      p.backupTo ? `${p.backupTo} ${p.backupSchedule}${p.backupKeep ? ` keep ${p.backupKeep}` : ''}` : '-',
      p.verifyEverySeconds ? `every ${formatDuration(p.verifyEverySeconds)}` : '-',
    ]),
  );
}

/** `ferry volume set` arguments `KEY=VALUE` (`KEY=` removes it) into changes (pure). */
export function optionChangesFromArgs(args: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new FerryError('INVALID_OPTION', `${JSON.stringify(a)} must look like KEY=VALUE (KEY= removes it), e.g. policy=nightly`);
    const value = a.slice(eq + 1);
    out[a.slice(0, eq)] = value === '' ? null : value;
  }
  return out;
}

/** Adds the flags that create and update share. */
function withPolicyFlags(c: Command, update: boolean): Command {
  const clear = update ? ' (none clears it)' : '';
  return c
    .option('--schedule <cron>', `when to snapshot, a cron expression in UTC (5 fields, or 6 with seconds first)${clear}`)
    .option('--keep <spec>', `which scheduled snapshots to keep: "48h 14d 8w 12m" (newest per hour, day, week, month) or a count "10"${clear}`)
    .option('--replicate-to <hosts>', `keep standbys on these hosts (comma-separated)${clear}`)
    .option('--replicas <n>', `keep n standbys on hosts control chooses${clear}`)
    .option('--rpo <duration>', `longest acceptable standby lag, e.g. 30s${clear}`)
    .option('--bandwidth <size>', `cap replication at this many bytes per second, e.g. 50M${clear}`)
    .addOption(new Option('--failover <mode>', 'when the primary host is lost: promote a standby by itself (auto) or by hand (manual)').choices(['auto', 'manual']))
    .addOption(new Option('--reclaim <mode>', "what docker volume rm does with the data: delete it, or retain it for a while").choices(['delete', 'retain']))
    .option('--retain-removed <duration>', `with --reclaim retain, how long a removed volume's data is kept, e.g. 7d${clear}`)
    .option('--backup-to <bank>', `back the volumes up to this bank (ferry bank ls) on --backup-schedule${clear}`)
    .option('--backup-schedule <cron>', `when to back up, a cron expression in UTC${clear}`)
    .option('--backup-keep <spec>', `which scheduled checkpoints to keep in the bank: "7d 4w 12m" or a count "10"${clear}`)
    .option('--verify-every <duration>', `restore drill: restore the newest checkpoint this often, e.g. 7d${clear}`)
    .option('--verify-with <image-command>', `restore drill: "IMAGE COMMAND" run as sh -c COMMAND with the restored data at /data${clear}`)
    .option('--json', 'print the policy as JSON (README: JSON shapes)');
}

/** Prints a result on stdout; nothing for an empty one. */
function print(text: string): void {
  if (text) console.log(text);
}

/** Adds `ferry policy create|update|ls|inspect|rm` to the program and `set` to `ferry volume`. */
export function policyCommands(program: Command, volume: Command, api: () => string): void {
  const policy = program.command('policy').description('protection policies: schedules with retention, replication, failover, reclaim');
  withPolicyFlags(policy.command('create <name>').description('create a policy (volumes get it with -o policy=NAME or ferry volume set)'), false).action(
    async (name: string, f: PolicyFlags & { json?: boolean }) => {
      const { policy: p } = await apiCall<{ policy: PolicyRecord }>(api(), 'POST', '/v1/policies', policySpecFromFlags(name, f));
      console.log(f.json ? JSON.stringify(p, null, 2) : p.name);
    },
  );
  withPolicyFlags(policy.command('update <name>').description('change some settings of a policy; volumes that have it follow'), true).action(
    async (name: string, f: PolicyFlags & { json?: boolean }) => {
      const changes = policyChangesFromFlags(f);
      if (Object.keys(changes).length === 0) throw new FerryError('INVALID_OPTION', 'say what to change: --schedule, --keep, --replicate-to, --replicas, --rpo, --bandwidth, --failover, --reclaim, --retain-removed, --backup-to, --backup-schedule, --backup-keep, --verify-every or --verify-with');
      const { policy: p } = await apiCall<{ policy: PolicyRecord }>(api(), 'PATCH', `/v1/policies/${encodeURIComponent(name)}`, changes);
      console.log(f.json ? JSON.stringify(p, null, 2) : p.name);
    },
  );
  policy
    .command('ls')
    .description('list policies')
    .option('--json', 'print JSON (an array of policies; README: JSON shapes)')
    .option('-q, --quiet', 'print names only')
    .action(async (o: { json?: boolean; quiet?: boolean }) => {
      const { policies } = await apiCall<{ policies: PolicyRecord[] }>(api(), 'GET', '/v1/policies');
      print(o.json ? JSON.stringify(policies, null, 2) : o.quiet ? policies.map((p) => p.name).join('\n') : policies.length ? policyTable(policies) : '');
    });
  policy
    .command('inspect <name>')
    .description('show a policy and the volumes that have it (JSON)')
    .option('--json', 'print JSON (the default)')
    .action(async (name: string) => {
      console.log(JSON.stringify(await apiCall(api(), 'GET', `/v1/policies/${encodeURIComponent(name)}`), null, 2));
    });
  policy
    .command('rm <name>')
    .description('remove a policy (refused while volumes have it)')
    .action(async (name: string) => {
      await apiCall(api(), 'DELETE', `/v1/policies/${encodeURIComponent(name)}`);
      console.log(name);
    });
  volume
    .command('set <name> <key=value...>')
    .description('change options of a volume: policy=NAME (policy= for none), replica=keep|drop, reclaim=retain|delete, retain-removed=DURATION')
    .option('--json', 'print the volume as JSON')
    .action(async (name: string, pairs: string[], o: { json?: boolean }) => {
      const { volume: v } = await apiCall<{ volume: VolumeView }>(api(), 'PATCH', `/v1/volumes/${encodeURIComponent(name)}/options`, optionChangesFromArgs(pairs));
      console.log(o.json ? JSON.stringify(v, null, 2) : v.name);
    });
}
