import type { Command } from 'commander';
import { FerryError } from '../errors';
import { formatSize } from '../volume/size';
import type { SnapshotRecord } from '../wire/records';
import { apiCall } from './client';
import { table } from './format';

/** `ferry snapshot ls`'s table: one line per snapshot, oldest first per volume. */
export function snapshotTable(snapshots: SnapshotRecord[]): string {
  return table(
    ['VOLUME', 'NAME', 'CREATED', 'HOSTS', 'SIZE', 'ORIGIN'],
    snapshots.map((s) => [
      s.volume,
      s.name,
      s.createdAt.replace(/\.\d{3}Z$/, 'Z'),
      s.hosts.join(','),
      s.sizeBytes === null ? '-' : formatSize(s.sizeBytes),
      s.origin + (s.policy ? ` (${s.policy})` : '') + (s.group ? ` [${s.group}]` : ''),
    ]),
  );
}

/**
 * snap (issue 7 item 1): `ferry snapshot create|ls|rm` and `ferry volume rollback`. They run on the
 * volume's primary host (another host answers with the host to run them on); `ls` works anywhere.
 */
export function registerSnapshotCommands(program: Command, volume: Command, api: () => string): void {
  const path = (name: string): string => `/v1/volumes/${encodeURIComponent(name)}`;
  const snapshot = program.command('snapshot').description("volumes' snapshots: take, list, remove (on the volume's host)");
  snapshot
    .command('create [volume] [name]')
    .description('take a snapshot of a volume (default name: the UTC time, e.g. 20261202T070000Z); with --group, of several at one instant')
    // quiesce (issue 7 item 2)
    .option('--quiesce <mode>', "pause: freeze the containers using it for the instant (default: the volume's -o quiesce, else none)")
    .option('--group <group>', 'snapshot VOLUME... (or, with none, the ferry volumes of Compose project GROUP) at one instant')
    .option('--name <name>', 'with --group: the snapshots\' name (default: the UTC time)')
    .option('--json', 'print JSON (the snapshot; with --group the group)')
    .allowExcessArguments(true)
    .action(async (name: string | undefined, snap: string | undefined, o: { quiesce?: string; group?: string; name?: string; json?: boolean }, cmd: Command) => {
      const quiesce = o.quiesce ? { quiesce: o.quiesce } : {};
      if (o.group) {
        const body = { group: o.group, volumes: cmd.args, ...(o.name ? { name: o.name } : {}), ...quiesce };
        const g = await apiCall<{ snapshots: SnapshotRecord[]; pausedMs: number | null; warnings: string[] }>(api(), 'POST', '/v1/snapshot-groups', body);
        for (const w of g.warnings) process.stderr.write(`ferry: ${w}\n`);
        console.log(o.json ? JSON.stringify(g, null, 2) : g.snapshots.map((s) => `${s.volume}@${s.name}`).join('\n'));
        return;
      }
      if (!name) throw new FerryError('INVALID_REQUEST', 'say which volume: ferry snapshot create VOLUME [NAME], or --group GROUP [VOLUME...]');
      if (cmd.args.length > 2) throw new FerryError('INVALID_REQUEST', 'one volume at a time; several at one instant: ferry snapshot create --group GROUP VOLUME...');
      const r = await apiCall<{ snapshot: SnapshotRecord }>(api(), 'POST', `${path(name)}/snapshots`, { ...(snap ? { name: snap } : {}), ...quiesce });
      console.log(o.json ? JSON.stringify(r.snapshot, null, 2) : r.snapshot.name);
    });
  snapshot
    .command('ls [volume]')
    .description("list snapshots (every volume's, or one's): name, time, hosts holding it, size, origin")
    .option('--json', 'print JSON (an array of snapshots; README: JSON shapes)')
    .option('-q, --quiet', 'print names only')
    .action(async (name: string | undefined, o: { json?: boolean; quiet?: boolean }) => {
      const { snapshots } = await apiCall<{ snapshots: SnapshotRecord[] }>(api(), 'GET', name ? `${path(name)}/snapshots` : '/v1/snapshots');
      const text = o.json ? JSON.stringify(snapshots, null, 2) : o.quiet ? snapshots.map((s) => s.name).join('\n') : snapshotTable(snapshots);
      if (text) console.log(text);
    });
  snapshot
    .command('rm <volume> <name>')
    .description('remove a snapshot you took (those of schedules and replication are removed by their owner)')
    .action(async (name: string, snap: string) => {
      const r = await apiCall<{ heldOn: string[] }>(api(), 'DELETE', `${path(name)}/snapshots/${encodeURIComponent(snap)}`);
      console.log(snap);
      if (r.heldOn.length) process.stderr.write(`ferry: ${r.heldOn.join(', ')} still hold a copy of ${snap} (replicas); run ferry snapshot rm ${name} ${snap} there to remove it\n`);
    });
  volume
    .command('rollback <volume> <snapshot>')
    .description("make a volume's data that of one of its snapshots (refused while mounted; every snapshot stays)")
    .action(async (name: string, snap: string) => {
      await apiCall(api(), 'POST', `${path(name)}/rollback`, { snapshot: snap });
      console.log(`${name} rolled back to ${snap}`);
    });
}
